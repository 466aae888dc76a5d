//! Whom an endpoint trusts: the same-user rule.
//!
//! IPC crosses a trust boundary. By default ipcx trusts only processes and objects of its own
//! effective uid: a named object (ring, shared memory, queue, semaphore, FIFO, socket file)
//! created by another user is refused, and a socket receiver refuses peers of another uid
//! (abstract Unix sockets have no file mode, so the peer's kernel-verified uid is the only
//! check). [`Trust`] widens that explicitly, uid by uid or for everyone.
//!
//! ```
//! use ipcx::trust::Trust;
//! let t = Trust::own_user().allow_uid(1000);
//! assert!(t.permits(1000));
//! assert!(t.permits(ipcx::trust::euid()));
//! ```

/// The users an endpoint trusts besides its own effective uid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    allowed: Vec<u32>,
    any: bool,
}

impl Trust {
    /// Trusts only the caller's own effective uid (the default).
    pub fn own_user() -> Trust {
        Trust::default()
    }

    /// Trusts every user (`--allow-any-uid`).
    pub fn any_user() -> Trust {
        Trust {
            allowed: Vec::new(),
            any: true,
        }
    }

    /// Also trusts `uid` (`--allow-uid UID`, repeatable).
    pub fn allow_uid(mut self, uid: u32) -> Trust {
        if !self.allowed.contains(&uid) {
            self.allowed.push(uid);
        }
        self
    }

    /// Whether every user is trusted.
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// The uids trusted besides the caller's own.
    pub fn allowed_uids(&self) -> &[u32] {
        &self.allowed
    }

    /// Whether a peer or an object owner with this uid is trusted.
    pub fn permits(&self, uid: u32) -> bool {
        self.any || uid == euid() || self.allowed.contains(&uid)
    }

    /// `Ok` when `owner` is trusted, else the error that names the object, its owner and the way
    /// to allow it.
    pub fn check_owner(&self, what: &str, owner: u32) -> Result<(), ForeignOwner> {
        if self.permits(owner) {
            Ok(())
        } else {
            Err(ForeignOwner {
                what: what.to_owned(),
                owner,
                euid: euid(),
            })
        }
    }
}

/// An object or peer belongs to a user the caller does not trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} belongs to uid {owner}, not to us (uid {euid}): remove it, or trust that user explicitly (--allow-uid {owner})"
)]
pub struct ForeignOwner {
    /// The object or peer, as an address (`shm:/frames`, `unix:@svc`).
    pub what: String,
    /// Its owner's uid.
    pub owner: u32,
    /// The caller's effective uid.
    pub euid: u32,
}

/// The caller's effective uid.
pub fn euid() -> u32 {
    crate::sys::fifo::euid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_user_only_by_default() {
        let t = Trust::default();
        assert!(t.permits(euid()));
        assert!(!t.permits(euid().wrapping_add(1)));
        let e = t.check_owner("shm:/x", euid().wrapping_add(1)).unwrap_err();
        assert!(e.to_string().contains("--allow-uid"), "{e}");
    }

    #[test]
    fn widened_by_uid_or_for_all() {
        let other = euid().wrapping_add(7);
        assert!(Trust::own_user().allow_uid(other).permits(other));
        assert!(Trust::any_user().permits(other));
        assert!(!Trust::own_user().allow_uid(other).permits(other + 1));
    }
}
