//! # ipcx-bench: the harness behind `ipcx bench`
//!
//! Measures every IPC mechanism between two real processes: round-trip latency (ping-pong,
//! recorded in an HDR histogram after a warm-up) and one-way throughput (streaming, with the
//! receiver checksumming every byte and the parent verifying the checksum), then prints a table,
//! writes a JSON report and draws an SVG chart. Every p50 is compared with the `limit` row, a
//! cache-line ping-pong through shared memory (the physical floor): measured once in full at
//! the start of the run, and again in short slices between the rounds of each other row's
//! ping-pong, because on a shared virtual machine the floor drifts within a run and every row
//! drifts with it; each ratio divides by the floor measured alongside its row (see [`report`]).
//!
//! The harness is generic: a row is anything that implements [`Mechanism`] (open a receiving
//! half on each side, then connect the sending halves, giving a [`Link`] that moves messages).
//! [`Registry::standard`] holds the rows of `ipcx bench`; other crates (side-by-side peers) can
//! build their own registry and reuse the runner, the [`Report`] (same JSON schema), the table
//! and the chart.
//!
//! ```no_run
//! use ipcx_bench::{BenchConfig, Budget, NoProgress, PeerLauncher, Registry, runner};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::standard();
//! let cfg = BenchConfig { budget: Budget::Quick, ..BenchConfig::default() };
//! // The peer is this same program, re-executed with a (hidden) subcommand that calls
//! // `ipcx_bench::peer::run_peer`.
//! let launcher = PeerLauncher::current_exe("__bench-peer")?;
//! let report = runner::run(&registry, &cfg, &launcher, &mut NoProgress)?;
//! println!("{}", ipcx_bench::table::render(&report));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod bridge_row;
pub mod channel;
pub mod checksum;
pub mod cpu;
#[cfg(test)]
mod echo_test;
pub mod fd_rows;
pub mod histogram;
pub mod mechanism;
pub mod memcpy_ref;
pub mod one_cpu;
pub mod peer;
pub mod placeholder;
pub mod progress;
pub mod protocol;
mod registry;
mod rendezvous;
pub mod report;
pub mod ring_rows;
pub mod rpc;
pub mod runner;
pub mod selftest;
pub mod seqonly;
pub mod shm_rows;
pub mod signal_row;
mod stall;
pub mod svg;
pub mod table;
pub mod units;

pub use checksum::{Digest, MessageSum, PayloadGen};
pub use histogram::{Recorder, RttSummary};
pub use mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
pub use peer::{PeerArgs, run_peer};
pub use progress::{NoProgress, Progress};
pub use registry::Registry;
pub use report::{
    BenchResult, Machine, MemcpyResult, Pattern, Pinning, Report, RunInfo, Throughput,
};
pub use runner::{BenchConfig, Budget, PeerLauncher, RunError};
