//! Fuzzing hooks: segment images checked like a named ring, and a live segment that threads
//! publish on, read and scribble on at once. Hidden from the docs.

use std::sync::atomic::Ordering;

use ipcx_ring::{Reader, RingError as CoreError, Writer};

use super::segment::Segment;
use super::table::{ROLE_SUBSCRIBER, claim_free};
use super::{Options, RingError};

/// Fuzzing hook: a freshly initialised segment image (a publish/subscribe ring, or a work
/// queue when `work`) with the parameters of `opts`.
#[doc(hidden)]
pub fn fresh_segment_image(work: bool, opts: &Options) -> Result<Vec<u8>, RingError> {
    let c = if work {
        opts.create_work()?
    } else {
        opts.create()?
    };
    Segment::fresh_image(&c)
}

/// Fuzzing hook: validates `bytes` as a segment image (a private copy), like opening a named
/// ring does, then walks it as a participant would: every active subscriber cursor reads all
/// its records, a publisher appends a few, or on a work queue the held slots are given back,
/// every queued message is taken and released and a few are sent. Returns how many records
/// it read. Any inconsistency must be an error, never a panic or an access outside the image.
#[doc(hidden)]
pub fn check_segment_image(bytes: &[u8]) -> Result<usize, RingError> {
    let seg = Segment::from_image(bytes)?;
    let err = |e| RingError::from_ring(&seg.name, e);
    let mut n = 0;
    if let Some(q) = seg.work() {
        for c in seg.table() {
            let held = c.holding.swap(0, Ordering::AcqRel);
            seg.give_back(held, c.tail.load(Ordering::Acquire));
        }
        for _ in 0..2 * q.slots() + 2 {
            let Some((idx, len)) = q.take().map_err(err)? else {
                break;
            };
            let _ = q.data().ptr(q.slot_offset(idx), len);
            q.release(idx).map_err(err)?;
            n += 1;
        }
        for _ in 0..q.slots() + 1 {
            let Some(idx) = q.acquire().map_err(err)? else {
                break;
            };
            q.data().copy_in(q.slot_offset(idx), b"fuzz", false);
            q.publish(idx, 4).map_err(err)?;
        }
        return Ok(n);
    }
    let p = seg.params;
    let mut buf = vec![0u8; p.max_msg as usize];
    for c in seg.table() {
        if c.state.load(Ordering::Acquire) != ipcx_ring::ACTIVE {
            continue;
        }
        let mut r = Reader::resume(seg.ctl(), c, seg.data(), p).map_err(err)?;
        for _ in 0..p.capacity / 16 + 2 {
            if p.overwrite {
                if r.try_recv(&mut buf).map_err(err)?.is_none() {
                    break;
                }
            } else {
                let Some(rec) = r.peek().map_err(err)? else {
                    r.check().map_err(err)?;
                    break;
                };
                let _ = r.data().ptr(rec.offset, rec.len);
                r.release(rec);
            }
            n += 1;
        }
    }
    let mut w = Writer::attach(seg.ctl(), seg.table(), seg.data(), p).map_err(err)?;
    for i in 0..4u8 {
        let len = (usize::from(i) * 7).min(p.max_msg as usize);
        match w.try_send(&buf[..len]) {
            Ok(()) => {}
            Err(CoreError::Full) => break,
            Err(e) => return Err(err(e)),
        }
    }
    Ok(n)
}

/// Fuzzing hook: a freshly initialised publish/subscribe segment in private memory that
/// threads share live: one reads ([`LiveSegment::reader`]), one publishes
/// ([`LiveSegment::writer`]) and one scribbles on it ([`LiveSegment::poke`]) at the same time.
#[doc(hidden)]
#[derive(Debug)]
pub struct LiveSegment {
    seg: Segment,
}

impl LiveSegment {
    /// A fresh segment with the parameters of `opts`.
    pub fn new(opts: &Options) -> Result<LiveSegment, RingError> {
        Ok(LiveSegment {
            seg: Segment::fresh(&opts.create()?)?,
        })
    }

    /// The segment's length in bytes.
    pub fn len(&self) -> usize {
        self.seg.len()
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.seg.len() == 0
    }

    /// Writes `byte` at `offset` (ignored past the end), as a hostile peer would.
    pub fn poke(&self, offset: usize, byte: u8) {
        self.seg.poke(offset, byte);
    }

    /// The publisher's side.
    pub fn writer(&self) -> Result<LiveWriter<'_>, RingError> {
        let s = &self.seg;
        let w = Writer::attach(s.ctl(), s.table(), s.data(), s.params)
            .map_err(|e| RingError::from_ring(&s.name, e))?;
        Ok(LiveWriter { w, seg: s })
    }

    /// A subscriber's side, on the first free participant place.
    pub fn reader(&self) -> Result<LiveReader<'_>, RingError> {
        let s = &self.seg;
        let cursor = s
            .table()
            .iter()
            .find(|c| claim_free(c, ROLE_SUBSCRIBER))
            .ok_or(RingError::TooManySubscribers {
                name: s.name.to_string(),
                max: s.participants,
            })?;
        let r = Reader::join(s.ctl(), cursor, s.data(), s.params)
            .map_err(|e| RingError::from_ring(&s.name, e))?;
        Ok(LiveReader {
            r,
            buf: vec![0; s.params.max_msg as usize],
            seg: s,
        })
    }
}

/// Fuzzing hook: the publisher of a [`LiveSegment`].
#[doc(hidden)]
#[derive(Debug)]
pub struct LiveWriter<'a> {
    w: Writer<'a>,
    seg: &'a Segment,
}

impl LiveWriter<'_> {
    /// Sends `msg` if there is room ([`RingError::Full`] otherwise).
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), RingError> {
        let name = &self.seg.name;
        self.w
            .try_send(msg)
            .map_err(|e| RingError::from_ring(name, e))
    }
}

/// Fuzzing hook: a subscriber of a [`LiveSegment`].
#[doc(hidden)]
#[derive(Debug)]
pub struct LiveReader<'a> {
    r: Reader<'a>,
    buf: Vec<u8>,
    seg: &'a Segment,
}

impl LiveReader<'_> {
    /// Receives the next message if one is there, without waiting, and copies it into `out`
    /// (cut to its length); returns its length, `None` when the ring looks empty.
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<Option<usize>, RingError> {
        let err = |e| RingError::from_ring(&self.seg.name, e);
        if self.seg.params.overwrite {
            let Some((len, _missed)) = self.r.try_recv(&mut self.buf).map_err(err)? else {
                return Ok(None);
            };
            out.clear();
            out.extend_from_slice(&self.buf[..len.min(self.buf.len())]);
            return Ok(Some(len));
        }
        let Some(p) = self.r.peek().map_err(err)? else {
            self.r.check().map_err(err)?;
            return Ok(None);
        };
        out.resize(p.len, 0);
        self.r.data().copy_out(p.offset, out, true);
        self.r.release(p);
        Ok(Some(p.len))
    }
}
