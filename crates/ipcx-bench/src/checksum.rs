//! The checksum that proves the receiver touched every byte.
//!
//! Each message is read as little-endian 64-bit words (the tail zero-padded) and summed twice,
//! Fletcher style: `a` is the sum of the words and `b` the sum of the running `a`, so `b` depends
//! on each word's position. A [`Digest`] folds the per-message sums of a whole stream in order,
//! with the message count and byte count. The receiver computes it over what it received, the
//! sender over what it sent; the parent compares the two ([`Digest::verify`]).
//!
//! The sender does not need to re-read its buffer: every message is the same template with its
//! sequence number in the first word, and [`PayloadGen::sum`] derives a message's sums from the
//! template's in constant time.

use serde::{Deserialize, Serialize};

/// The independent lanes of [`MessageSum::compute`] (64-bit words per 64-byte block).
const LANES: usize = 8;

/// The sums of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSum {
    /// Wrapping sum of the words.
    pub a: u64,
    /// Wrapping sum of the running `a` (position-weighted).
    pub b: u64,
    /// Message length in bytes.
    pub len: u64,
}

impl MessageSum {
    /// Reads every byte of `data`.
    ///
    /// The value is that of the serial definition (`a += w; b += a` per word, in order), but
    /// the words are summed in eight independent lanes over 64-byte blocks so that the
    /// compiler can vectorise the loop and no single dependency chain limits it: lane `k` keeps
    /// `a_k` (its words' sum) and `q_k` (the sum of its running `a_k`, one per block). After `m`
    /// blocks, word `k` of block `j` has been added to the serial `b` `8·(m−j) − k` times, so
    /// `a = Σ a_k` and `b = 8·Σ q_k − Σ k·a_k` (all wrapping). The remaining words and the
    /// zero-padded tail then continue serially.
    pub fn compute(data: &[u8]) -> MessageSum {
        const BLOCK: usize = LANES * 8;
        let mut lane_a = [0u64; LANES];
        let mut lane_q = [0u64; LANES];
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            for (k, w) in block.chunks_exact(8).enumerate() {
                let w = u64::from_le_bytes(w.try_into().expect("8-byte word"));
                lane_a[k] = lane_a[k].wrapping_add(w);
                lane_q[k] = lane_q[k].wrapping_add(lane_a[k]);
            }
        }
        let mut a = 0u64;
        let mut q = 0u64;
        let mut weighted = 0u64;
        for k in 0..LANES {
            a = a.wrapping_add(lane_a[k]);
            q = q.wrapping_add(lane_q[k]);
            weighted = weighted.wrapping_add((k as u64).wrapping_mul(lane_a[k]));
        }
        let b = (LANES as u64).wrapping_mul(q).wrapping_sub(weighted);

        let (a, b) = add_words(a, b, blocks.remainder());
        MessageSum {
            a,
            b,
            len: data.len() as u64,
        }
    }

    /// Number of words the message was read as.
    fn words(&self) -> u64 {
        self.len.div_ceil(8)
    }
}

/// The serial definition over `data`, continuing from `a` and `b`: per 8-byte little-endian
/// word, in order, `a += w; b += a`, the last word zero-padded (all wrapping).
fn add_words(mut a: u64, mut b: u64, data: &[u8]) -> (u64, u64) {
    let mut words = data.chunks_exact(8);
    for c in &mut words {
        let w = u64::from_le_bytes(c.try_into().expect("8-byte word"));
        a = a.wrapping_add(w);
        b = b.wrapping_add(a);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        a = a.wrapping_add(u64::from_le_bytes(tail));
        b = b.wrapping_add(a);
    }
    (a, b)
}

/// The running checksum of a stream of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Digest {
    /// The folded state.
    pub state: u64,
    /// Messages folded in.
    pub messages: u64,
    /// Bytes folded in.
    pub bytes: u64,
}

const P1: u64 = 0x9E37_79B9_7F4A_7C15;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;

impl Digest {
    /// An empty digest.
    pub fn new() -> Digest {
        Digest::default()
    }

