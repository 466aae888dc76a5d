//! The result types and the JSON report (`ipcx bench --json FILE`).
//!
//! ```json
//! {"ipcx_version": "0.1.0",
//!  "machine": {"cpus": 2, "model": "AMD EPYC", "kernel": "6.18.0", "pinned": {"parent_cpu": 0, "peer_cpu": 1}},
//!  "run": {"budget": "quick", "sizes": [64, 4096, 1048576], "baseline": "limit", "baseline_p50_ns": 120},
//!  "results": [
//!    {"mechanism": "unix", "pattern": "ping-pong", "payload_bytes": 64, "processes": true,
//!     "rtt_ns": {"p50": 42500, "p99": 61000, "p999": 86000, "mean": 43210.5, "samples": 5000},
//!     "floor_p50_ns": 120, "floor_p99_9_ns": 240, "ratio_to_limit": 354.2},
//!    {"mechanism": "unix", "pattern": "stream", "payload_bytes": 64, "processes": true,
//!     "throughput": {"msgs_per_s": 850000.0, "bytes_per_s": 54400000.0, "messages": 212500},
//!     "verified": true},
//!    {"mechanism": "udp", "pattern": "ping-pong", "payload_bytes": 1048576, "processes": true,
//!     "skipped": "UDP carries at most 65507 bytes per datagram"}
//!  ]}
//! ```
//! Absent figures are omitted; `machine.pinned` is `null` when the run was not pinned.
//!
//! ## The floor next to each row
//!
//! The cache-line floor of a shared virtual machine drifts within a run (the hypervisor moves
//! the vCPUs; the README's "Why the figures are what they are" has an example), and every
//! row's latency drifts with it. So the runner measures each row's ping-pong in rounds (8 in
//! a quick run, 16 in a full one), each right after a slice of a
//! `limit` ping-pong (same peer process, a few ms), and pools the round trips of the rounds and
//! those of the slices: the row and its floor are sampled over the same stretch of time, in the
//! same mix of placements. It records the pooled floor in that result:
//!
//! - `floor_p50_ns`, `floor_p99_9_ns`: the p50 and p99.9 of the pooled `limit` slices next to
//!   the row (for the `limit` row itself: its own figures); `rtt_ns` is pooled over the row's
//!   rounds. `rtt_ns.p999 / floor_p99_9_ns` is the tail ratio against the same floor.
//! - `tail_ratio_to_limit`: `rtt_ns.p999 / floor_p99_9_ns` (the "p99.9 × limit" column).
//! - `ratio_to_limit`: `rtt_ns.p50 / floor_p50_ns`; when a result has no adjacent floor (a
//!   report from before this change, or the floor measurement failed) it is divided by
//!   `run.baseline_p50_ns` as before.
//! - `run.baseline_p50_ns` is still the p50 of the full `limit` row (measured once, first), kept
//!   for compatibility; it is no longer what the ratios of rows with a floor divide by.
//!
//! Both floor fields are optional: reports written before they existed still read back.

use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

pub use crate::histogram::RttSummary;

/// One measurement of the in-process copy reference ([`crate::memcpy_ref`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemcpyResult {
    /// Bytes per copy (the payload size).
    pub payload_bytes: u64,
    /// The destination area the copies rotate through (the ring's data area for this size).
    pub area_bytes: u64,
    /// Bytes copied per second (each byte read once and written once), in the fastest of
    /// the [`crate::memcpy_ref::WINDOWS`] windows.
    pub bytes_per_s: f64,
    /// Copies timed in that window.
    pub copies: u64,
}

/// The mechanism every p50 ratio is computed against.
pub const BASELINE: &str = "limit";

/// How a row moves messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Round trips: the parent sends, the peer echoes; latency.
    PingPong,
    /// One-way streaming from the parent to the peer; throughput.
    Stream,
}

impl Pattern {
    /// The name used in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::PingPong => "ping-pong",
            Pattern::Stream => "stream",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One-way throughput.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Payload bytes per second.
    pub bytes_per_s: f64,
    /// Messages sent and verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
}

