//! Feeds the FIFO reassembler (`pipe::reassembly::Reassembler`) bytes in arbitrary read sizes.
//!
//! Two kinds of input, chosen by the first byte:
//! * raw: arbitrary bytes as they might come from a hostile writer. No panic, the bytes held
//!   never exceed what was fed plus the cap, and every message delivered fits the maximum.
//! * scripted: the rest of the input is a script of writers that start messages, write some or
//!   all of their chunks (interleaved with the other writers' chunks and plain frames) and
//!   abandon messages half-way, as crashing writers do. The wire is made with the real encoder.
//!   Every message delivered is one that was sent whole, each writer's in order; with a cap
//!   large enough for everything, every whole message is delivered and every abandoned one is
//!   reported once.
#![no_main]

use std::collections::VecDeque;

use ipcx::framing::encode_frame;
use ipcx::pipe::chunk::{WriterId, for_each_chunk};
use ipcx::pipe::reassembly::{Reassembler, ReassemblyError};
use libfuzzer_sys::fuzz_target;

const WRITERS: usize = 4;
/// Writer index of plain frames from programs that do not chunk.
const PLAIN: u32 = 99;

/// A message naming its writer and number, `len` bytes long (at least 8).
fn message(writer: u32, seq: u32, len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(len.max(8));
    m.extend_from_slice(&writer.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.resize(len.max(8), (writer * 31 + seq) as u8);
    m
}

fn feed(r: &mut Reassembler, wire: &[u8], sizes: &[u8]) -> Vec<Result<Vec<u8>, ReassemblyError>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < wire.len() {
        let step = 1 + usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(7)) * 37;
        i += 1;
        let end = (at + step).min(wire.len());
        r.extend(&wire[at..end]);
        at = end;
        while let Some(item) = r.next() {
            out.push(item);
        }
    }
    r.end_of_stream();
    while let Some(item) = r.next() {
        out.push(item);
    }
    out
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 4 {
        return;
    }
    let max_frame_len = 1 + usize::from(input[1]) * 256;
    let max_buffered = usize::from(input[2]) * 1024;
    let sizes = &input[3..input.len().min(11)];
    let body = &input[input.len().min(11)..];

    if input[0] & 1 == 0 {
        let mut r = Reassembler::new(max_frame_len, max_buffered);
        let mut fed = 0;
        for part in body.chunks(1 + usize::from(input[0] >> 1)) {
            r.extend(part);
            fed += part.len();
            while let Some(item) = r.next() {
                if let Ok(m) = item {
                    assert!(m.len() <= max_frame_len);
                    assert!(m.len() <= fed);
                }
            }
            assert!(
                r.buffered() <= fed + max_buffered,
                "holds more than input and cap"
            );
        }
        r.end_of_stream();
        while r.next().is_some() {}
        assert_eq!(r.buffered(), 0);
        return;
    }

    // Scripted writers.
    let big_cap = input[2] == 255;
    let max_frame_len = 64 * 1024;
    let max_buffered = if big_cap { usize::MAX } else { max_buffered };
    let ids: Vec<WriterId> = (0..WRITERS as u32)
        .map(|n| WriterId {
            pid_ns: 0,
            pid: 1000 + n,
            start_time: 0,
            serial: n,
        })
        .collect();
    let mut seq = [0u32; WRITERS];
    let mut pending: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); WRITERS];
    let mut current: Vec<Option<Vec<u8>>> = vec![None; WRITERS];
    // Whether the message in progress has a chunk on the wire (then the reader knows of it).
    let mut started = [false; WRITERS];
    let mut whole: Vec<Vec<Vec<u8>>> = vec![Vec::new(); WRITERS];
    let mut plain_sent = Vec::new();
    let mut abandoned = 0usize;
    let mut wire = Vec::new();
    let mut ops = body.iter();
    while let Some(&op) = ops.next() {
        let w = usize::from(op >> 2) % WRITERS;
        match op & 3 {
            0 => {
                // Writer w starts a message (abandoning the one in progress).
                let hi = usize::from(*ops.next().unwrap_or(&0));
                let lo = usize::from(*ops.next().unwrap_or(&0));
                let len = (hi << 8 | lo) % 40_000;
                if current[w].take().is_some() && started[w] {
                    abandoned += 1;
                }
                started[w] = false;
                pending[w].clear();
                let m = message(w as u32, seq[w], len);
                if m.len() + 4 <= ipcx::pipe::PIPE_BUF {
                    wire.extend(encode_frame(&m, max_frame_len).unwrap());
                    whole[w].push(m);
                } else {
                    for_each_chunk::<()>(ids[w], seq[w], &m, |c| {
                        pending[w].push_back(c.to_vec());
                        Ok(())
                    })
                    .unwrap();
                    current[w] = Some(m);
                }
                seq[w] += 1;
            }
            1 | 3 => {
                // Writer w writes its next chunk, or all of them.
                let n = if op & 3 == 1 { 1 } else { usize::MAX };
                for _ in 0..n {
                    let Some(c) = pending[w].pop_front() else {
                        break;
                    };
                    wire.extend(c);
                    started[w] = true;
                    if pending[w].is_empty() {
                        whole[w].push(current[w].take().expect("in progress"));
                    }
                }
            }
            _ => {
                // A plain frame from a program that does not chunk.
                let m = message(PLAIN, plain_sent.len() as u32, usize::from(op));
                wire.extend(encode_frame(&m, max_frame_len).unwrap());
                plain_sent.push(m);
            }
        }
    }
    abandoned += (0..WRITERS)
        .filter(|&w| current[w].is_some() && started[w])
        .count();

    let mut r = Reassembler::new(max_frame_len, max_buffered);
    let out = feed(&mut r, &wire, sizes);
    assert_eq!(r.buffered(), 0);
    let mut next = [0usize; WRITERS];
    let mut next_plain = 0;
    let mut delivered = 0;
    let mut truncated = 0;
    for item in out {
        match item {
            Ok(m) => {
                let writer = u32::from_be_bytes(m[..4].try_into().unwrap());
                if writer == PLAIN {
                    let at = plain_sent[next_plain..]
                        .iter()
                        .position(|x| *x == m)
                        .expect("a plain frame that was not sent, or out of order");
                    next_plain += at + 1;
                    continue;
                }
                let w = writer as usize;
                assert!(w < WRITERS, "a message nobody sent");
                // The next whole message of this writer, possibly after some dropped ones.
                let at = whole[w][next[w]..]
                    .iter()
                    .position(|x| *x == m)
                    .expect("a message that was not sent whole, or out of order");
                next[w] += at + 1;
                delivered += 1;
            }
            Err(ReassemblyError::Truncated {
                writer: Some(_), ..
            }) => truncated += 1,
            Err(ReassemblyError::OverBudget { .. }) => assert!(!big_cap),
            Err(e) => panic!("unexpected error on a well-formed stream: {e}"),
        }
    }
    if big_cap {
        let sent: usize = whole.iter().map(Vec::len).sum();
        assert_eq!(delivered, sent, "a whole message was lost");
        assert_eq!(next_plain, plain_sent.len());
        assert_eq!(
            truncated, abandoned,
            "abandoned messages reported once each"
        );
    }
});
