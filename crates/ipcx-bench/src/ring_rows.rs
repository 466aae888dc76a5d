//! The rows over the zero-copy shared-memory ring ([`ipcx::ring`]): `ring-spin`, `ring` and
//! `ring-loan` (`ring-1cpu` is in [`crate::one_cpu`]).
//!
//! A ring row uses two rings, one per direction (`a2b`: parent to peer, `b2a`: peer to parent).
//! The parent creates both in [`Mechanism::prepare`] and removes them when the row ends (its
//! guard), whatever happened to the peer; each side then opens the ring it reads as a
//! [`Subscriber`] (its receiving half) and the other one as the [`Publisher`] (its sending half).
//!
//! The sender writes each message straight into the ring: it loans `len` bytes in place
//! ([`Publisher::loan_wait`]), fills them and publishes them. The receiver reads the message
//! where it lies ([`Subscriber::recv_wait`] gives a [`ipcx::ring::Sample`] borrowing the
//! ring's bytes) and hands it to the harness in place ([`Link::recv_with`]): the peer's
//! checksum reads every byte in shared memory, with no copy. (A plain [`Link::recv`], used
//! where the harness needs the message afterwards, as the ping-pong's echo, copies it out.)
//!
//! On the sending side, `ring-spin` and `ring` are handed the message in the harness's buffer
//! ([`Link::send`]) and copy it into the loan: one copy per message. `ring-loan` writes each
//! message into the loan itself ([`Link::send_generated`]): the sequence number word and the
//! rest of the message template, the same bytes as every other row, with no message buffer
//! of its own in between. Both write every byte of every message into the ring; `ring-loan`
//! is what a producer that builds its data in the ring's memory does.

use ipcx::ring::{self, Options, Publisher, Subscriber, WaitStrategy};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::checksum::{END_SEQ, PayloadGen, seq_of};
use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

/// The largest message of the rings below this payload size (the library's default).
const MIN_MAX_MESSAGE: usize = 64 << 10;
/// The smallest ring (the library's default capacity).
const MIN_CAPACITY: usize = ring::DEFAULT_CAPACITY;
/// A ring holds this many messages of the payload size (at least), so that streaming overlaps
/// writing and reading.
const MESSAGES_IN_RING: usize = 4;
/// The largest payload the ring rows are measured at (the ring is four times as large).
const MAX_PAYLOAD: usize = 256 << 20;

/// The ring options of a row for `payload`-byte messages: the library's defaults (4 MiB ring,
/// 64 KiB messages) for small payloads; room for four messages for large ones (a 16 MiB ring
/// for 4 MiB messages).
pub fn ring_options(payload: usize, strategy: WaitStrategy) -> Options {
    Options::new()
        .max_message(payload.max(MIN_MAX_MESSAGE))
        .capacity((payload * MESSAGES_IN_RING).max(MIN_CAPACITY))
        .max_subscribers(1)
        .strategy(strategy)
}

/// A fresh ring name for direction `dir` of this row.
fn ring_name(ctx: &RowContext, dir: &str) -> String {
    format!("/{}-{dir}", ctx.tag)
}

fn ring_err(what: &str, e: ring::RingError) -> LinkError {
    match e {
        ring::RingError::Timeout | ring::RingError::Empty | ring::RingError::Full => {
            LinkError::Timeout
        }
        ring::RingError::PeerGone { what: w } => LinkError::PeerGone(format!("{what}: {w}")),
        e @ ring::RingError::TooLarge { .. } => LinkError::TooLarge(e.to_string()),
        e => LinkError::Failed(format!("{what}: {e}")),
    }
}

fn check_payload(payload: usize) -> Result<(), String> {
    if payload > MAX_PAYLOAD {
        Err(format!(
            "the ring rows are measured at payloads up to {} MiB (the ring holds four messages)",
            MAX_PAYLOAD >> 20
        ))
    } else {
        Ok(())
    }
}