/// One result: a mechanism, a pattern and a payload size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// The row's name (`unix`, `limit`, ...).
    pub mechanism: String,
    /// How messages moved.
    pub pattern: Pattern,
    /// Bytes per message.
    pub payload_bytes: u64,
    /// Whether the two ends were separate processes (always true for `ipcx bench`).
    pub processes: bool,
    /// Round-trip times (ping-pong rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ns: Option<RttSummary>,
    /// Throughput (stream rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// The p50 of the `limit` ping-pong slices measured between this row's rounds (ping-pong
    /// results; for the `limit` row, its own p50). See the [module docs](self).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_p50_ns: Option<u64>,
    /// The p99.9 of those same `limit` slices, for tail ratios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_p99_9_ns: Option<u64>,
    /// p50 divided by [`BenchResult::floor_p50_ns`], or by the p50 of the run's `limit` row
    /// ([`RunInfo::baseline_p50_ns`]) when this result has no adjacent floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_limit: Option<f64>,
    /// The p99.9 divided by [`BenchResult::floor_p99_9_ns`]: the tail against the floor's own
    /// tail, measured alongside (none without a floor of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_ratio_to_limit: Option<f64>,
    /// Stream throughput divided by the in-process memcpy reference of the same run at the
    /// same payload size ([`Report::memcpy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_memcpy: Option<f64>,
    /// Whether the receiver's checksum (and message count) matched what was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Why the row did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why the row failed while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BenchResult {
    /// An empty result (neither measured, skipped nor failed yet).
    pub fn new(mechanism: &str, pattern: Pattern, payload_bytes: usize) -> BenchResult {
        BenchResult {
            mechanism: mechanism.to_owned(),
            pattern,
            payload_bytes: payload_bytes as u64,
            processes: true,
            rtt_ns: None,
            throughput: None,
            floor_p50_ns: None,
            floor_p99_9_ns: None,
            ratio_to_limit: None,
            tail_ratio_to_limit: None,
            ratio_to_memcpy: None,
            verified: None,
            skipped: None,
            error: None,
        }
    }

    /// A skipped result.
    pub fn skipped(
        mechanism: &str,
        pattern: Pattern,
        payload_bytes: usize,
        reason: impl Into<String>,
    ) -> BenchResult {
        BenchResult {
            skipped: Some(reason.into()),
            ..BenchResult::new(mechanism, pattern, payload_bytes)
        }
    }

    /// A failed result.
    pub fn failed(
        mechanism: &str,
        pattern: Pattern,
        payload_bytes: usize,
        error: impl Into<String>,
    ) -> BenchResult {
        BenchResult {
            error: Some(error.into()),
            ..BenchResult::new(mechanism, pattern, payload_bytes)
        }
    }

    /// Whether the row produced figures.
    pub fn measured(&self) -> bool {
        self.rtt_ns.is_some() || self.throughput.is_some()
    }
}

/// Which CPUs the two processes were pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinning {
    /// The parent (sender, timer) process.
    pub parent_cpu: usize,
    /// The peer (echo, sink) process.
    pub peer_cpu: usize,
}

impl Pinning {
    /// Parses `PARENT,PEER`, such as `0,1` (the `--cpus` flag of `ipcx bench` and the peers).
    pub fn parse(s: &str) -> Result<Pinning, String> {
        let bad = || format!("invalid CPU pair {s:?}: expected PARENT,PEER such as 0,1");
        let (a, b) = s.split_once(',').ok_or_else(bad)?;
        let cpu = |v: &str| v.trim().parse::<usize>().map_err(|_| bad());
        Ok(Pinning {
            parent_cpu: cpu(a)?,
            peer_cpu: cpu(b)?,
        })
    }
}

impl fmt::Display for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pinned: parent on CPU {}, peer on CPU {}",
            self.parent_cpu, self.peer_cpu
        )
    }
}

/// The machine the run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// CPU model name (`/proc/cpuinfo`).
    pub model: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// CPU pinning; `null` when unpinned.
    pub pinned: Option<Pinning>,
}

