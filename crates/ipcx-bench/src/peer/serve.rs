//! The peer's side of the two measurements: it echoes (ping-pong) and sinks (stream),
//! checksumming every byte it reads.

use ipcx::wait::Wait;

use super::retry::{Flags, Retry, failed};
use crate::checksum::{Digest, END_SEQ, seq_of};
use crate::mechanism::{Link, LinkError};
use crate::protocol::Reply;

/// Echoes every message back until the end marker; checksums what it read (after echoing, so
/// the checksum overlaps the parent's next send rather than adding to the round trip).
pub(super) fn echo(link: &mut dyn Link, flags: &Flags) -> Reply {
    let mut buf = Vec::new();
    let mut digest = Digest::new();
    let mut io = Retry::new(flags);
    // Forwarding in place where the link can (the checksum then reads the received message
    // after the echo is on its way, before it is released).
    loop {
        let add = &mut |m: &[u8]| digest.add_bytes(m);
        match link.forward(Wait::Until(io.deadline), add) {
            None => break,
            Some(Ok(true)) => io.count += 1,
            Some(Ok(false)) => return Reply::Done { digest },
            Some(Err(LinkError::Timeout)) => {
                if let Err(r) = io.on_timeout("receive") {
                    return r;
                }
            }
            Some(Err(e)) => return failed(&e),
        }
    }
    loop {
        if let Err(r) = io.recv(link, &mut buf) {
            return r;
        }
        if seq_of(&buf) == Some(END_SEQ) {
            return Reply::Done { digest };
        }
        if let Err(r) = io.send(link, &buf) {
            return r;
        }
        digest.add_bytes(&buf);
    }
}

/// Reads and checksums every message until the end marker, checking that none is missing,
/// returning a credit every `credit_every` messages when asked to. The checksum reads each
/// message where the link hands it over ([`Link::recv_with`]): in place for a ring.
pub(super) fn sink(link: &mut dyn Link, credit_every: u64, flags: &Flags) -> Reply {
    let mut scratch = Vec::new();
    let mut digest = Digest::new();
    let mut io = Retry::new(flags);
    let mut expected: u64 = 0;
    loop {
        // What the message was: its sequence number and length (checksummed when in order).
        let mut got: (Option<u64>, usize) = (None, 0);
        let mut read = |msg: &[u8]| {
            let seq = seq_of(msg);
            got = (seq, msg.len());
            if seq == Some(expected) {
                digest.add_bytes(msg);
            }
        };
        if let Err(r) = io.recv_with(link, &mut scratch, &mut read) {
            return r;
        }
        match got.0 {
            Some(END_SEQ) => return Reply::Done { digest },
            Some(s) if s == expected => {}
            seq => {
                return Reply::Failed {
                    reason: format!(
                        "message {expected} never arrived (got {}): the mechanism lost or \
                         reordered messages",
                        seq.map_or_else(|| format!("{} bytes", got.1), |s| format!("#{s}"))
                    ),
                    skip: false,
                };
            }
        }
        expected += 1;
        if credit_every > 0 && expected.is_multiple_of(credit_every) {
            let credit = expected.to_le_bytes();
            if let Err(r) = io.send(link, &credit) {
                return r;
            }
        }
    }
}
