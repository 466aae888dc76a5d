//! Named shared-memory segments that hold synchronisation objects: options, errors and the
//! ownership rules shared by [`SharedMutex`](super::SharedMutex),
//! [`SharedSemaphore`](super::SharedSemaphore) and [`Futex`](super::Futex).

use std::io;
use std::time::Duration;

use crate::name::{InvalidName, PosixName};
use crate::registry::Ownership;
use crate::sys::pthread::{Establish, SegFault, VERSION};
use crate::sys::shm::{OpenMode, shm_unlink};

/// How a placement type creates or opens its segment.
///
/// ```
/// use std::time::Duration;
/// let opts = ipcx::sync::Options::new().mode(0o640).tag(7).open_timeout(Duration::from_secs(2));
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub(crate) mode: u32,
    pub(crate) tag: Option<u64>,
    pub(crate) open_timeout: Duration,
    pub(crate) persist: bool,
    pub(crate) trust: crate::trust::Trust,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: 0o600,
            tag: None,
            open_timeout: Duration::from_secs(1),
            persist: false,
            trust: crate::trust::Trust::own_user(),
        }
    }
}

impl Options {
    /// Mode `0o600`, the default type tag, a one-second open timeout, removed by its creator.
    pub fn new() -> Options {
        Options::default()
    }

    /// Permission bits for a new segment (default `0o600`; the umask applies).
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = mode;
        self
    }

    /// A tag both sides must agree on, stored in the header and checked on open. The default
    /// is a hash of the value type's name (`std::any::type_name`), which differs between
    /// peers whose type lives at another path or that are built by compilers that spell type
    /// names differently: set an explicit tag (for example a protocol version) in that case.
    pub fn tag(mut self, tag: u64) -> Options {
        self.tag = Some(tag);
        self
    }

    /// How long `open`/`create` wait for a creator that is still initialising the segment
    /// before failing with [`SegmentError::NotInitialised`] (default one second).
    pub fn open_timeout(mut self, timeout: Duration) -> Options {
        self.open_timeout = timeout;
        self
    }

    /// Whose existing segments to use besides the caller's own (default: only the caller's own
    /// uid; see [`crate::trust`]). `open` and `create` refuse an existing segment of another
    /// user with [`SegmentError::NotOwner`]: its owner could corrupt the lock or the value.
    pub fn trust(mut self, trust: crate::trust::Trust) -> Options {
        self.trust = trust;
        self
    }

    /// Keep the segment when the creating handle is dropped (default: the creator removes it).
    pub fn persist(mut self, persist: bool) -> Options {
        self.persist = persist;
        self
    }
}

/// The default type tag: FNV-1a of the type's name.
pub(crate) fn type_tag<T: ?Sized>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::any::type_name::<T>().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Why a synchronisation segment could not be created, opened or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The name is not a valid POSIX name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No segment has this name.
    #[error("no sync segment {name}: create it first (create/create_new) or check the name")]
    NotFound {
        /// The segment's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `create_new` found a segment with this name.
    #[error(
        "sync segment {name} already exists: open it, or remove it if a dead process left it behind"
    )]
    AlreadyExists {
        /// The segment's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The segment's mode does not let this user open it read-write.
    #[error("permission denied on sync segment {name}: ask its owner to widen its mode")]
    PermissionDenied {
        /// The segment's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An existing segment belongs to a user the caller does not trust ([`Options::trust`]).
    #[error(
        "sync segment {name} belongs to uid {uid}, not to us: trust that user explicitly \
         (Options::trust), or use another name"
    )]
    NotOwner {
        /// The segment's name.
        name: String,
        /// The owner's uid.
        uid: u32,
    },
    /// The bytes at the start of the segment are not an ipcx synchronisation header.
    #[error(
        "{name} is not an ipcx sync segment (magic {found:#018x}): use another name or remove it"
    )]
    BadMagic {
        /// The segment's name.
        name: String,
        /// The magic number found.
        found: u64,
    },
    /// The segment was made by an incompatible version of ipcx.
    #[error(
        "sync segment {name} has layout version {found}, this ipcx uses {expected}: upgrade the older side"
    )]
    VersionMismatch {
        /// The segment's name.
        name: String,
        /// The version found.
        found: u32,
        /// The version this build uses.
        expected: u32,
    },
    /// The segment holds another kind of object, another value type or another C library ABI.
    #[error(
        "sync segment {name} was created for another layout ({field}: expected {expected}, found {found}): both sides must use the same type, kind and tag"
    )]
    IncompatibleLayout {
        /// The segment's name.
        name: String,
        /// The header field that differs.
        field: &'static str,
        /// What this side expects.
        expected: u64,
        /// What the segment says.
        found: u64,
    },
    /// The segment is smaller than its layout needs.
    #[error(
        "sync segment {name} is {size} bytes but needs {needed}: it was truncated or is not an ipcx segment"
    )]
    TooSmall {
        /// The segment's name.
        name: String,
        /// Its size.
        size: u64,
        /// The size needed.
        needed: u64,
    },
    /// The creator did not finish initialising the segment within the open timeout.
    #[error(
        "sync segment {name} was not initialised in time: its creator may have died while creating it; remove it and create it again"
    )]
    NotInitialised {
        /// The segment's name.
        name: String,
    },
    /// The value type's alignment is larger than a page.
    #[error("values aligned to {align} bytes cannot be placed in a segment (at most 4096)")]
    UnsupportedAlignment {
        /// The alignment asked for.
        align: usize,
    },
    /// Any other OS error.
    #[error("sync segment {name}: {source}")]
    Io {
        /// The segment's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl SegmentError {
    pub(crate) fn from_io(name: &PosixName, source: io::Error) -> SegmentError {
        let name = name.to_string();
        match source.raw_os_error() {
            Some(libc::ENOENT) => SegmentError::NotFound { name, source },
            Some(libc::EEXIST) => SegmentError::AlreadyExists { name, source },
            Some(libc::EACCES) | Some(libc::EPERM) => {
                SegmentError::PermissionDenied { name, source }
            }
            _ => SegmentError::Io { name, source },
        }
    }

    pub(crate) fn from_fault(name: &PosixName, fault: SegFault) -> SegmentError {
        let n = name.to_string();
        match fault {
            SegFault::Io(e) => SegmentError::from_io(name, e),
            SegFault::BadMagic { found } => SegmentError::BadMagic { name: n, found },
            SegFault::Version { found } => SegmentError::VersionMismatch {
                name: n,
                found,
                expected: VERSION,
            },
            SegFault::Layout {
                field,
                expected,
                found,
            } => SegmentError::IncompatibleLayout {
                name: n,
                field,
                expected,
                found,
            },
            SegFault::TooSmall { size, needed } => SegmentError::TooSmall {
                name: n,
                size,
                needed,
            },
            SegFault::NotInitialised => SegmentError::NotInitialised { name: n },
            SegFault::NotOwner { uid } => SegmentError::NotOwner { name: n, uid },
        }
    }
}

