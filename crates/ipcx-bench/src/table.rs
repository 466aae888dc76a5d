//! The table `ipcx bench` prints: one line per mechanism and payload size.

use std::fmt::Write as _;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use crate::report::{BASELINE, BenchResult, Pattern, Report};
use crate::units::{format_bytes_per_s, format_ns, format_rate, format_ratio, format_size};

/// A `limit` p50 above this means the two busy-polling processes took turns on one CPU
/// (between two CPUs a cache-line round trip takes well under 2 µs).
const SHARED_CPU_FLOOR_NS: u64 = 5_000;

/// One table line: the results of one mechanism at one payload size.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// The mechanism.
    pub mechanism: &'a str,
    /// Bytes per message; `None` for a mechanism skipped at every size.
    pub payload: Option<u64>,
    /// Its results, one per pattern.
    pub results: Vec<&'a BenchResult>,
}

/// Groups the results by mechanism and payload (in report order); a mechanism skipped at every
/// size for the same reason becomes a single line.
pub fn lines(report: &Report) -> Vec<Line<'_>> {
    let mut out: Vec<Line<'_>> = Vec::new();
    for r in &report.results {
        match out
            .iter_mut()
            .find(|l| l.mechanism == r.mechanism && l.payload == Some(r.payload_bytes))
        {
            Some(l) => l.results.push(r),
            None => out.push(Line {
                mechanism: &r.mechanism,
                payload: Some(r.payload_bytes),
                results: vec![r],
            }),
        }
    }
    let mut merged: Vec<Line<'_>> = Vec::new();
    for l in out {
        let whole = report
            .results
            .iter()
            .filter(|r| r.mechanism == l.mechanism)
            .collect::<Vec<_>>();
        let one_reason = whole.first().and_then(|r| r.skipped.as_ref());
        let all_same = one_reason.is_some()
            && whole.iter().all(|r| r.skipped.as_ref() == one_reason)
            && whole.len() > 1;
        if all_same {
            if !merged.iter().any(|m| m.mechanism == l.mechanism) {
                merged.push(Line {
                    mechanism: l.mechanism,
                    payload: None,
                    results: whole,
                });
            }
        } else {
            merged.push(l);
        }
    }
    merged
}

struct Notes(Vec<String>);

impl Notes {
    fn mark(&mut self, reason: &str) -> usize {
        if let Some(i) = self.0.iter().position(|r| r == reason) {
            return i + 1;
        }
        self.0.push(reason.to_owned());
        self.0.len()
    }
}

/// The header line, the table and the notes, as printed on stdout.
pub fn render(report: &Report) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "mechanism",
            "payload",
            "p50",
            "p99",
            "p99.9",
            "× limit",
            "p99.9 × limit",
            "msgs/s",
            "throughput",
            "note",
        ]);
    let mut notes = Notes(Vec::new());
    for l in lines(report) {
        let ping = l.results.iter().find(|r| r.pattern == Pattern::PingPong);
        let strm = l.results.iter().find(|r| r.pattern == Pattern::Stream);
        let rtt = ping.and_then(|r| r.rtt_ns.as_ref());
        let thr = strm.and_then(|r| r.throughput.as_ref());
        let dash = || "—".to_owned();
        let mut note = Vec::new();
        for r in &l.results {
            let (what, reason) = match (&r.skipped, &r.error) {
                (Some(s), _) => ("skipped", s),
                (None, Some(e)) => ("failed", e),
                _ => continue,
            };
            let n = notes.mark(reason);
            let text = if l.results.len() > 1
                && l.results
                    .iter()
                    .all(|o| o.skipped.as_ref().or(o.error.as_ref()) == Some(reason))
            {
                format!("{what} [{n}]")
            } else {
                format!("{} {what} [{n}]", r.pattern)
            };
            if !note.contains(&text) {
                note.push(text);
            }
        }
        t.add_row(vec![
            l.mechanism.to_owned(),
            l.payload.map_or_else(|| "all".to_owned(), format_size),
            rtt.map_or_else(dash, |s| format_ns(s.p50 as f64)),
            rtt.map_or_else(dash, |s| format_ns(s.p99 as f64)),
            rtt.map_or_else(dash, |s| format_ns(s.p999 as f64)),
            ping.and_then(|r| r.ratio_to_limit)
                .map_or_else(dash, format_ratio),
            ping.and_then(|r| r.tail_ratio_to_limit)
                .map_or_else(dash, format_ratio),
            thr.map_or_else(dash, |t| format_rate(t.msgs_per_s, "")),
            thr.map_or_else(dash, |t| format_bytes_per_s(t.bytes_per_s)),
            note.join("; "),
        ]);
    }
    if !report.memcpy.is_empty() {
        let n = notes.mark(
            "memcpy: not IPC, a reference measured in this run: one thread of this process \
             copying a message-size buffer into the next stretch of an area as large as the \
             ring rows' ring for that size, round and round (every byte read once, written once); \
             the fastest of a few short windows",
        );
        for m in &report.memcpy {
            let copies_per_s = m.bytes_per_s / m.payload_bytes.max(1) as f64;
            t.add_row(vec![
                "memcpy".to_owned(),
                format_size(m.payload_bytes),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                format_rate(copies_per_s, ""),
                format_bytes_per_s(m.bytes_per_s),
                format!("reference [{n}]"),
            ]);
        }
    }
    for i in [1usize, 2, 3, 4, 5, 6, 7, 8] {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "ipcx {} bench: {}",
        report.ipcx_version,
        report.machine.describe()
    );
    let _ = writeln!(
        out,
        "latency: round trips between two processes after a warm-up (budget: {}); throughput: \
         one-way stream, every byte checksummed by the receiver and verified",
        report.run.budget
    );
    let _ = writeln!(out, "{t}");
    for line in ratio_footer(report) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(line) = memcpy_footer(report) {
        let _ = writeln!(out, "{line}");
    }
    for (i, n) in notes.0.iter().enumerate() {
        let _ = writeln!(out, "[{}] {n}", i + 1);
    }
    let failed = report.failures().count();
    if failed > 0 {
        let _ = writeln!(out, "{failed} measurement(s) failed; see the notes above");
    }
    out
}