/// Creates the rings `names` with `opts` and leaves them in place, with no participant: the
/// subscribers and the publisher of the row open them. Dropping the returned guard removes
/// them.
pub fn create_rings(names: &[String], opts: &Options) -> Result<RingGuard, LinkError> {
    let mut guard = RingGuard(Vec::new());
    for name in names {
        // A subscriber creates the ring (a publisher would count as one that came and left);
        // `persist` keeps the name when it leaves at once.
        let sub = Subscriber::create_new(name, opts)
            .map_err(|e| ring_err(&format!("creating ring shm:{name}"), e))?;
        guard.0.push(name.clone());
        drop(sub.persist());
    }
    Ok(guard)
}

/// Removes the rings it names when dropped (those the row's participants already removed are
/// skipped).
#[derive(Debug)]
pub struct RingGuard(Vec<String>);

impl Drop for RingGuard {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = ring::remove(name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ring-spin and ring

/// `ring-spin` ([`WaitStrategy::Spin`]), `ring` (the default,
/// [`WaitStrategy::SpinThenSleep`]) or `ring-loan` (the default strategy, messages written in
/// the loan by the sender): two rings, loans filled in place, samples read in place.
#[derive(Debug, Clone, Copy)]
pub struct RingRow {
    strategy: WaitStrategy,
    loans: bool,
}

impl RingRow {
    /// `ring-spin`: both sides busy-poll.
    pub fn spin() -> RingRow {
        RingRow {
            strategy: WaitStrategy::Spin,
            loans: false,
        }
    }

    /// `ring`: the default strategy (spin briefly, yield, then sleep on a futex).
    pub fn default_strategy() -> RingRow {
        RingRow {
            strategy: WaitStrategy::SpinThenSleep,
            loans: false,
        }
    }

    /// `ring-loan`: the default strategy, and the sender writes each message in the ring's
    /// loan itself instead of copying it from the harness's buffer.
    pub fn loan() -> RingRow {
        RingRow {
            strategy: WaitStrategy::SpinThenSleep,
            loans: true,
        }
    }

    /// Whether the sender writes its messages in the loan itself.
    pub fn loans(&self) -> bool {
        self.loans
    }

    /// The wait strategy of both sides.
    pub fn strategy(&self) -> WaitStrategy {
        self.strategy
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RingSpec {
    a2b: String,
    b2a: String,
    payload: usize,
}

impl Mechanism for RingRow {
    fn name(&self) -> &str {
        if self.loans {
            return "ring-loan";
        }
        match self.strategy {
            WaitStrategy::Spin => "ring-spin",
            WaitStrategy::Block => "ring-block",
            _ => "ring",
        }
    }

    fn description(&self) -> &str {
        if self.loans {
            return "zero-copy shared-memory ring (ipcx::ring), default wait strategy, the \
                    sender writing each message in its loan (no message buffer of its own), \
                    samples read in place";
        }
        match self.strategy {
            WaitStrategy::Spin => {
                "zero-copy shared-memory ring (ipcx::ring), one per direction, both sides \
                 busy-polling: loans written in place, samples read in place"
            }
            WaitStrategy::Block => {
                "zero-copy shared-memory ring (ipcx::ring), one per direction, both sides \
                 sleeping on a futex at once"
            }
            _ => {
                "zero-copy shared-memory ring (ipcx::ring), one per direction, default wait \
                 strategy (spin, yield, then sleep on a futex)"
            }
        }
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        check_payload(payload)
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let spec = RingSpec {
            a2b: ring_name(ctx, "a2b"),
            b2a: ring_name(ctx, "b2a"),
            payload: ctx.payload,
        };
        let guard = create_rings(
            &[spec.a2b.clone(), spec.b2a.clone()],
            &ring_options(ctx.payload, self.strategy),
        )?;
        let text = serde_json::to_string(&spec).expect("spec serialises");
        Ok(Prepared::with_guard(text, guard))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec: RingSpec = serde_json::from_str(spec)
            .map_err(|e| LinkError::Failed(format!("bad ring spec: {e}")))?;
        let (rx, tx) = match side {
            Side::Parent => (spec.b2a, spec.a2b),
            Side::Peer => (spec.a2b, spec.b2a),
        };
        let opts = ring_options(spec.payload.max(payload), self.strategy);
        let sub =
            Subscriber::open(&rx, &opts).map_err(|e| ring_err(&format!("opening shm:{rx}"), e))?;
        Ok(Box::new(RingHalf {
            sub,
            tx,
            opts,
            loans: self.loans,
        }))
    }
}

struct RingHalf {
    sub: Subscriber,
    tx: String,
    opts: Options,
    loans: bool,
}

impl HalfOpen for RingHalf {
    fn connect(self: Box<Self>, _wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        // The ring exists since `prepare`, and its subscriber since the other side's `open`.
        let publ = Publisher::open(&self.tx, &self.opts)
            .map_err(|e| ring_err(&format!("publishing on shm:{}", self.tx), e))?;
        Ok(Box::new(RingLink {
            publ,
            sub: self.sub,
            loans: self.loans,
        }))
    }
}

struct RingLink {
    publ: Publisher,
    sub: Subscriber,
    /// Whether [`Link::send_generated`] writes the message in the loan itself.
    loans: bool,
}

impl Link for RingLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let mut loan = self
            .publ
            .loan_wait(msg.len(), wait)
            .map_err(|e| ring_err("loaning", e))?;
        loan.copy_from_slice(msg);
        loan.send().map_err(|e| ring_err("publishing", e))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        crate::mechanism::recv_copied(self, buf, wait)
    }

    fn recv_with(
        &mut self,
        _scratch: &mut Vec<u8>,
        wait: Wait,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), LinkError> {
        let sample = self
            .sub
            .recv_wait(wait)
            .map_err(|e| ring_err("receiving", e))?;
        // In place: `read` sees the ring's bytes, released when the sample drops.
        read(&sample);
        Ok(())
    }

    fn forward(
        &mut self,
        wait: Wait,
        read: &mut dyn FnMut(&[u8]),
    ) -> Option<Result<bool, LinkError>> {
        let sample = match self.sub.recv_wait(wait) {
            Ok(s) => s,
            Err(e) => return Some(Err(ring_err("receiving", e))),
        };
        if seq_of(&sample) == Some(END_SEQ) {
            return Some(Ok(false));
        }
        // Ping-pong keeps one message in flight, so the reply ring has room; should the
        // parent die, the ring reclaims its place and the loan goes through.
        let mut loan = match self.publ.loan_wait(sample.len(), Wait::Forever) {
            Ok(l) => l,
            Err(e) => return Some(Err(ring_err("loaning", e))),
        };
        loan.copy_from_slice(&sample);
        if let Err(e) = loan.send() {
            return Some(Err(ring_err("publishing", e)));
        }
        read(&sample);
        Some(Ok(true))
    }

    fn send_generated(
        &mut self,
        template: &mut PayloadGen,
        seq: u64,
        wait: Wait,
    ) -> Result<(), LinkError> {
        if !self.loans {
            return self.send(template.message(seq), wait);
        }
        let mut loan = self
            .publ
            .loan_wait(template.len(), wait)
            .map_err(|e| ring_err("loaning", e))?;
        template.write_message(seq, &mut loan);
        loan.send().map_err(|e| ring_err("publishing", e))
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.publ.max_message_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1_mib_message_fits_with_room_for_more() {
        let o = ring_options(1 << 20, WaitStrategy::Spin);
        assert_eq!(o.max_message, 1 << 20);
        assert_eq!(o.capacity, 4 << 20);
        let o = ring_options(4 << 20, WaitStrategy::Spin);
        assert_eq!(o.capacity, 16 << 20);
        let o = ring_options(64, WaitStrategy::SpinThenSleep);
        assert_eq!(o.max_message, 64 << 10);
        assert_eq!(o.capacity, ring::DEFAULT_CAPACITY);
        assert!(check_payload(1 << 20).is_ok());
        assert!(check_payload(1 << 30).is_err());
    }
}
