//! What the notification rows share: they carry the sequence number, not a payload.
//!
//! A futex word, an eventfd counter, a signal's value or a semaphore-guarded word cannot carry
//! a 4 KiB message. These rows move each message's 8-byte sequence number (the value the
//! mechanism transports, or a word in shared memory that the mechanism guards) and accept
//! payloads of at most one cache line ([`MAX_PAYLOAD`]): the receiving side rebuilds the
//! message from the sequence number and the harness's fixed filler ([`PayloadGen`]). The
//! sending side checks that the message it is given *is* that filler with a sequence number,
//! so nothing the harness sends is silently dropped: the checksums verify every sequence
//! number that went through the mechanism.

use crate::checksum::{END_SEQ, PayloadGen, seq_of};
use crate::mechanism::LinkError;

/// The largest payload a notification row is measured at: one cache line.
pub const MAX_PAYLOAD: usize = 64;

/// `check_payload` of a notification row: sizes above a cache line are skipped with a reason.
pub fn check_payload(row: &str, payload: usize) -> Result<(), String> {
    if payload <= MAX_PAYLOAD {
        Ok(())
    } else if row == crate::report::BASELINE {
        Err(format!(
            "the limit row moves one cache line ({MAX_PAYLOAD} bytes): it is measured at \
             payloads up to {MAX_PAYLOAD} B"
        ))
    } else {
        Err(format!(
            "{row} carries only the 8-byte sequence number (a notification, not a data path): \
             measured at payloads up to {MAX_PAYLOAD} B"
        ))
    }
}

/// Turns harness messages into sequence numbers and back.
#[derive(Debug, Clone)]
pub struct SeqOnly {
    template: PayloadGen,
    filler: Vec<u8>,
}

impl SeqOnly {
    /// For messages of `payload` bytes.
    pub fn new(payload: usize) -> SeqOnly {
        let mut template = PayloadGen::new(payload);
        let filler = template.message(0)[8..].to_vec();
        SeqOnly { template, filler }
    }

    /// The sequence number of `msg`, which must be the harness's filler with a sequence number
    /// in front (anything else cannot be carried by a row that only moves sequence numbers).
    pub fn seq(&self, msg: &[u8]) -> Result<u64, LinkError> {
        match seq_of(msg) {
            Some(seq) if msg.len() == self.template.len() && msg[8..] == self.filler[..] => Ok(seq),
            _ => Err(LinkError::Failed(format!(
                "this row carries only sequence numbers: a {}-byte message that is not the \
                 harness's {}-byte template cannot be sent",
                msg.len(),
                self.template.len()
            ))),
        }
    }

    /// Puts message `seq` into `buf` (replacing its contents).
    pub fn fill(&mut self, buf: &mut Vec<u8>, seq: u64) {
        buf.clear();
        buf.extend_from_slice(self.template.message(seq));
    }
}

/// Packs a sequence number into 32 bits for a shared word or a signal's value: bits 0-1 a tag
/// (who the message is for, so that a one-word mailbox knows whose turn it is), bit 2 the end
/// marker, bits 3-31 the low 29 bits of the sequence number. [`WordCodec::unpack`] restores
/// the full number from the last one it saw (consecutive messages differ by far less than
/// 2^28, and a new phase, after an end marker, starts again from zero).
#[derive(Debug, Clone, Default)]
pub struct WordCodec {
    last: u64,
}

const SEQ_BITS: u32 = 29;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const END_BIT: u32 = 1 << 2;

impl WordCodec {
    /// A codec that has seen nothing yet.
    pub fn new() -> WordCodec {
        WordCodec::default()
    }

    /// The word for `seq` with `tag` (0 to 3).
    pub fn pack(seq: u64, tag: u32) -> u32 {
        let tag = tag & 3;
        if seq == END_SEQ {
            tag | END_BIT
        } else {
            tag | (((seq & SEQ_MASK) as u32) << 3)
        }
    }

    /// The tag of a word.
    pub fn tag(word: u32) -> u32 {
        word & 3
    }

    /// The sequence number in `word`, restored to 64 bits.
    pub fn unpack(&mut self, word: u32) -> u64 {
        if word & END_BIT != 0 {
            // The end of a phase: the next one starts again from zero.
            self.last = 0;
            return END_SEQ;
        }
        let low = u64::from(word >> 3);
        let span = 1u64 << SEQ_BITS;
        let base = (self.last & !SEQ_MASK) | low;
        // The candidate nearest to the last number seen.
        let seq = [base.checked_sub(span), Some(base), base.checked_add(span)]
            .into_iter()
            .flatten()
            .min_by_key(|c| c.abs_diff(self.last))
            .unwrap_or(base);
        self.last = seq;
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_across_the_29_bit_window_and_phase_restarts() {
        let mut c = WordCodec::new();
        let mut seqs: Vec<u64> = (0..10).collect();
        seqs.extend((SEQ_MASK - 3)..(SEQ_MASK + 5));
        // Steps well inside the window, across two more wraps.
        seqs.extend((5..=12).map(|i| i << (SEQ_BITS - 2)));
        seqs.extend(((3 << SEQ_BITS) - 2)..((3 << SEQ_BITS) + 2));
        for s in seqs {
            let w = WordCodec::pack(s, 2);
            assert_eq!(WordCodec::tag(w), 2);
            assert_eq!(c.unpack(w), s, "{s}");
        }
        let end = WordCodec::pack(END_SEQ, 1);
        assert_eq!(WordCodec::tag(end), 1);
        assert_eq!(c.unpack(end), END_SEQ);
        // A new phase.
        for s in 0..3 {
            assert_eq!(c.unpack(WordCodec::pack(s, 1)), s);
        }
        assert_ne!(
            WordCodec::pack(0, 1),
            0,
            "a message is never the empty word"
        );
    }

    #[test]
    fn only_template_messages_are_carried() {
        let mut s = SeqOnly::new(64);
        let mut buf = Vec::new();
        s.fill(&mut buf, 42);
        assert_eq!(buf.len(), 64);
        assert_eq!(s.seq(&buf).unwrap(), 42);
        let mut g = PayloadGen::new(64);
        assert_eq!(&buf[..], g.message(42));
        buf[40] ^= 1;
        assert!(matches!(s.seq(&buf), Err(LinkError::Failed(_))));
        assert!(s.seq(&buf[..32]).is_err());
        assert!(check_payload("futex", 64).is_ok());
        assert!(
            check_payload("futex", 4096)
                .unwrap_err()
                .contains("sequence number")
        );
        assert!(
            check_payload("limit", 4096)
                .unwrap_err()
                .contains("cache line")
        );
    }
}
