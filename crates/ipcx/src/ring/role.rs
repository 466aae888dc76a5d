//! The roles a process takes in a ring ([`Publisher`](super::Publisher),
//! [`Subscriber`](super::Subscriber)) or a work queue ([`Producer`](super::Producer),
//! [`Consumer`](super::Consumer)): one way to open the named segment and take a place in it,
//! each role saying only how it takes its place.
#![allow(unsafe_code)] // the shared-memory exception: borrows of the mapped segment

use std::sync::Arc;

use super::format::PATTERN_WORK;
use super::segment::Segment;
use super::{Options, RingError};
use crate::name::PosixName;
use crate::sys::shm::OpenMode;

/// A participant of a ring or work queue.
pub(crate) trait Role: Sized {
    /// The kind of segment it joins ([`PATTERN_WORK`] or `PATTERN_PUBSUB`).
    const PATTERN: u32;
    /// Takes this role's place in a segment just created or opened.
    fn join(seg: Arc<Segment>, opts: &Options) -> Result<Self, RingError>;
    /// The segment it holds.
    fn segment(&self) -> &Arc<Segment>;
    /// The segment it holds, to change this handle's settings.
    fn segment_mut(&mut self) -> &mut Arc<Segment>;
}

/// Creates, opens or opens-or-creates (`how`) the segment `name`, and joins it as `R`.
pub(crate) fn establish<R: Role>(
    name: &str,
    how: OpenMode,
    opts: &Options,
) -> Result<R, RingError> {
    let name = PosixName::new(name)?;
    let create = if R::PATTERN == PATTERN_WORK {
        opts.create_work()?
    } else {
        opts.create()?
    };
    let seg = Segment::establish(&name, how, &create, &opts.trust)?;
    R::join(Arc::new(seg), opts)
}

/// Keeps the segment after every participant left (only when no other handle of this process
/// shares it).
pub(crate) fn persist(seg: &mut Arc<Segment>) {
    if let Some(s) = Arc::get_mut(seg) {
        s.persist = true;
    }
}

/// Extends a borrow of the segment to `'static`.
///
/// # Safety
/// The returned reference must not be used after the last `Arc<Segment>` it came from is
/// dropped: the owners hold that `Arc` and drop the borrowing fields first.
pub(crate) unsafe fn extend<T: ?Sized>(r: &T) -> &'static T {
    // SAFETY: forwarded to the caller (the mapping stays valid while the Arc lives).
    unsafe { &*(r as *const T) }
}

/// The methods every role has in common: `create`, `create_new` and `open` (through
/// [`establish`]), `name`, `max_message_len` and `persist`. `$what` names the object in the
/// docs ("ring", "work queue").
macro_rules! role_methods {
    ($role:ident, $what:literal) => {
        impl $role {
            #[doc = concat!("Opens the ", $what, " `name`, creating it with `opts` when missing.")]
            pub fn create(name: &str, opts: &Options) -> Result<$role, RingError> {
                crate::ring::role::establish(name, crate::sys::shm::OpenMode::Create, opts)
            }
            #[doc = concat!(
                "Creates the ", $what, " `name`; fails with [`RingError::AlreadyExists`] if it ",
                "exists."
            )]
            pub fn create_new(name: &str, opts: &Options) -> Result<$role, RingError> {
                crate::ring::role::establish(name, crate::sys::shm::OpenMode::CreateNew, opts)
            }
            #[doc = concat!(
                "Opens the existing ", $what, " `name` (its own parameters apply; `opts` gives ",
                "the wait strategy and whom to trust)."
            )]
            pub fn open(name: &str, opts: &Options) -> Result<$role, RingError> {
                crate::ring::role::establish(name, crate::sys::shm::OpenMode::Open, opts)
            }
            /// The largest message.
            pub fn max_message_len(&self) -> usize {
                crate::ring::role::Role::segment(self).params.max_msg as usize
            }
            #[doc = concat!("The ", $what, "'s name.")]
            pub fn name(&self) -> &str {
                crate::ring::role::Role::segment(self).name.as_str()
            }
            /// Keeps the segment after every participant left (removed with
            /// `ipcx rm shm:NAME`).
            pub fn persist(mut self) -> Self {
                crate::ring::role::persist(crate::ring::role::Role::segment_mut(&mut self));
                self
            }
        }
    };
}
pub(crate) use role_methods;

/// `send`, `try_send` and `send_timeout`: the blocking, non-blocking and timeout forms of a
/// sending role's `send_wait`. `full` says what a blocked sender waits out, `room` what a
/// non-blocking one needs.
macro_rules! send_forms {
    ($role:ident, full: $full:literal, room: $room:literal) => {
        impl $role {
            #[doc = concat!("Sends a copy of `msg`, blocking while ", $full, ".")]
            #[inline]
            pub fn send(&mut self, msg: &[u8]) -> Result<(), $crate::ring::RingError> {
                self.send_wait(msg, $crate::wait::Wait::Forever)
            }
            #[doc = concat!("Sends a copy of `msg` if ", $room, " now.")]
            pub fn try_send(&mut self, msg: &[u8]) -> Result<(), $crate::ring::RingError> {
                self.send_wait(msg, $crate::wait::Wait::NoWait)
            }
            /// Sends a copy of `msg`, giving up after `timeout`.
            pub fn send_timeout(
                &mut self,
                msg: &[u8],
                timeout: ::std::time::Duration,
            ) -> Result<(), $crate::ring::RingError> {
                self.send_wait(msg, $crate::wait::Wait::timeout(timeout))
            }
        }
    };
}
pub(crate) use send_forms;

/// `recv`, `try_recv` and `recv_timeout`: the blocking, non-blocking and timeout forms of a
/// receiving role's `recv_wait`, which hands out `$sample`.
macro_rules! recv_forms {
    ($role:ident, $sample:ty) => {
        impl $role {
            /// Receives the next message, blocking.
            #[inline]
            pub fn recv(&mut self) -> Result<$sample, $crate::ring::RingError> {
                self.recv_wait($crate::wait::Wait::Forever)
            }
            /// Receives a message if one is waiting
            /// ([`RingError::Empty`](crate::ring::RingError::Empty) otherwise).
            pub fn try_recv(&mut self) -> Result<$sample, $crate::ring::RingError> {
                self.recv_wait($crate::wait::Wait::NoWait)
            }
            /// Receives a message, giving up after `timeout`.
            pub fn recv_timeout(
                &mut self,
                timeout: ::std::time::Duration,
            ) -> Result<$sample, $crate::ring::RingError> {
                self.recv_wait($crate::wait::Wait::timeout(timeout))
            }
        }
    };
}
pub(crate) use recv_forms;
