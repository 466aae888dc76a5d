//! Channel adapter for `fifo:PATH`.

use std::path::Path;

use super::{Error, MessageReceiver, MessageSender, Options};

pub(crate) fn receiver(path: &Path, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
    let _ = (path, opts);
    Err(unsupported())
}

pub(crate) fn sender(path: &Path, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
    let _ = (path, opts);
    Err(unsupported())
}

fn unsupported() -> Error {
    Error::Unsupported {
        what: "opening".into(),
        mechanism: "fifo".into(),
    }
}
