//! [`OsError`]: an OS error no named case covers, with what was being done.

use std::borrow::Cow;
use std::io;

/// An OS error that no named case of a mechanism's error covers, with the operation that
/// failed: the `Io` variant that mechanism errors share.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct OsError {
    /// The failed operation (`sem_open`, `pthread_sigmask`...).
    pub what: Cow<'static, str>,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl OsError {
    /// The OS error `source` of the operation `what`.
    pub fn new(what: impl Into<Cow<'static, str>>, source: io::Error) -> OsError {
        OsError {
            what: what.into(),
            source,
        }
    }
}
