//! System V IPC: message queues, semaphore sets and shared-memory segments.
//!
//! System V objects are named by a numeric key ([`Key`]), made with `ftok(path, id)` or chosen
//! by hand, or are private to their creator and its children (`IPC_PRIVATE`).

pub mod msg;
pub mod sem;
pub mod shm;
