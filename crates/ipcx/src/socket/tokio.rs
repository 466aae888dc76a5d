//! Async sockets (tokio).
