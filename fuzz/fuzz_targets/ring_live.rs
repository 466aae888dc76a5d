//! Fuzzes a live ring: a valid publish/subscribe segment in memory, one thread reading as a
//! subscriber does while the main thread publishes and, driven by the input, writes arbitrary
//! bytes at arbitrary offsets of the segment (a hostile peer scribbling on the live ring).
//! The reader must only ever get messages of a possible length or a `Corrupt` error: no
//! panic, no access outside the segment, no hang (every call is non-blocking and the reader
//! stops a bounded number of empty polls after the scribbling ends).
//!
//! Input: one byte of parameters (capacity, largest message, overwrite mode), then commands
//! of three bytes, `(offset: u16, value: u8)`: each writes `value` at `offset` (modulo the
//! segment's length); every third one also publishes a message whose length comes from
//! `value`.
#![no_main]

use std::sync::atomic::{AtomicBool, Ordering};

use ipcx::ring::{LiveSegment, Options, RingError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&params, cmds)) = data.split_first() else {
        return;
    };
    let max = 16 << (params % 4);
    let opts = Options::new()
        .capacity(256 << ((params >> 2) % 4))
        .max_message(max)
        .max_subscribers(2)
        .overwrite(params & 0x80 != 0);
    let Ok(seg) = LiveSegment::new(&opts) else {
        return;
    };
    let Ok(mut reader) = seg.reader() else {
        return;
    };
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut out = Vec::new();
            let (mut idle_after_done, mut after_done) = (0, 0);
            // Bounded: once the scribbler is done, at most 64 empty polls or 4096 calls more.
            while idle_after_done < 64 && after_done < 4096 {
                if done.load(Ordering::Acquire) {
                    after_done += 1;
                }
                match reader.try_recv(&mut out) {
                    Ok(Some(len)) => assert!(len <= max && out.len() == len, "{len} > {max}"),
                    Ok(None) => {
                        if done.load(Ordering::Acquire) {
                            idle_after_done += 1;
                        }
                        std::thread::yield_now();
                    }
                    Err(RingError::Corrupt { .. }) => break,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        });
        let mut writer = seg.writer().ok();
        let payload = vec![0x5a; max];
        for (i, c) in cmds.chunks_exact(3).enumerate() {
            let at = usize::from(u16::from_le_bytes([c[0], c[1]])) % seg.len();
            seg.poke(at, c[2]);
            if i % 3 == 0
                && let Some(w) = writer.as_mut()
            {
                let len = usize::from(c[2]) % (max + 1);
                match w.try_send(&payload[..len]) {
                    Ok(()) | Err(RingError::Full) => {}
                    // The scribbling broke the writer's view: it stops publishing.
                    Err(_) => writer = None,
                }
            }
        }
        done.store(true, Ordering::Release);
    });
});
