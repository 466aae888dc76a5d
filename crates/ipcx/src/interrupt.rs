//! Cooperative stop on Ctrl-C for command-line programs.
//!
//! [`install`] makes SIGINT, SIGTERM and SIGHUP set a flag instead of killing the process, so a
//! program can leave its loop, drop its handles and thereby remove the objects it created.
//! Blocking calls are not interrupted by it (ipcx retries `EINTR`): wait in slices
//! (`recv_timeout` of, say, 100 ms) and check [`requested`] between them.

use std::io;

/// Makes SIGINT, SIGTERM and SIGHUP set the stop flag instead of terminating the process.
pub fn install() -> io::Result<()> {
    crate::sys::interrupt::install()
}

/// Whether SIGINT, SIGTERM or SIGHUP arrived since [`install`].
pub fn requested() -> bool {
    crate::sys::interrupt::requested()
}