/// The lines under the table that say what the "× limit" column divides by.
fn ratio_footer(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let shared_cpu = |what: &str| {
        format!(
            "  (a cache-line round trip above {}: the two processes most likely shared one CPU \
             during {what}, so ratios against it understate; pin them to two CPUs with --cpus, \
             e.g. --cpus 0,1)",
            format_ns(SHARED_CPU_FLOOR_NS as f64)
        )
    };
    match (
        report.floor_range(),
        report.run.baseline_p50_ns,
        &report.run.ratios_omitted,
    ) {
        (Some((lo, hi)), base, _) => {
            let range = if lo == hi {
                format_ns(lo as f64)
            } else {
                format!("{}–{}", format_ns(lo as f64), format_ns(hi as f64))
            };
            let limit_row = base.map_or_else(String::new, |p50| {
                format!(
                    "; the {BASELINE} row itself, measured first: {}",
                    format_ns(p50 as f64)
                )
            });
            out.push(format!(
                "× limit: each p50 divided by the p50 of a {BASELINE} ping-pong (the cache-line \
                 floor between these two CPUs) measured in slices between that row's rounds; \
                 floors this run: \
                 {range}{limit_row}; p99.9 × limit: each p99.9 divided by the p99.9 of the \
                 same floor slices"
            ));
            let without = report
                .without_floor()
                .filter(|r| r.mechanism != BASELINE)
                .count();
            if without > 0 {
                out.push(match base {
                    Some(p50) => format!(
                        "  ({without} measurement(s) got no floor of their own: divided by the \
                         {BASELINE} row's {} instead)",
                        format_ns(p50 as f64)
                    ),
                    None => {
                        format!("  ({without} measurement(s) got no floor of their own: no ratio)")
                    }
                });
            }
            if hi > SHARED_CPU_FLOOR_NS {
                out.push(shared_cpu("some of these floors"));
            }
        }
        (None, Some(p50), _) => {
            out.push(format!(
                "× limit: each p50 divided by the p50 of the {BASELINE} row of this run ({}), \
                 the cache-line floor between these two CPUs",
                format_ns(p50 as f64)
            ));
            if p50 > SHARED_CPU_FLOOR_NS {
                out.push(shared_cpu(&format!("the {BASELINE} row")));
            }
        }
        (None, None, Some(why)) => out.push(format!("× limit omitted: {why}")),
        (None, None, None) => {}
    }
    out
}

