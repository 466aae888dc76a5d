//! Round-trip times recorded in an HDR histogram, summarised as percentiles.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Records durations in nanoseconds (1 ns to 60 s, three significant digits).
#[derive(Debug, Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
}

/// The highest value the histogram tracks exactly (longer samples are clamped to it).
const MAX_NS: u64 = 60_000_000_000;

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).expect("static histogram bounds"),
        }
    }

    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_NS);
        self.hist.saturating_record(ns);
    }

    /// Records one sample given in nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The summary, or `None` when nothing was recorded.
    pub fn summary(&self) -> Option<RttSummary> {
        if self.hist.is_empty() {
            return None;
        }
        Some(RttSummary {
            p50: self.hist.value_at_quantile(0.5),
            p99: self.hist.value_at_quantile(0.99),
            p999: self.hist.value_at_quantile(0.999),
            mean: self.hist.mean(),
            min: Some(self.hist.min()),
            max: Some(self.hist.max()),
            samples: Some(self.hist.len()),
        })
    }

    /// The histogram itself, for callers that want other quantiles.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

/// Round-trip time percentiles in nanoseconds (the `rtt_ns` object of the JSON report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RttSummary {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Mean.
    pub mean: f64,
    /// Fastest sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// Slowest sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Number of round trips measured (the warm-up excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut r = Recorder::new();
        assert!(r.summary().is_none());
        for ns in 1..=1000u64 {
            r.record_ns(ns * 1000);
        }
        r.record(Duration::from_secs(3600));
        let s = r.summary().unwrap();
        assert_eq!(s.samples, Some(1001));
        assert!((499_000..=502_000).contains(&s.p50), "{s:?}");
        assert!((989_000..=992_000).contains(&s.p99), "{s:?}");
        assert!(s.max.unwrap() >= 59_000_000_000, "clamped, {s:?}");
        assert!(s.p50 <= s.p99 && s.p99 <= s.p999);
    }
}
