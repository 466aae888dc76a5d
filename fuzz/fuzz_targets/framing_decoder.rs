//! Feeds arbitrary bytes to the frame decoders: `FrameDecoder` (fed in chunks of random sizes,
//! and reading for itself with small limits) and `read_frame`. None may panic, all must agree,
//! and every decoded frame must re-encode to exactly the bytes it was decoded from.
#![no_main]

use ipcx::framing::{FrameDecoder, FrameError, encode_frame, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The first bytes choose the maximum frame length and the chunk sizes.
    if input.len() < 3 {
        return;
    }
    let max = usize::from(u16::from_le_bytes([input[0], input[1]]));
    let seed = input[2];
    let data = &input[3..];

    // Incremental decoder, fed in chunks.
    let mut dec = FrameDecoder::new(max);
    let mut frames = Vec::new();
    let mut consumed = 0usize;
    let mut fed = 0usize;
    let mut step = 0usize;
    let mut failed = false;
    'feed: while fed < data.len() {
        let size = 1 + (usize::from(seed).wrapping_mul(step + 7) % 97);
        step += 1;
        let end = (fed + size).min(data.len());
        dec.extend(&data[fed..end]);
        fed = end;
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => {
                    assert!(f.len() <= max);
                    let enc = encode_frame(&f, max).expect("a decoded frame re-encodes");
                    assert_eq!(&data[consumed..consumed + enc.len()], &enc[..]);
                    consumed += enc.len();
                    frames.push(f);
                }
                Ok(None) => break,
                Err(FrameError::TooLarge { len, max: m }) => {
                    assert!(len > m as u64);
                    failed = true;
                    break 'feed;
                }
                Err(e) => panic!("unexpected decoder error {e}"),
            }
        }
    }
    if !failed {
        assert_eq!(dec.pending(), data.len() - consumed);
        match dec.finish() {
            Ok(()) => assert_eq!(consumed, data.len()),
            Err(FrameError::Truncated { got, expected }) => {
                assert_eq!(got, data.len() - consumed);
                assert!(got < expected);
            }
            Err(e) => panic!("unexpected finish error {e}"),
        }
    }

    // The decoder reading for itself, with small read limits: the same frames, and never
    // more buffered than what arrived.
    let mut dec = FrameDecoder::new(max);
    let mut r = data;
    let mut i = 0;
    let limit = 1 + usize::from(seed) * 3;
    'read: loop {
        let before = dec.pending();
        match dec.read_from_limit(&mut r, limit) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= limit);
                assert_eq!(dec.pending(), before + n);
            }
            Err(e) => panic!("reading a slice failed: {e}"),
        }
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => {
                    assert_eq!(frames.get(i), Some(&f), "read_from_limit disagrees");
                    i += 1;
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(failed);
                    break 'read;
                }
            }
        }
    }
    assert_eq!(i, frames.len());

    // Blocking decoder over the same bytes: the same frames, then the same outcome.
    let mut r = data;
    let mut i = 0;
    loop {
        match read_frame(&mut r, max) {
            Ok(Some(f)) => {
                assert_eq!(
                    frames.get(i),
                    Some(&f),
                    "read_frame and FrameDecoder disagree"
                );
                i += 1;
            }
            Ok(None) => {
                assert!(!failed);
                assert_eq!(i, frames.len());
                assert_eq!(consumed, data.len());
                break;
            }
            Err(FrameError::TooLarge { .. }) => {
                assert!(failed);
                assert_eq!(i, frames.len());
                break;
            }
            Err(FrameError::Truncated { .. }) => {
                assert!(!failed);
                assert_eq!(i, frames.len());
                assert!(consumed < data.len());
                break;
            }
            Err(e) => panic!("unexpected read_frame error {e}"),
        }
    }
});
