//! # ipcx: every Linux IPC mechanism behind one safe, typed API
//!
//! ipcx wraps the kernel's inter-process communication objects (pipes, FIFOs, POSIX and
//! System V message queues, shared memory, semaphores, robust mutexes and condition variables,
//! futexes, eventfds, signals and sockets) in safe Rust types, and puts one message-channel
//! interface on top of all of them ([`channel`]).
//!
//! ## Layers
//! Data flows upward; a layer only uses the ones below it.
//! ```text
//! channel    Endpoint (parsed address) -> Sender/Receiver of messages, whatever the mechanism
//! framing    turns byte streams (pipe, fifo, unix stream, tcp) into messages
//! mechanisms pipe, fifo, mq, sysv, shm, mmap, sem, sync, signal, socket
//! sys        the only code that calls the OS and the only home of `unsafe`
//! ```
//!
//! ## Conventions
//! * Open/create follows [`std::fs::OpenOptions`]: `open` (must exist), `create` (open or
//!   create), `create_new` (fail if it exists). New objects get mode `0o600`.
//! * The handle that created a named object removes it on drop unless told to keep it.
//! * Every blocking operation comes as `op()`, `try_op()` (never blocks) and
//!   `op_timeout(Duration)`.
//! * Each operation family has its own `#[non_exhaustive]` error enum naming the cases a caller
//!   acts on; the OS error is kept as the source.
//! * File descriptors are [`std::os::fd::OwnedFd`] created with `O_CLOEXEC`.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub(crate) mod sys;

mod open;
mod poison;
mod region;

pub mod channel;
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

pub use channel::{Endpoint, Message, Meta};
pub use wait::Wait;

/// The README's examples, compiled (not run) as doctests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