impl Machine {
    /// Looks at this machine.
    pub fn detect(pinned: Option<Pinning>) -> Machine {
        let cpus = crate::cpu::online_cpus()
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        Machine {
            cpus,
            model,
            kernel,
            pinned,
        }
    }

    /// One line for humans: `2 CPUs (AMD EPYC), kernel 6.18.0; pinned: ...` or `...; unpinned`.
    pub fn describe(&self) -> String {
        let pin = match &self.pinned {
            Some(p) => p.to_string(),
            None => "unpinned".to_owned(),
        };
        format!(
            "{} CPU{} ({}), kernel {}; {pin}",
            self.cpus,
            if self.cpus == 1 { "" } else { "s" },
            self.model,
            self.kernel
        )
    }
}

/// How the run was configured, and what the ratios are relative to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `quick`, `default`, `iters N` or `duration D` (per measurement).
    pub budget: String,
    /// Payload sizes requested.
    pub sizes: Vec<u64>,
    /// The baseline row (`limit`).
    pub baseline: String,
    /// The p50 of the full baseline row (its smallest payload). Ratios of results with an
    /// adjacent floor ([`BenchResult::floor_p50_ns`]) divide by that floor instead; the others
    /// divide by this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_p50_ns: Option<u64>,
    /// Why ratios are missing, when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratios_omitted: Option<String>,
    /// Wall-clock seconds the run took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
}

/// A whole run: what `--json` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The ipcx version that measured.
    pub ipcx_version: String,
    /// The machine.
    pub machine: Machine,
    /// The configuration.
    pub run: RunInfo,
    /// One entry per mechanism, pattern and payload size, skipped ones included.
    pub results: Vec<BenchResult>,
    /// The in-process memcpy reference, one entry per payload size (see
    /// [`crate::memcpy_ref`]); empty when it was not measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memcpy: Vec<MemcpyResult>,
}

impl Report {
    /// Fills `ratio_to_limit` of every ping-pong result: its p50 over the floor measured next
    /// to it ([`BenchResult::floor_p50_ns`]), or over the baseline row's p50 (its smallest
    /// measured payload) when it has none; records why ratios are omitted when there is neither.
    /// Fills `ratio_to_memcpy` of every stream result from the memcpy reference at its payload
    /// size.
    pub fn compute_ratios(&mut self) {
        for r in &mut self.results {
            r.ratio_to_memcpy = r.throughput.as_ref().and_then(|t| {
                self.memcpy
                    .iter()
                    .find(|m| m.payload_bytes == r.payload_bytes && m.bytes_per_s > 0.0)
                    .map(|m| t.bytes_per_s / m.bytes_per_s)
            });
        }
        let baseline = self
            .results
            .iter()
            .filter(|r| r.mechanism == BASELINE && r.pattern == Pattern::PingPong)
            .filter_map(|r| r.rtt_ns.as_ref().map(|s| (r.payload_bytes, s.p50)))
            .min_by_key(|(size, _)| *size)
            .map(|(_, p50)| p50)
            .filter(|&p50| p50 > 0);
        self.run.baseline_p50_ns = baseline;
        let any_floor = self.results.iter().any(|r| r.floor_p50_ns.unwrap_or(0) > 0);
        if baseline.is_none() && !any_floor {
            let why = self
                .results
                .iter()
                .find(|r| r.mechanism == BASELINE)
                .and_then(|r| r.skipped.clone().or_else(|| r.error.clone()))
                .unwrap_or_else(|| "it did not run".to_owned());
            self.run.ratios_omitted = Some(format!("the {BASELINE} row was skipped: {why}"));
        } else {
            self.run.ratios_omitted = None;
        }
        for r in &mut self.results {
            r.ratio_to_limit = r.rtt_ns.as_ref().and_then(|s| {
                let floor = r.floor_p50_ns.filter(|&f| f > 0).or(baseline)?;
                Some(s.p50 as f64 / floor as f64)
            });
            r.tail_ratio_to_limit = r.rtt_ns.as_ref().and_then(|s| {
                let floor = r.floor_p99_9_ns.filter(|&f| f > 0)?;
                Some(s.p999 as f64 / floor as f64)
            });
        }
    }

