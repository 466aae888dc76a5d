//! One module per subcommand.

pub mod bench;
pub mod clean;
pub mod ls;
pub mod recv;
pub mod rm;
pub mod sem;
pub mod send;
pub mod shm;
pub mod signal;