/// `% of memcpy at 1 MiB (stream throughput / memcpy reference): ring 85%, ...` for the
/// largest payload with a reference, or `None` when no stream row was measured there.
fn memcpy_footer(report: &Report) -> Option<String> {
    let top = report
        .memcpy
        .iter()
        .filter(|m| m.bytes_per_s > 0.0)
        .max_by_key(|m| m.payload_bytes)?;
    let rows: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.payload_bytes == top.payload_bytes && r.pattern == Pattern::Stream)
        .filter_map(|r| {
            let ratio = r.ratio_to_memcpy?;
            Some(format!("{} {:.0}%", r.mechanism, ratio * 100.0))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(format!(
        "% of memcpy at {} (each stream throughput over the memcpy row's {} at that size): {}",
        format_size(top.payload_bytes),
        format_bytes_per_s(top.bytes_per_s),
        rows.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::RttSummary;
    use crate::report::Throughput;

    #[test]
    fn renders_measured_skipped_and_failed_rows() {
        let mut ping = BenchResult::new("unix", Pattern::PingPong, 64);
        ping.rtt_ns = Some(RttSummary {
            p50: 42_500,
            p99: 61_000,
            p999: 86_000,
            mean: 43_000.0,
            min: None,
            max: None,
            samples: None,
        });
        let mut strm = BenchResult::new("unix", Pattern::Stream, 64);
        strm.throughput = Some(Throughput {
            msgs_per_s: 850_000.0,
            bytes_per_s: 54_400_000.0,
            messages: None,
        });
        let mut results = vec![
            BenchResult::skipped(BASELINE, Pattern::PingPong, 64, "not available yet"),
            BenchResult::skipped(BASELINE, Pattern::Stream, 64, "not available yet"),
            BenchResult::skipped(BASELINE, Pattern::PingPong, 4096, "not available yet"),
            BenchResult::skipped(BASELINE, Pattern::Stream, 4096, "not available yet"),
            ping,
            strm,
            BenchResult::skipped("udp", Pattern::PingPong, 1 << 20, "UDP carries at most"),
            BenchResult::skipped("udp", Pattern::Stream, 1 << 20, "UDP carries at most"),
            BenchResult::failed("tcp", Pattern::Stream, 64, "checksum mismatch"),
        ];
        let mut ok_tcp = BenchResult::new("tcp", Pattern::PingPong, 64);
        ok_tcp.rtt_ns = results[4].rtt_ns.clone();
        results.insert(8, ok_tcp);
        let mut r = crate::report::test_report(results);
        r.run.sizes = vec![64, 4096];
        r.memcpy = vec![crate::report::MemcpyResult {
            payload_bytes: 64,
            area_bytes: 1 << 20,
            bytes_per_s: 108_800_000.0,
            copies: 1000,
        }];
        r.compute_ratios();
        let s = render(&r);
        assert!(s.contains("unpinned"), "{s}");
        assert!(s.contains("42.5 µs"), "{s}");
        assert!(s.contains("54.4 MB/s"), "{s}");
        assert!(s.contains("× limit omitted"), "{s}");
        assert!(s.contains("[1] not available yet"), "{s}");
        assert!(s.contains("UDP carries at most"), "{s}");
        assert!(s.contains("stream failed [3]"), "{s}");
        assert!(s.contains("1 measurement(s) failed"), "{s}");
        // The copy reference: its own line, and the stream row's share of it.
        assert!(s.contains("│ memcpy"), "{s}");
        assert!(s.contains("108.8 MB/s") || s.contains("109 MB/s"), "{s}");
        assert!(s.contains("% of memcpy at 64 B"), "{s}");
        assert!(s.contains("unix 50%"), "{s}");
        // The limit row is one line, not one per size.
        assert_eq!(s.matches("│ limit").count(), 1, "{s}");
    }

    #[test]
    fn the_ratio_column_divides_by_the_floor_next_to_each_row() {
        let rtt = crate::report::test_rtt;
        let mut limit = BenchResult::new(BASELINE, Pattern::PingPong, 64);
        limit.rtt_ns = rtt(140);
        limit.floor_p50_ns = Some(140);
        let mut fast = BenchResult::new("ring", Pattern::PingPong, 64);
        fast.rtt_ns = rtt(700);
        fast.floor_p50_ns = Some(140);
        fast.floor_p99_9_ns = Some(700);
        let mut slow = BenchResult::new("ring-spin", Pattern::PingPong, 64);
        slow.rtt_ns = rtt(1_290);
        slow.floor_p50_ns = Some(430);
        let mut lone = BenchResult::new("unix", Pattern::PingPong, 64);
        lone.rtt_ns = rtt(14_000);
        let mut r = crate::report::test_report(vec![limit, fast, slow, lone]);
        r.compute_ratios();
        let s = render(&r);
        let row = |name: &str| {
            s.lines()
                .find(|l| l.starts_with(&format!("│ {name} ")))
                .unwrap_or_else(|| panic!("{name}: {s}"))
                .to_owned()
        };
        assert!(row("limit").contains("1.00"), "{s}");
        assert!(row("ring").contains("┆    5.00 ┆"), "{s}");
        assert!(row("ring-spin").contains("┆    3.00 ┆"), "{s}");
        assert!(row("unix").contains("┆     100 ┆"), "{s}");
        // The tail column: ring's p99.9 (2100 ns) over its floor slices' p99.9 (700 ns); none
        // for a row without a floor of its own.
        let tail = |name: &str| {
            row(name)
                .split('┆')
                .nth(6)
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        assert_eq!(tail("ring"), "3.00", "{s}");
        assert_eq!(tail("unix"), "—", "{s}");
        assert!(s.contains("p99.9 × limit: each p99.9 divided by"), "{s}");
        assert!(
            s.contains(
                "measured in slices between that row's rounds; floors this run: 140 ns–430 ns"
            ),
            "{s}"
        );
        assert!(s.contains("measured first: 140 ns"), "{s}");
        assert!(
            s.contains("1 measurement(s) got no floor of their own"),
            "{s}"
        );
        assert!(!s.contains("shared one CPU"), "{s}");
    }
}