    /// The smallest and largest floor measured next to a row (the `limit` row's own figures
    /// excluded), or `None` when no row has one.
    pub fn floor_range(&self) -> Option<(u64, u64)> {
        let floors = self
            .results
            .iter()
            .filter(|r| r.mechanism != BASELINE)
            .filter_map(|r| r.floor_p50_ns);
        floors.fold(None, |acc, f| match acc {
            None => Some((f, f)),
            Some((lo, hi)) => Some((lo.min(f), hi.max(f))),
        })
    }

    /// Measured ping-pong results with no adjacent floor (their ratio, if any, divides by the
    /// baseline row's p50).
    pub fn without_floor(&self) -> impl Iterator<Item = &BenchResult> {
        self.results
            .iter()
            .filter(|r| r.rtt_ns.is_some() && r.floor_p50_ns.is_none())
    }

    /// Results that failed while running.
    pub fn failures(&self) -> impl Iterator<Item = &BenchResult> {
        self.results.iter().filter(|r| r.error.is_some())
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serialises")
    }

    /// Writes the report as JSON (with a final newline).
    pub fn write_json(&self, mut w: impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    /// Reads a report back.
    pub fn from_json(s: &str) -> serde_json::Result<Report> {
        serde_json::from_str(s)
    }
}

/// A round-trip summary with this p50, p99 twice and p99.9 three times as long (tests).
#[cfg(test)]
pub(crate) fn test_rtt(p50: u64) -> Option<RttSummary> {
    Some(RttSummary {
        p50,
        p99: p50 * 2,
        p999: p50 * 3,
        mean: p50 as f64,
        min: None,
        max: None,
        samples: Some(10),
    })
}

/// A quick-run report of `results` at 64 bytes, no memcpy reference, ratios not computed yet
/// (the tests of this module and of the table).
#[cfg(test)]
pub(crate) fn test_report(results: Vec<BenchResult>) -> Report {
    Report {
        ipcx_version: "0.1.0".into(),
        machine: Machine::detect(None),
        run: RunInfo {
            budget: "quick".into(),
            sizes: vec![64],
            baseline: BASELINE.into(),
            baseline_p50_ns: None,
            ratios_omitted: None,
            elapsed_s: None,
        },
        results,
        memcpy: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: Vec<BenchResult>) -> Report {
        test_report(results)
    }

    fn rtt(p50: u64) -> Option<RttSummary> {
        test_rtt(p50)
    }

    #[test]
    fn ratios_against_the_limit_row_or_omitted_with_a_reason() {
        let mut limit = BenchResult::new(BASELINE, Pattern::PingPong, 64);
        limit.rtt_ns = rtt(100);
        let mut unix = BenchResult::new("unix", Pattern::PingPong, 64);
        unix.rtt_ns = rtt(45_000);
        let mut r = report(vec![limit, unix.clone()]);
        r.compute_ratios();
        assert_eq!(r.run.baseline_p50_ns, Some(100));
        assert_eq!(r.results[1].ratio_to_limit, Some(450.0));

        let mut r = report(vec![
            BenchResult::skipped(BASELINE, Pattern::PingPong, 64, "not available"),
            unix,
        ]);
        r.compute_ratios();
        assert!(r.results[1].ratio_to_limit.is_none());
        assert!(
            r.run
                .ratios_omitted
                .as_deref()
                .unwrap()
                .contains("not available")
        );
    }

    #[test]
    fn json_omits_absent_figures_and_round_trips() {
        let mut r = report(vec![BenchResult::skipped(
            "udp",
            Pattern::Stream,
            1 << 20,
            "too big",
        )]);
        r.compute_ratios();
        let s = r.to_json();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let res = &v["results"][0];
        assert_eq!(res["skipped"], "too big");
        assert_eq!(res["processes"], true);
        assert_eq!(res["pattern"], "stream");
        assert!(res.get("rtt_ns").is_none());
        assert!(res.get("throughput").is_none());
        assert!(v["machine"]["pinned"].is_null());
        assert_eq!(Report::from_json(&s).unwrap(), r);
    }

    #[test]
    fn each_ratio_divides_by_the_floor_measured_next_to_it() {
        let mut limit = BenchResult::new(BASELINE, Pattern::PingPong, 64);
        limit.rtt_ns = rtt(140);
        limit.floor_p50_ns = Some(140);
        limit.floor_p99_9_ns = Some(420);
        // Measured in a slow phase: the floor next to it was 430 ns.
        let mut ring = BenchResult::new("ring", Pattern::PingPong, 64);
        ring.rtt_ns = rtt(860);
        ring.floor_p50_ns = Some(430);
        ring.floor_p99_9_ns = Some(1_290);
        // Its floor measurement failed: the limit row's p50 stands in.
        let mut unix = BenchResult::new("unix", Pattern::PingPong, 64);
        unix.rtt_ns = rtt(14_000);
        let mut stream = BenchResult::new("ring", Pattern::Stream, 64);
        stream.throughput = Some(Throughput {
            msgs_per_s: 1e6,
            bytes_per_s: 64e6,
            messages: None,
        });
        let mut r = report(vec![limit, ring, unix, stream]);
        r.compute_ratios();
        assert_eq!(r.run.baseline_p50_ns, Some(140));
        assert!(r.run.ratios_omitted.is_none());
        assert_eq!(r.results[0].ratio_to_limit, Some(1.0));
        assert_eq!(r.results[1].ratio_to_limit, Some(2.0));
        assert_eq!(r.results[2].ratio_to_limit, Some(100.0));
        assert_eq!(r.results[3].ratio_to_limit, None);
        // Tails divide by the floor's own p99.9 (ring: 2580 / 1290), and only by that.
        assert_eq!(r.results[0].tail_ratio_to_limit, Some(1.0));
        assert_eq!(r.results[1].tail_ratio_to_limit, Some(2.0));
        assert_eq!(r.results[2].tail_ratio_to_limit, None);
        assert_eq!(r.results[3].tail_ratio_to_limit, None);
        assert_eq!(r.floor_range(), Some((430, 430)));
        let without: Vec<_> = r.without_floor().map(|r| r.mechanism.as_str()).collect();
        assert_eq!(without, ["unix"]);

        // No limit row (a size it cannot carry) but floors next to the rows: ratios still.
        let mut ring = BenchResult::new("ring", Pattern::PingPong, 4096);
        ring.rtt_ns = rtt(3_000);
        ring.floor_p50_ns = Some(150);
        let mut r = report(vec![
            BenchResult::skipped(BASELINE, Pattern::PingPong, 4096, "one cache line"),
            ring,
        ]);
        r.compute_ratios();
        assert_eq!(r.run.baseline_p50_ns, None);
        assert!(r.run.ratios_omitted.is_none());
        assert_eq!(r.results[1].ratio_to_limit, Some(20.0));
    }

    #[test]
    fn the_floor_fields_round_trip_and_older_reports_still_read() {
        let mut ring = BenchResult::new("ring", Pattern::PingPong, 64);
        ring.rtt_ns = rtt(600);
        ring.floor_p50_ns = Some(150);
        ring.floor_p99_9_ns = Some(700);
        let mut r = report(vec![ring]);
        r.compute_ratios();
        let s = r.to_json();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let res = &v["results"][0];
        assert_eq!(res["floor_p50_ns"], 150);
        assert_eq!(res["floor_p99_9_ns"], 700);
        assert_eq!(res["ratio_to_limit"], 4.0);
        let back = Report::from_json(&s).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.results[0].floor_p99_9_ns, Some(700));

        // A report written before the floor fields existed.
        let mut old = v.clone();
        let obj = old["results"][0].as_object_mut().unwrap();
        obj.remove("floor_p50_ns");
        obj.remove("floor_p99_9_ns");
        let back = Report::from_json(&old.to_string()).unwrap();
        assert_eq!(back.results[0].floor_p50_ns, None);
        assert_eq!(back.results[0].floor_p99_9_ns, None);
    }
}
