//! The two measurements: round trips (ping-pong) and one-way streaming.

use std::time::{Duration, Instant};

use super::budget::PhaseBudget;
use super::error::PhaseError;
use super::watch::Watch;
use crate::checksum::{Digest, END_SEQ, PayloadGen, seq_of};
use crate::histogram::{Recorder, RttSummary};
use crate::mechanism::Link;
use crate::protocol::Command;
use crate::report::Throughput;
use crate::stall::SLICE;

/// Round trips: warm-up, then the measurement, recorded in `rec` (which may hold the round
/// trips of earlier rounds of the same row); the peer's checksum of everything it echoed is
/// verified. Returns the summary of everything `rec` holds then.
pub(super) fn ping_pong(
    link: &mut dyn Link,
    w: &mut Watch<'_>,
    payload: usize,
    budget: PhaseBudget,
    rec: &mut Recorder,
) -> Result<RttSummary, PhaseError> {
    w.peer.send(&Command::Echo)?;
    let mut g = PayloadGen::new(payload);
    let mut sent = Digest::new();
    let before = rec.len();
    let mut buf = Vec::with_capacity(payload);
    let mut seq: u64 = 0;
    for (measure, b) in [(false, budget.warmup()), (true, budget)] {
        let start = Instant::now();
        let mut i: u64 = 0;
        let mut elapsed = Duration::ZERO;
        while !b.done(i, elapsed) {
            let t0 = Instant::now();
            let mut deadline = t0 + SLICE;
            w.send_generated(link, &mut g, seq, &mut deadline)?;
            // The echo is checked where the link hands it over (in place for a ring).
            let mut back = (0, None);
            w.recv_with(link, &mut buf, &mut deadline, &mut |m| {
                back = (m.len(), seq_of(m))
            })?;
            let t1 = Instant::now();
            if back != (payload, Some(seq)) {
                return Err(PhaseError::Failed(format!(
                    "round trip {seq} came back as {} bytes with sequence number {:?}",
                    back.0, back.1
                )));
            }
            if measure {
                rec.record(t1 - t0);
            }
            sent.add(g.sum(seq));
            seq += 1;
            i += 1;
            elapsed = t1 - start;
            if i.is_multiple_of(64) && (w.stop)() {
                return Err(PhaseError::Interrupted);
            }
        }
    }
    let mut deadline = Instant::now() + SLICE;
    w.send(link, g.message(END_SEQ), &mut deadline)?;
    let got = w.done(Duration::from_secs(10).max(w.stall.limit()))?;
    sent.verify(&got)
        .map_err(|e| PhaseError::Failed(format!("ping-pong: {e}")))?;
    rec.summary()
        .filter(|_| rec.len() > before)
        .ok_or_else(|| PhaseError::Failed("no round trip measured".into()))
}

/// One-way streaming; windowed with credits when the mechanism needs flow control.
pub(super) fn stream(
    link: &mut dyn Link,
    w: &mut Watch<'_>,
    payload: usize,
    budget: PhaseBudget,
    flow_control: bool,
) -> Result<Throughput, PhaseError> {
    let window: u64 = if flow_control {
        ((64 << 10) / payload.max(1024)).clamp(2, 64) as u64
    } else {
        0
    };
    let credit_every = if window > 0 { (window / 2).max(1) } else { 0 };
    w.peer.send(&Command::Sink { credit_every })?;
    let mut g = PayloadGen::new(payload);
    let mut sent = Digest::new();
    let mut credit = Vec::new();
    let mut seq: u64 = 0;
    let mut acked: u64 = 0;
    let t0 = Instant::now();
    let mut deadline = t0 + SLICE;
    let mut elapsed = Duration::ZERO;
    while !budget.done(seq, elapsed) {
        while window > 0 && seq - acked >= window {
            w.recv(link, &mut credit, &mut deadline)?;
            match seq_of(&credit) {
                Some(c) if c <= seq && c >= acked => acked = c,
                other => {
                    return Err(PhaseError::Failed(format!(
                        "bad credit {other:?} after {seq} messages"
                    )));
                }
            }
        }
        w.send_generated(link, &mut g, seq, &mut deadline)?;
        sent.add(g.sum(seq));
        seq += 1;
        if seq.is_multiple_of(16) || payload >= 64 << 10 {
            elapsed = t0.elapsed();
            if (w.stop)() {
                return Err(PhaseError::Interrupted);
            }
        }
    }
    w.send(link, g.message(END_SEQ), &mut deadline)?;
    let got = w.done(Duration::from_secs(10).max(w.stall.limit()))?;
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    sent.verify(&got)
        .map_err(|e| PhaseError::Failed(format!("stream: {e}")))?;
    Ok(Throughput {
        msgs_per_s: seq as f64 / secs,
        bytes_per_s: (seq * payload as u64) as f64 / secs,
        messages: Some(seq),
    })
}
