//! The zero-copy shared-memory ring: `shm:/NAME`.
//!
//! One [`Publisher`] and up to `max_subscribers` [`Subscriber`]s share a named POSIX
//! shared-memory segment (`/dev/shm/NAME`, mode `0o600`). Messages of any size up to the
//! maximum fixed at creation travel through a byte ring in that segment: the publisher writes
//! them in place ([`Publisher::loan`] gives a [`SampleMut`] over the ring's own bytes) or copies
//! them ([`Publisher::send`]); each subscriber reads them in place ([`Subscriber::recv`] gives a
//! [`Sample`] borrowing the ring's bytes). 1:1 is the same thing with one subscriber.
//!
//! ```no_run
//! use ipcx::ring::{Options, Publisher, Subscriber};
//! let mut sub = Subscriber::create("/frames", &Options::new())?; // creates the ring
//! let mut publ = Publisher::open("/frames", &Options::new())?;
//! let mut s = publ.loan(5)?;
//! s.copy_from_slice(b"hello");
//! s.send()?;
//! let msg = sub.recv()?;
//! assert_eq!(&*msg, b"hello");
//! # Ok::<(), ipcx::ring::RingError>(())
//! ```
//!
//! For a work queue (N producers, M consumers, each message to exactly one consumer), see
//! [`work`]: [`Producer`] and [`Consumer`], with the same loans, samples, waiting and
//! dead-peer handling.
//!
//! # Delivery
//! * **Lossless** (default): the publisher never overwrites a message a live subscriber has not
//!   read; a full ring blocks [`Publisher::send`] (or fails with [`RingError::Full`] for
//!   [`Publisher::try_send`]). A subscriber receives every message published after its
//!   `create`/`open` returned.
//! * **Overwrite** ([`Options::overwrite`]): the publisher never waits; a slow subscriber skips
//!   the oldest messages and [`Sample::missed`] says how many. Samples are then copies (the
//!   bytes in the ring may be overwritten at any time).
//!
//! # Request/reply traffic stays in the cache
//! A lossless ring that traffic keeps empty (the request ring and the reply ring of a
//! request/reply exchange: each message is read before the next one is sent) does not sweep
//! its whole capacity. Once a message of at most an eighth of the [`HOT_WINDOW`] (8 KiB)
//! would end past the window in the current lap, the publisher looks at the subscribers:
//! when all of them have read everything, the message starts the next lap instead. A stream
//! keeps the whole ring: the window is on for a send that follows a wait for a message on any
//! ring of the same thread (the request or the reply), off for one that does not.
//! [`Options::hot_window`] sets the window, or turns it off with 0. (Why this pays, with
//! figures: `crates/ipcx-bench/README.md`, section "ring".)
//!
//! # Waiting
//! [`WaitStrategy::SpinThenSleep`] (default) spins briefly, yields the CPU a few times, then
//! sleeps on a futex in the segment; [`WaitStrategy::Spin`] never sleeps (lowest latency, one
//! CPU busy; it still yields now and then so that on a small machine it never starves the peer
//! it waits for); [`WaitStrategy::Block`] sleeps at once. A sender makes a system call (futex
//! wake) only when a receiver announced that it sleeps.
//!
//! With the `tokio` feature, [`Subscriber::recv_async`] and [`Consumer::recv_async`] wait
//! without blocking a thread: a helper thread per async receiver sleeps on the futex and wakes
//! the task through a local eventfd (fds cannot be shared through the segment).
//!
//! # Dead peers
//! Every participant records its pid and process start time in the segment. A blocked call
//! looks at them every few milliseconds while it sleeps: a dead subscriber's place (and the
//! messages it held back) is reclaimed, so the publisher goes on; a subscriber whose publisher
//! died gets [`RingError::PeerGone`] once it has read everything. The participant that created
//! the ring removes the name when it leaves last; if others remain, the last of them removes
//! it. A participant that only opened a ring whose creator is still there never removes it.
//! `ipcx clean` removes a ring whose participants all died.
//!
//! # Trust
//! An existing segment is opened only if its owner is trusted ([`Options::trust`]; by default
//! only the caller's own uid): another user's ring is [`RingError::ForeignOwner`]. Its header is
//! read with `pread` and checked (magic, version, parameters) before anything is mapped, and
//! the file's size must be exactly the one the header gives ([`RingError::Corrupt`] otherwise), so
//! a huge sparse file is never faulted in; an opener fills its page tables up front only when
//! the whole file is already allocated. Every position, length and record header read from the
//! segment is checked before use: a peer that writes garbage into the control words makes
//! calls fail with [`RingError::Corrupt`], never read or write out of bounds. The payload bytes
//! themselves are shared with the peers: give access (the segment's mode) only to processes
//! you trust not to write into messages they do not own.
//!
//! A peer that truncates the segment under a live mapping does not kill this process with
//! `SIGBUS`: the fault is caught (the mapping then reads as zeros, see `sys::sigbus`), and
//! receiving, or waiting for a message or for room, fails with [`RingError::Corrupt`]. The check
//! costs nothing per message: it happens on the slow paths, and a waiter also compares the
//! file's size with the layout every few milliseconds. A publisher that never has to wait
//! only sees that no subscriber is left (the zeroed table has none) and its messages go
//! nowhere: [`Publisher::check`] (one atomic load) tells it why, as the `shm:` channel sender
//! does when it finds no subscriber; [`Subscriber::check`] likewise.

mod blocked;
mod bridge;
mod error;
mod format;
mod fuzz;
mod hot;
mod inspect;
mod options;
mod publisher;
mod role;
mod sample;
mod segment;
mod subscriber;
mod table;
mod wait;
pub mod work;

pub use error::RingError;
pub use fuzz::{LiveReader, LiveSegment, LiveWriter, check_segment_image, fresh_segment_image};
pub use inspect::{Participant, is_ring, participants};
pub use ipcx_ring::HOT_WINDOW;
pub use options::{DEFAULT_CAPACITY, Options};
pub use publisher::Publisher;
pub use sample::{Sample, SampleMut};
pub use subscriber::Subscriber;
pub use wait::WaitStrategy;
pub use work::{Consumer, Producer};

use crate::name::PosixName;

/// Removes the ring `name` (after checking that it is a ring). Participants keep using it.
pub fn remove(name: &str) -> Result<(), RingError> {
    let name = PosixName::new(name)?;
    let file = format!("/dev/shm/{}", name.as_str().trim_start_matches('/'));
    if std::fs::symlink_metadata(&file).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(RingError::NotFound {
            name: name.to_string(),
        });
    }
    if !is_ring(name.as_str()) {
        return Err(RingError::NotARing {
            name: name.to_string(),
            found: 0,
        });
    }
    crate::sys::shm::shm_unlink(&name).map_err(|e| RingError::from_io(&name, e))
}
