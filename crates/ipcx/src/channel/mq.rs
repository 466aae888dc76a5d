//! Channel adapters for `mq:/NAME` and `sysv-mq:KEY`.

use super::{Error, MessageReceiver, MessageSender, Options};
use crate::name::PosixName;

pub(crate) fn posix_receiver(
    name: &PosixName,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let _ = (name, opts);
    Err(unsupported("mq"))
}

pub(crate) fn posix_sender(
    name: &PosixName,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
    let _ = (name, opts);
    Err(unsupported("mq"))
}

pub(crate) fn sysv_receiver(key: i32, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
    let _ = (key, opts);
    Err(unsupported("sysv-mq"))
}

pub(crate) fn sysv_sender(key: i32, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
    let _ = (key, opts);
    Err(unsupported("sysv-mq"))
}

fn unsupported(m: &str) -> Error {
    Error::Unsupported {
        what: "opening".into(),
        mechanism: m.into(),
    }
}
