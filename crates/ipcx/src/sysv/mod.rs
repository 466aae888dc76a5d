//! System V IPC: message queues, semaphore sets and shared-memory segments.
//!
//! System V objects are named by a numeric [`Key`], made with [`Key::ftok`] or chosen by hand,
//! or are private to their creator and the processes it hands the id to ([`Key::PRIVATE`]).

use std::fmt;
use std::io;
use std::path::Path;

pub mod msg;
pub mod sem;
pub mod shm;

/// Refuses an existing object (that this call did not create) unless both its owner and its
/// creator are trusted: the owner can hand a System V object to another uid with `IPC_SET`,
/// the creator cannot change.
pub(crate) fn check_owner(
    trust: &crate::trust::Trust,
    what: &str,
    uid: u32,
    cuid: u32,
) -> Result<(), crate::trust::ForeignOwner> {
    trust.check_owner(what, cuid)?;
    trust.check_owner(what, uid)
}

/// The name of a System V object as `ipcx ls` prints it and owner records hold it: by key, or
/// by id for an `IPC_PRIVATE` object (`kind` is `sysv-mq`, `sysv-sem` or `sysv-shm`).
pub fn name(kind: &str, key: i32, id: i32) -> String {
    if key == 0 {
        format!("{kind}:id={id}")
    } else {
        format!("{kind}:0x{:08x}", key as u32)
    }
}

/// A System V IPC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub i32);

impl Key {
    /// `IPC_PRIVATE`: a new object that no key lookup finds.
    pub const PRIVATE: Key = Key(0);

    /// A key from a number.
    pub fn new(key: i32) -> Key {
        Key(key)
    }

    /// `ftok(path, id)`: a key derived from an existing file's inode and device and a
    /// project id. Fails when the path does not exist.
    pub fn ftok(path: impl AsRef<Path>, id: u8) -> io::Result<Key> {
        crate::sys::sysv::ftok(path.as_ref(), id).map(Key)
    }

    /// Parses a key as the CLI and endpoints write it: decimal or `0x` hexadecimal, from 1 to
    /// 0xffffffff (kept as the kernel's `key_t`, an `i32`).
    ///
    /// Key 0 is `IPC_PRIVATE`, which makes a new object that no other process can find by key,
    /// and a negative number would silently stand for a large key (-1 for 0xffffffff): both are
    /// refused, with the reason.
    pub fn parse(s: &str) -> Result<Key, String> {
        let expected = "expected a decimal number or 0x-prefixed hex from 1 to 0xffffffff, as in \
                        1234 or 0x4d2";
        let key = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).ok()
        } else if s.starts_with('-') {
            return Err(format!(
                "invalid System V key {s:?}: keys are unsigned; write a large key in hex \
                 (0xffffffff, not -1)"
            ));
        } else {
            s.parse::<u32>().ok()
        };
        match key {
            None => Err(format!("invalid System V key {s:?}: {expected}")),
            Some(0) => Err(format!(
                "invalid System V key {s:?}: key 0 is IPC_PRIVATE, which makes an object no \
                 other process can open by key; choose a nonzero key (a private object is named \
                 by id, as id=ID)"
            )),
            Some(k) => Ok(Key(k as i32)),
        }
    }

    /// The raw key.
    pub fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0 as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftok_needs_an_existing_path() {
        let a = Key::ftok("/", 1).unwrap();
        assert_eq!(a, Key::ftok("/", 1).unwrap());
        assert_ne!(a, Key::ftok("/", 2).unwrap());
        assert!(Key::ftok("/nonexistent/ipcx", 1).is_err());
        assert_eq!(Key::parse("0x10").unwrap(), Key(16));
        assert_eq!(Key(16).to_string(), "0x00000010");
    }

    #[test]
    fn parse_refuses_ipc_private_and_negative_keys() {
        assert_eq!(Key::parse("1234").unwrap(), Key(1234));
        assert_eq!(Key::parse("0xffffffff").unwrap(), Key(-1));
        assert_eq!(Key::parse("4294967295").unwrap(), Key(-1));
        for zero in ["0", "0x0", "00", "0x00000000"] {
            let e = Key::parse(zero).unwrap_err();
            assert!(e.contains("IPC_PRIVATE"), "{zero}: {e}");
        }
        for neg in ["-1", "-4660"] {
            let e = Key::parse(neg).unwrap_err();
            assert!(e.contains("unsigned"), "{neg}: {e}");
        }
        for bad in ["", "zz", "0x", "0x1ffffffff", "4294967296", "+-1"] {
            let e = Key::parse(bad).unwrap_err();
            assert!(e.contains("invalid System V key"), "{bad}: {e}");
        }
    }
}
