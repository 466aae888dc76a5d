//! One module per subcommand.

pub mod bench;
pub mod bridge;
pub mod call;
pub mod clean;
pub mod deadlock;
pub mod ls;
pub mod r#pub;
pub mod recv;
pub mod rm;
pub mod sem;
pub mod send;
pub mod shm;
pub mod signal;
pub mod sub;
