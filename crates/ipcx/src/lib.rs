//! # ipcx: every Linux IPC mechanism behind one safe, typed API
//!
//! ipcx wraps the kernel's inter-process communication objects (pipes, FIFOs, POSIX and
//! System V message queues, shared memory, semaphores, robust mutexes and condition variables,
//! futexes, eventfds, signals and sockets) in safe Rust types, and puts one message-channel
//! interface on top of all of them ([`channel`]).
//!
//! ## Layers
//! Data flows upward; a module only uses the ones on its own layer or below, and no two modules
//! use each other.
//! ```text
//! rpc        typed services and clients over any connection: methods, codecs, deadlines,
//!            sync and async (`rpc`)
//! pattern    mailbox (N:M), pub/sub (1:M), push/pull (work distribution), req/rep (the one
//!            request/reply engine), direct messaging (`pattern`)
//! channel    Endpoint (one parsed address) -> the Transport trait (one module per transport,
//!            registered by one line) -> message senders/receivers and framed connections
//!            (`channel`, `channel::transport`)
//! mechanisms one module per kernel mechanism: pipe, fifo, mq, sysv, shm, mmap, sem, sync,
//!            signal, socket, and the zero-copy shared-memory ring (`ring`, over the `no_std`
//!            core crate `ipcx-ring`)
//! framing    length-prefixed frames over byte streams (`framing`)
//! base       names, waits and deadlines, wait sets, trust, the owner registry, interrupts, OS
//!            errors (`name`, `wait`, `wait_set`, `trust`, `registry`, `interrupt`, `OsError`)
//! sys        the only code that calls the OS
//! ```
//! `unsafe` code lives in `sys` and in the ring internals (`ring`, `ipcx-ring`); elsewhere it
//! only declares `unsafe fn` accessors whose contract the caller keeps (a mapped file another
//! process may shrink, [`mmap`]; raw System V segment slices, [`sysv::shm`]).
//!
//! ## Conventions
//! * Open/create follows [`std::fs::OpenOptions`]: `open` (must exist), `create` (open or
//!   create), `create_new` (fail if it exists). New objects get mode `0o600`.
//! * The handle that created a named object removes it on drop unless told to keep it.
//! * Every blocking operation comes as `op()`, `try_op()` (never blocks) and
//!   `op_timeout(Duration)`.
//! * Errors are `#[non_exhaustive]` enums naming the cases a caller acts on (`NotFound`,
//!   `AlreadyExists`, `PermissionDenied`, `Timeout`, `PeerGone`...); the OS error is kept as the
//!   source. The cases every mechanism shares are one type each: an `Io` variant (an OS error no
//!   named case covers) carries an [`OsError`], and the access failures of mapped memory are a
//!   [`shm::AccessError`]. One rule names the enums:
//!   - a mechanism (and each primitive of [`sync`]) has one error enum named after it
//!     ([`pipe::PipeError`], [`fifo::FifoError`], [`shm::ShmError`], [`mmap::MmapError`],
//!     [`socket::SocketError`], [`sem::NamedSemError`], [`sysv::sem::SemSetError`],
//!     [`signal::SignalError`], [`ring::RingError`], [`sync::FutexError`]...);
//!   - where its operations fail in different ways, it has one enum per operation instead
//!     ([`mq::OpenError`], [`mq::SendError`] (which hands the message back), [`mq::RecvError`];
//!     likewise [`sysv::msg`]);
//!   - the layers above the mechanisms (channels, transports, patterns) share one vocabulary,
//!     [`channel::Error`] (re-exported as [`pattern::Error`]): it is not one mechanism's error
//!     but the seam's, so it keeps the plain name its modules give it. A typed layer with cases
//!     of its own names them after itself ([`rpc::RpcError`]).
//! * File descriptors are [`std::os::fd::OwnedFd`] created with `O_CLOEXEC`.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub(crate) mod sys;

mod open;
mod os_error;
mod poison;
mod region;

pub mod channel;
pub mod discovery;
pub mod fifo;
pub mod framing;
pub mod interrupt;
pub mod inventory;
pub mod mmap;
pub mod mq;
pub mod name;
pub mod pattern;
pub mod pipe;
pub mod registry;
pub mod ring;
pub mod rpc;
pub mod sem;
pub mod shm;
pub mod signal;
pub mod socket;
pub mod sync;
pub mod sysv;
pub mod trust;
pub mod wait;
pub mod wait_set;

pub use channel::{Endpoint, Message, Meta};
pub use discovery::discover;
pub use os_error::OsError;
pub use wait::Wait;

/// The README's examples, compiled (not run) as doctests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
