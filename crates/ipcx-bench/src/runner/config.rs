//! What to run: the [`BenchConfig`] a caller fills in.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::budget::Budget;
use crate::report::Pinning;
use crate::units;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Row names; empty for every visible row. The `limit` row is always added: it is the
    /// baseline of the ratios.
    pub mechanisms: Vec<String>,
    /// Payload sizes in bytes (each at least 8).
    pub sizes: Vec<usize>,
    /// How much measuring each row gets.
    pub budget: Budget,
    /// CPU pinning of the parent and the peer.
    pub pin: Option<Pinning>,
    /// A phase that makes no progress for this long fails.
    pub stall_timeout: Duration,
    /// Set to stop the run early, as Ctrl-C does (the run also stops on
    /// `ipcx::interrupt::requested()`).
    pub stop: Arc<AtomicBool>,
    /// In how many rounds each ping-pong row with a floor runs, each after a slice of the
    /// floor (`None`: [`Budget::floor_rounds`]).
    pub rounds: Option<u32>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            mechanisms: Vec::new(),
            sizes: units::DEFAULT_SIZES.to_vec(),
            budget: Budget::Default,
            pin: None,
            stall_timeout: Duration::from_secs(10),
            stop: Arc::new(AtomicBool::new(false)),
            rounds: None,
        }
    }
}