/// Validates the name and runs `f` with the parameters for `sys::pthread`.
pub(crate) fn establish<R>(
    name: &str,
    how: OpenMode,
    opts: &Options,
    f: impl FnOnce(&Establish<'_>) -> Result<R, SegFault>,
) -> Result<(R, PosixName), SegmentError> {
    let name = PosixName::new(name)?;
    let e = Establish {
        name: &name,
        how,
        mode: opts.mode,
        open_timeout: opts.open_timeout,
        allowed_uids: opts.trust.allowed_uids(),
        any_owner: opts.trust.allows_any(),
    };
    match f(&e) {
        Ok(r) => Ok((r, name)),
        Err(fault) => Err(SegmentError::from_fault(&name, fault)),
    }
}

/// Removes the segment called `name` (processes that have it mapped keep using it).
pub(crate) fn remove(name: &str) -> Result<(), SegmentError> {
    let name = PosixName::new(name)?;
    shm_unlink(&name).map_err(|e| SegmentError::from_io(&name, e))
}

/// The name of a segment and whether this handle removes it on drop.
#[derive(Debug)]
pub(crate) struct Owner {
    name: PosixName,
    ownership: Ownership,
}

impl Owner {
    pub(crate) fn new(name: PosixName, created: bool, opts: &Options) -> Owner {
        let mut ownership = Ownership::new(created, || format!("posix-shm:{name}"));
        ownership.set_persist(opts.persist);
        Owner { name, ownership }
    }

    /// The segment's name.
    pub(crate) fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Whether this handle removes the segment on drop.
    pub(crate) fn is_owner(&self) -> bool {
        self.ownership.is_owner()
    }

    /// Keeps the segment: no unlink on drop, and a persistent registry record.
    pub(crate) fn persist(&mut self) {
        self.ownership.set_persist(true);
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.ownership.is_owner() {
            let _ = shm_unlink(&self.name);
        }
    }
}

/// The named-object methods (`name`, `is_owner`, `persist`, `remove`) of a type that holds its
/// segment's [`Owner`] in a field `owner`.
macro_rules! named_segment {
    ($ty:ident $(<$g:ident>)?) => {
        impl$(<$g>)? $ty$(<$g>)? {
            /// The segment's name.
            pub fn name(&self) -> &str {
                self.owner.name()
            }

            /// Whether this handle created the segment and removes it on drop: false for a
            /// handle that only opened it, after [`persist`](Self::persist), and with
            /// [`Options::persist`](crate::sync::Options::persist).
            pub fn is_owner(&self) -> bool {
                self.owner.is_owner()
            }

            /// Keeps the segment after this handle is dropped.
            pub fn persist(mut self) -> Self {
                self.owner.persist();
                self
            }

            /// Removes the segment `name`. Processes that have it open keep using it; later
            /// opens fail.
            pub fn remove(name: &str) -> Result<(), $crate::sync::SegmentError> {
                $crate::sync::segment::remove(name)
            }
        }
    };
}
pub(crate) use named_segment;