    /// Folds in one message's sums.
    pub fn add(&mut self, s: MessageSum) {
        self.state = (self.state.rotate_left(7) ^ s.a).wrapping_mul(P1)
            ^ s.b.wrapping_add(s.len).wrapping_mul(P2);
        self.messages += 1;
        self.bytes += s.len;
    }

    /// Reads `data` and folds it in.
    pub fn add_bytes(&mut self, data: &[u8]) {
        self.add(MessageSum::compute(data));
    }

    /// Compares what the receiver reports with what was sent; the error says what differs.
    pub fn verify(&self, received: &Digest) -> Result<(), ChecksumMismatch> {
        if self == received {
            Ok(())
        } else {
            Err(ChecksumMismatch {
                sent: *self,
                received: *received,
            })
        }
    }
}

/// The receiver's checksum differs from the sender's.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "checksum mismatch: sent {} messages / {} bytes (digest {:016x}), the receiver read {} messages / {} bytes (digest {:016x})",
    sent.messages, sent.bytes, sent.state, received.messages, received.bytes, received.state
)]
pub struct ChecksumMismatch {
    /// What the sender sent.
    pub sent: Digest,
    /// What the receiver reported.
    pub received: Digest,
}

/// The sequence number that ends a phase (never counted, never checksummed).
pub const END_SEQ: u64 = u64::MAX;

