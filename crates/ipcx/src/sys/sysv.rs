//! What System V message queues, semaphores and segments share: keys.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `ftok(3)`: a key from an existing path and a project id (only its low 8 bits count).
pub(crate) fn ftok(path: &Path, id: u8) -> io::Result<i32> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; ftok only reads it.
    super::cvt(unsafe { libc::ftok(c.as_ptr(), i32::from(id)) })
}
