//! What a handle keeps about an object it created: its registry record ([`Registration`]) and
//! whether it removes the object on drop ([`Ownership`]).

use super::{persist, register, unregister};

/// A registry record held by the handle that created an object: recorded on creation,
/// forgotten when dropped (the object was removed), or turned into a "persistent" record by
/// [`Registration::persist`].
#[derive(Debug)]
pub(crate) struct Registration {
    object: String,
    persisted: bool,
}

impl Registration {
    /// Records that this process created `object` and will remove it.
    pub(crate) fn new(object: String) -> Registration {
        register(&object);
        Registration {
            object,
            persisted: false,
        }
    }

    /// The object is kept on purpose: record that, so `ipcx clean` leaves it alone.
    pub(crate) fn persist(mut self) {
        persist(&self.object);
        self.persisted = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.persisted {
            unregister(&self.object);
        }
    }
}

/// Whether a handle removes its named object on drop, and the registry record of an object it
/// created: the owner handling shared by the named mechanisms. A handle owns the object when it
/// created it and was not told to keep it ([`Ownership::set_persist`]) or has not removed it
/// explicitly already ([`Ownership::removed`]).
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    created: bool,
    persist: bool,
    registration: Option<Registration>,
}

impl Ownership {
    /// A handle that created `object` (as `ipcx ls` names it): recorded in the registry, and
    /// the object is removed on drop.
    pub(crate) fn created(object: String) -> Ownership {
        Ownership {
            created: true,
            persist: false,
            registration: Some(Registration::new(object)),
        }
    }

    /// A handle that only opened the object: it never removes it.
    pub(crate) fn opened() -> Ownership {
        Ownership::default()
    }

    /// [`Ownership::created`] when `created`, else [`Ownership::opened`].
    pub(crate) fn new(created: bool, object: impl FnOnce() -> String) -> Ownership {
        if created {
            Ownership::created(object())
        } else {
            Ownership::opened()
        }
    }

    /// Whether the handle removes the object on drop.
    pub(crate) fn is_owner(&self) -> bool {
        self.created && !self.persist
    }

    /// Sets whether the object is kept after the handle is dropped; keeping it makes its
    /// registry record persistent, so `ipcx clean` leaves it alone.
    pub(crate) fn set_persist(&mut self, persist: bool) {
        self.persist = persist;
        if persist && let Some(r) = self.registration.take() {
            r.persist();
        }
    }

    /// Makes the handle remove the object on drop, as if it had created it (no registry record
    /// is made for it).
    pub(crate) fn claim(&mut self) {
        self.created = true;
        self.persist = false;
    }

    /// Whether the handle is to remove the object now, asked once by the code that removes it:
    /// later calls answer false.
    pub(crate) fn take_removal(&mut self) -> bool {
        let owner = self.is_owner();
        self.created = false;
        owner
    }

    /// The object was removed explicitly: drop removes nothing, and the record goes.
    pub(crate) fn removed(&mut self) {
        self.created = false;
        self.registration = None;
    }
}
