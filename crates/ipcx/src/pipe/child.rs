//! Handing a pipe end to a child process at a descriptor number of its own, and taking it
//! there ([`pass_to_child`], `from_inherited`).

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::process::Command;

use crate::sys;

/// Duplicates the inherited descriptor `fd` (close-on-exec), checks it is a pipe or FIFO, and
/// makes the copy non-blocking.
pub(crate) fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    let owned = sys::pipe::dup_inherited(fd)?;
    if !sys::pipe::is_pipe(&owned)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a pipe or FIFO"),
        ));
    }
    sys::pipe::set_nonblocking(&owned, true)?;
    Ok(owned)
}

/// Makes `end` (any pipe end, or any descriptor) appear as descriptor `target` (3 to 255) in
/// the child that `cmd` spawns. The child takes it with [`PipeReader::from_inherited`](super::PipeReader::from_inherited) or
/// [`PipeWriter::from_inherited`](super::PipeWriter::from_inherited). The parent's copy lives in `cmd` until `cmd` is dropped.
///
/// Several calls on one `Command` with different targets are fine; a later call with the
/// same target wins. Descriptors 0, 1 and 2 are refused: use [`Stdio`](std::process::Stdio) for those.
///
/// ```no_run
/// use std::process::Command;
/// # fn main() -> std::io::Result<()> {
/// let (mut rx, tx) = ipcx::pipe::pipe()?;
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "printf '\\000\\000\\000\\002hi' >&3"]);
/// ipcx::pipe::pass_to_child(&mut cmd, tx, 3)?;
/// let mut child = cmd.spawn()?;
/// drop(cmd); // closes the parent's copy of the write end
/// assert_eq!(rx.recv().unwrap(), b"hi");
/// child.wait()?;
/// # Ok(()) }
/// ```
pub fn pass_to_child(cmd: &mut Command, end: impl Into<OwnedFd>, target: RawFd) -> io::Result<()> {
    sys::pipe::map_fd_into_child(cmd, end.into(), target)
}
