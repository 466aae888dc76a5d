//! How a named object is opened or created: the `create` / `create_new` / `mode` / `trust`
//! flags shared by the open-options builders of POSIX semaphores and queues and System V
//! semaphore sets and queues, following [`std::fs::OpenOptions`], and the `read` / `write`
//! access of the two kinds of queue.

use crate::trust::Trust;

/// Whether to create the object, its mode when created, and whose existing objects to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenFlags {
    /// Create the object if it does not exist.
    pub(crate) create: bool,
    /// Create the object; fail if it exists.
    pub(crate) create_new: bool,
    /// Permission bits of a new object.
    pub(crate) mode: u32,
    /// Whose existing objects to use.
    pub(crate) trust: Trust,
}

impl Default for OpenFlags {
    /// Open only, mode `0o600`, only the caller's own objects.
    fn default() -> Self {
        OpenFlags {
            create: false,
            create_new: false,
            mode: 0o600,
            trust: Trust::own_user(),
        }
    }
}

/// The by-value setters `create`, `create_new`, `mode` and `trust` of a builder that holds an
/// [`OpenFlags`] in a field `flags`. `noun` names the object in the docs, `already_exists` is
/// the doc link to the error `create_new` fails with, `umask` says how the umask applies to a
/// new object's mode, `mode_mask` the bits of `mode` kept.
macro_rules! open_flag_setters {
    (
        noun: $noun:literal,
        already_exists: $exists:literal,
        umask: $umask:literal,
        mode_mask: $mask:expr,
        $(#[$trust_doc:meta])* trust $(,)?
    ) => {
        #[doc = concat!("Create the ", $noun, " if it does not exist.")]
        pub fn create(mut self, create: bool) -> Self {
            self.flags.create = create;
            self
        }

        #[doc = concat!("Create the ", $noun, "; fail with ", $exists, " if it exists.")]
        pub fn create_new(mut self, create_new: bool) -> Self {
            self.flags.create_new = create_new;
            self
        }

        #[doc = concat!("Permission bits of a new ", $noun, " (default `0o600`; ", $umask, ").")]
        pub fn mode(mut self, mode: u32) -> Self {
            self.flags.mode = mode & $mask;
            self
        }

        $(#[$trust_doc])*
        pub fn trust(mut self, trust: $crate::trust::Trust) -> Self {
            self.flags.trust = trust;
            self
        }
    };
}
pub(crate) use open_flag_setters;

/// Which ways a queue handle is used: receive (`read`) and send (`write`); both by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Access {
    /// The handle receives (needs read access to the queue).
    pub(crate) read: bool,
    /// The handle sends (needs write access to the queue).
    pub(crate) write: bool,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            read: true,
            write: true,
        }
    }
}

/// The open surface both kinds of queue share: the setters `read` and `write` of a builder that
/// holds an [`Access`] in a field `access`, and those of [`open_flag_setters`] for a queue whose
/// `create_new` fails with `OpenError::AlreadyExists`. `umask` says how the umask applies.
macro_rules! queue_setters {
    (umask: $umask:literal, $(#[$trust_doc:meta])* trust $(,)?) => {
        /// Whether the handle may receive, which needs read access to the queue (default
        /// true).
        pub fn read(mut self, read: bool) -> Self {
            self.access.read = read;
            self
        }

        /// Whether the handle may send, which needs write access to the queue (default true).
        pub fn write(mut self, write: bool) -> Self {
            self.access.write = write;
            self
        }

        $crate::open::open_flag_setters! {
            noun: "queue",
            already_exists: "[`OpenError::AlreadyExists`]",
            umask: $umask,
            mode_mask: 0o777,
            $(#[$trust_doc])* trust,
        }
    };
}
pub(crate) use queue_setters;