/// Reads the sequence number of a message (its first 8 bytes, little-endian).
pub fn seq_of(msg: &[u8]) -> Option<u64> {
    let w: [u8; 8] = msg.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// Builds the messages of one phase: a fixed filler with the sequence number in the first word.
#[derive(Debug, Clone)]
pub struct PayloadGen {
    buf: Vec<u8>,
    base: MessageSum,
}

impl PayloadGen {
    /// Messages of `len` bytes (at least 8).
    pub fn new(len: usize) -> PayloadGen {
        let len = len.max(8);
        let mut buf: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(31).wrapping_add(7) % 251) as u8)
            .collect();
        buf[..8].fill(0);
        let base = MessageSum::compute(&buf);
        PayloadGen { buf, base }
    }

    /// The message length.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Always false: messages carry at least the sequence number.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The message with sequence number `seq`.
    pub fn message(&mut self, seq: u64) -> &[u8] {
        self.buf[..8].copy_from_slice(&seq.to_le_bytes());
        &self.buf
    }

    /// Writes the message with sequence number `seq` into `dst` (which must be
    /// [`PayloadGen::len`] bytes long): the same bytes as [`PayloadGen::message`], written
    /// where the caller wants them (a ring's loan) instead of into this generator's buffer.
    ///
    /// # Panics
    /// When `dst` has another length.
    pub fn write_message(&self, seq: u64, dst: &mut [u8]) {
        assert_eq!(dst.len(), self.buf.len(), "message length");
        dst[..8].copy_from_slice(&seq.to_le_bytes());
        dst[8..].copy_from_slice(&self.buf[8..]);
    }

    /// The sums of message `seq`, without reading it (the template's first word is zero, so
    /// putting `seq` there adds `seq` to `a` and `words * seq` to `b`).
    pub fn sum(&self, seq: u64) -> MessageSum {
        MessageSum {
            a: self.base.a.wrapping_add(seq),
            b: self
                .base
                .b
                .wrapping_add(self.base.words().wrapping_mul(seq)),
            len: self.base.len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, written apart from the code under test: one word at a time, in order,
    /// the tail zero-padded.
    fn serial(data: &[u8]) -> MessageSum {
        let mut padded = data.to_vec();
        padded.resize(data.len().next_multiple_of(8), 0);
        let (a, b) = padded
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8-byte word")))
            .fold((0u64, 0u64), |(a, b), w| {
                let a = a.wrapping_add(w);
                (a, b.wrapping_add(a))
            });
        MessageSum {
            a,
            b,
            len: data.len() as u64,
        }
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn lanes_give_the_serial_value_for_every_length_and_content() {
        let mut lens: Vec<usize> = (0..=300).collect();
        lens.extend([511, 512, 513, 4095, 4096, 4097, 65_536 + 7, 1 << 20]);
        for (i, &len) in lens.iter().enumerate() {
            for seed in [1, 0xdead_beef, i as u64 * 7919 + 3] {
                let data = bytes(seed, len);
                assert_eq!(
                    MessageSum::compute(&data),
                    serial(&data),
                    "len {len} seed {seed}"
                );
            }
            // Sums that wrap: every word all ones.
            let ones = vec![0xffu8; len];
            assert_eq!(MessageSum::compute(&ones), serial(&ones), "len {len} ones");
            // Every slice start, so the blocks are not always aligned.
            if len > 0 && len < 80 {
                let data = bytes(len as u64, len + 16);
                for start in 0..16 {
                    let d = &data[start..start + len];
                    assert_eq!(MessageSum::compute(d), serial(d), "len {len} start {start}");
                }
            }
        }
    }

    /// Not a test of speed (never asserted): prints the checksum's and the serial definition's
    /// GB/s on 1 MiB. `cargo test --release -p ipcx-bench checksum_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn checksum_speed() {
        let data = bytes(42, 1 << 20);
        let gbps = |f: &dyn Fn(&[u8]) -> MessageSum| {
            let mut sink = 0u64;
            let t = std::time::Instant::now();
            let mut n = 0u64;
            while t.elapsed().as_secs_f64() < 0.5 {
                sink ^= std::hint::black_box(f(std::hint::black_box(&data))).b;
                n += 1;
            }
            std::hint::black_box(sink);
            (n * data.len() as u64) as f64 / t.elapsed().as_secs_f64() / 1e9
        };
        println!("serial: {:.1} GB/s", gbps(&serial));
        println!("lanes:  {:.1} GB/s", gbps(&MessageSum::compute));
    }

    #[test]
    fn constant_time_sum_matches_reading_the_bytes() {
        for len in [8, 9, 15, 64, 4096, 4099, 1 << 16] {
            let mut g = PayloadGen::new(len);
            for seq in [0, 1, 2, 1000, u64::MAX - 1, 0x0123_4567_89ab_cdef] {
                let expect = g.sum(seq);
                let mut in_place = vec![0xa5; g.len()];
                g.write_message(seq, &mut in_place);
                assert_eq!(MessageSum::compute(&in_place), expect, "{len} {seq}");
                assert_eq!(MessageSum::compute(g.message(seq)), expect, "{len} {seq}");
            }
        }
    }

    #[test]
    fn a_flipped_bit_a_swap_or_a_missing_message_changes_the_digest() {
        let mut g = PayloadGen::new(64);
        let mut sent = Digest::new();
        let mut msgs = Vec::new();
        for seq in 0..10 {
            sent.add(g.sum(seq));
            msgs.push(g.message(seq).to_vec());
        }
        let fold = |ms: &[Vec<u8>]| {
            let mut d = Digest::new();
            for m in ms {
                d.add_bytes(m);
            }
            d
        };
        assert!(sent.verify(&fold(&msgs)).is_ok());

        let mut flipped = msgs.clone();
        flipped[3][40] ^= 0x10;
        let e = sent.verify(&fold(&flipped)).unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");

        let mut swapped_words = msgs.clone();
        let (x, y) = swapped_words[5].split_at_mut(16);
        x[8..16].swap_with_slice(&mut y[..8]);
        assert!(sent.verify(&fold(&swapped_words)).is_err());

        let mut reordered = msgs.clone();
        reordered.swap(1, 2);
        assert!(sent.verify(&fold(&reordered)).is_err());

        assert!(sent.verify(&fold(&msgs[..9])).is_err());
    }

    #[test]
    fn sequence_numbers() {
        let mut g = PayloadGen::new(16);
        assert_eq!(seq_of(g.message(42)), Some(42));
        assert_eq!(seq_of(&[1, 2, 3]), None);
    }
}
