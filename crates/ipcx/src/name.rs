//! Validated names for POSIX named objects (shared memory, semaphores, message queues).
//!
//! A POSIX IPC name is one leading `/` followed by bytes that contain no other `/`, no NUL byte and
//! no control character (ipcx refuses names that would print as terminal escapes; see
//! [`InvalidName`]). The length limit is what the system accepts for each kind: a message queue
//! name (kept by the kernel) has up to 255 bytes after the `/`; a shared-memory name, a file in
//! `/dev/shm` opened by its whole name (the `/` included), up to 254; a semaphore name up to 251,
//! because the C library stores it in `/dev/shm` under a `sem.` prefix. Names are checked before
//! any system call, so a bad name is an [`InvalidName`] error that says what is wrong, never an
//! obscure errno.

use std::ffi::CString;
use std::fmt;

/// Longest name component (after the leading `/`) for message queues: the kernel's `NAME_MAX`.
pub const NAME_MAX: usize = 255;
/// Longest name component for shared memory (and ipcx rings): the whole name, its `/` included,
/// must fit in `NAME_MAX`.
pub const SHM_NAME_MAX: usize = NAME_MAX - 1;
/// Longest name component for POSIX named semaphores (`sem.` + name must fit in `NAME_MAX`).
pub const SEM_NAME_MAX: usize = NAME_MAX - 4;

/// A name that is not a valid POSIX IPC name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {name:?}: {reason}")]
pub struct InvalidName {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it, and what is expected instead.
    pub reason: &'static str,
}

/// A validated POSIX IPC name such as `/jobs`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PosixName {
    name: CString,
}

impl PosixName {
    /// Validates a shared-memory (or ipcx ring) name (`/` + 1..=254 bytes, no other `/`, no
    /// control character).
    pub fn new(name: &str) -> Result<PosixName, InvalidName> {
        Self::with_max(name, SHM_NAME_MAX)
    }

    /// Validates a message-queue name (`/` + 1..=255 bytes, no other `/`, no control
    /// character).
    pub fn queue(name: &str) -> Result<PosixName, InvalidName> {
        Self::with_max(name, NAME_MAX)
    }

    /// Validates a POSIX semaphore name (`/` + 1..=251 bytes, no other `/`, no control
    /// character).
    pub fn semaphore(name: &str) -> Result<PosixName, InvalidName> {
        Self::with_max(name, SEM_NAME_MAX)
    }

    /// Validates the name of an object that already exists, made by any program: control
    /// characters are let through (so that such an object can be inspected and removed), the
    /// length is checked against the largest limit. Never used to create an object.
    pub(crate) fn existing(name: &str) -> Result<PosixName, InvalidName> {
        Self::check(name, NAME_MAX, true)
    }

    fn with_max(name: &str, max: usize) -> Result<PosixName, InvalidName> {
        Self::check(name, max, false)
    }

    fn check(name: &str, max: usize, allow_control: bool) -> Result<PosixName, InvalidName> {
        let err = |reason| InvalidName {
            name: name.to_owned(),
            reason,
        };
        let Some(rest) = name.strip_prefix('/') else {
            return Err(err(
                "a POSIX IPC name starts with '/', as in /jobs (add the leading slash)",
            ));
        };
        if rest.is_empty() {
            return Err(err("the name after '/' is empty; use a name such as /jobs"));
        }
        if rest.contains('/') {
            return Err(err(
                "a POSIX IPC name has exactly one '/', the leading one; remove the others",
            ));
        }
        if rest.len() > max {
            return Err(err(match max {
                NAME_MAX => "a queue name after '/' is longer than 255 bytes; shorten it",
                SHM_NAME_MAX => {
                    "a shared-memory name after '/' is longer than 254 bytes; shorten it"
                }
                _ => "a semaphore name after '/' is longer than 251 bytes; shorten it",
            }));
        }
        if !allow_control && rest.chars().any(char::is_control) {
            return Err(err(
                "the name contains a control character (such as ESC, BEL, CR or a newline), \
                 which would print as a terminal escape; use printable characters",
            ));
        }
        if rest == "." || rest == ".." {
            return Err(err("'.' and '..' are not valid names"));
        }
        let name = CString::new(name).map_err(|_| err("the name contains a NUL byte"))?;
        Ok(PosixName { name })
    }

    /// The name as a string, with its leading `/`.
    pub fn as_str(&self) -> &str {
        // Constructed from a &str, so this cannot fail.
        self.name.to_str().unwrap_or_default()
    }

    /// The name as a C string, for the system call.
    pub fn as_c_str(&self) -> &std::ffi::CStr {
        &self.name
    }
}

impl fmt::Display for PosixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PosixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::str::FromStr for PosixName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PosixName::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        assert_eq!(PosixName::new("/jobs").unwrap().as_str(), "/jobs");
        assert!(PosixName::new(&format!("/{}", "a".repeat(254))).is_ok());
        assert!(PosixName::queue(&format!("/{}", "a".repeat(255))).is_ok());
        assert!(PosixName::semaphore(&format!("/{}", "a".repeat(251))).is_ok());
        assert!(PosixName::new("/ünïcödé").is_ok());
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in ["", "jobs", "/", "/a/b", "/.", "/..", "/a\0b"] {
            let e = PosixName::new(bad).unwrap_err();
            assert_eq!(e.name, bad);
        }
        for bad in [
            "/a\u{1b}[2J",
            "/a\nb",
            "/a\rb",
            "/\u{7}",
            "/a\u{7f}",
            "/a\u{9b}",
        ] {
            let e = PosixName::new(bad).unwrap_err();
            assert!(e.reason.contains("control character"), "{e}");
            assert!(!e.to_string().contains('\u{1b}'), "{e}");
        }
        assert!(PosixName::new(&format!("/{}", "a".repeat(255))).is_err());
        assert!(PosixName::queue(&format!("/{}", "a".repeat(256))).is_err());
        assert!(PosixName::semaphore(&format!("/{}", "a".repeat(252))).is_err());
        let msg = PosixName::new("jobs").unwrap_err().to_string();
        assert!(msg.contains("starts with '/'"), "{msg}");
    }
}
