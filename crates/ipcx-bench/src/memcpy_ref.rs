//! The in-process copy reference: how fast one thread of this process copies a message of
//! each payload size, measured in the same run as the rows.
//!
//! A zero-copy transport still has the sender write every byte into shared memory and the
//! receiver read every byte there; a plain `memcpy` (one read and one write of every byte, in
//! one thread, with no second process and no synchronisation) is the yardstick those figures
//! are compared with. To give it a working set like the ring rows', each copy goes from one
//! message-size source buffer to the next message-size stretch of a destination area as large
//! as the ring's data area for that payload ([`crate::ring_rows::ring_options`]), wrapping
//! round at its end, as messages rotate through a ring.
//!
//! The time is split into [`WINDOWS`] windows and the fastest window is reported: on a busy
//! machine (other processes taking the CPU now and then) that is the figure least disturbed
//! by them, which makes the rows' percentages of it conservative.
//!
//! This is a reference, not a limit: a two-process transport may beat it when the two CPUs
//! share a cache and the copy does not (or the other way round); it says nothing of what a
//! multi-threaded copy achieves.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ipcx::ring::WaitStrategy;

use crate::report::MemcpyResult;

/// The windows the measurement of one size is split into (the fastest is reported).
pub const WINDOWS: u32 = 5;

/// The destination area for `payload`-byte copies: the data area of the ring rows' rings.
pub fn area_for(payload: usize) -> usize {
    crate::ring_rows::ring_options(payload, WaitStrategy::SpinThenSleep)
        .capacity
        .max(payload)
}

/// Copies `payload`-byte messages into a rotating area of `area` bytes for about `time`.
pub fn measure(payload: usize, area: usize, time: Duration) -> MemcpyResult {
    let payload = payload.max(1);
    let area = area.max(payload);
    let src: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
    // Written once first, so that page faults are not timed.
    let mut dst = vec![1u8; area];
    // Messages start on cache lines, as the ring's records do.
    let stride = payload.next_multiple_of(64);
    let mut copy_for = |time: Duration| -> (u64, Duration) {
        let mut at = 0usize;
        let mut copies = 0u64;
        // Look at the clock about every 64 KiB copied.
        let batch = ((64 << 10) / payload).max(1) as u64;
        let t0 = Instant::now();
        loop {
            for _ in 0..batch {
                if at + payload > area {
                    at = 0;
                }
                dst[at..at + payload].copy_from_slice(&src);
                black_box(&mut dst);
                at += stride;
            }
            copies += batch;
            let elapsed = t0.elapsed();
            if elapsed >= time {
                return (copies, elapsed);
            }
        }
    };
    copy_for(time / 5);
    let mut best = (0u64, 0.0f64);
    for _ in 0..WINDOWS {
        let (copies, elapsed) = copy_for(time / WINDOWS);
        let rate = (copies * payload as u64) as f64 / elapsed.as_secs_f64().max(1e-9);
        if rate > best.1 {
            best = (copies, rate);
        }
    }
    MemcpyResult {
        payload_bytes: payload as u64,
        area_bytes: area as u64,
        bytes_per_s: best.1,
        copies: best.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_every_size_within_its_area() {
        for payload in [8, 64, 4096, 100_000] {
            let area = area_for(payload);
            assert!(area >= payload * 4 && area >= 1 << 20, "{payload} {area}");
            let r = measure(payload, area, Duration::from_millis(5));
            assert_eq!(r.payload_bytes, payload as u64);
            assert_eq!(r.area_bytes, area as u64);
            assert!(r.copies > 0 && r.bytes_per_s > 0.0, "{r:?}");
        }
        assert_eq!(area_for(1 << 20), 4 << 20);
    }
}
