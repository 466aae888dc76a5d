//! The work queue: N producers, M consumers, each message delivered to exactly one consumer.
//!
//! A pool of `n` fixed-size slots (`n` a power of two) and two bounded Vyukov MPMC queues of
//! slot indices: `free` (initially every slot) and `ready` (published messages). A producer
//! takes a free slot, fills it and pushes `(slot, len)` to `ready`; a consumer pops from
//! `ready`, reads the slot in place and pushes the slot back to `free`. Both queues have `n`
//! cells, so pushing a slot index never finds a queue full.

use crate::shim::{AtomicU64, Ordering};
use crate::{Data, RingError, WaitLine};

/// One cell of a Vyukov queue.
#[repr(C)]
#[derive(Debug)]
pub struct WorkSlot {
    /// Cell sequence number (the turn it is ready for).
    pub seq: AtomicU64,
    /// The value: slot index in the low 32 bits, message length in the high 32.
    pub val: AtomicU64,
}

impl WorkSlot {
    /// A zeroed cell.
    pub fn new() -> WorkSlot {
        WorkSlot {
            seq: AtomicU64::new(0),
            val: AtomicU64::new(0),
        }
    }
}

impl Default for WorkSlot {
    fn default() -> Self {
        WorkSlot::new()
    }
}

/// A queue position on its own 128-byte line.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct PosLine {
    /// The position.
    pub pos: AtomicU64,
}

/// The control block of a [`WorkQueue`].
#[repr(C)]
#[derive(Debug)]
pub struct WorkCtl {
    /// `free` queue: enqueue position.
    pub free_enq: PosLine,
    /// `free` queue: dequeue position.
    pub free_deq: PosLine,
    /// `ready` queue: enqueue position.
    pub ready_enq: PosLine,
    /// `ready` queue: dequeue position.
    pub ready_deq: PosLine,
    /// Consumers waiting for messages.
    pub data_wait: WaitLine,
    /// Producers waiting for a free slot.
    pub space_wait: WaitLine,
}

impl WorkCtl {
    /// A zeroed control block (loom tests).
    pub fn new() -> WorkCtl {
        let p = || PosLine {
            pos: AtomicU64::new(0),
        };
        WorkCtl {
            free_enq: p(),
            free_deq: p(),
            ready_enq: p(),
            ready_deq: p(),
            data_wait: WaitLine::new(),
            space_wait: WaitLine::new(),
        }
    }
}

impl Default for WorkCtl {
    fn default() -> Self {
        WorkCtl::new()
    }
}

/// Bound on retries of a queue operation: a hostile peer cannot make us spin forever.
const MAX_RETRIES: u32 = 1 << 20;

/// A work queue over a control block, two cell arrays and a data area of `n * slot_size` bytes.
#[derive(Debug)]
pub struct WorkQueue<'a> {
    ctl: &'a WorkCtl,
    free: &'a [WorkSlot],
    ready: &'a [WorkSlot],
    data: Data,
    slot_size: usize,
}

impl<'a> WorkQueue<'a> {
    /// Wraps the shared parts; `None` when the sizes disagree (`n` a power of two, both queues
    /// `n` cells, `slot_size` a multiple of 16, data `n * slot_size` bytes).
    pub fn new(
        ctl: &'a WorkCtl,
        free: &'a [WorkSlot],
        ready: &'a [WorkSlot],
        data: Data,
        slot_size: usize,
    ) -> Option<WorkQueue<'a>> {
        let n = free.len();
        let ok = n.is_power_of_two()
            && n <= u32::MAX as usize
            && ready.len() == n
            && slot_size > 0
            && slot_size.is_multiple_of(16)
            && n.checked_mul(slot_size) == Some(data.len());
        ok.then_some(WorkQueue {
            ctl,
            free,
            ready,
            data,
            slot_size,
        })
    }

    /// Initialises a fresh queue (the creator, before anyone else uses it): every slot free.
    pub fn init(&self) {
        let n = self.free.len() as u64;
        for i in 0..n {
            self.ready[i as usize].seq.store(i, Ordering::Relaxed);
            self.free[i as usize].val.store(i, Ordering::Relaxed);
            self.free[i as usize].seq.store(i + 1, Ordering::Relaxed);
        }
        self.ctl.free_deq.pos.store(0, Ordering::Relaxed);
        self.ctl.ready_enq.pos.store(0, Ordering::Relaxed);
        self.ctl.ready_deq.pos.store(0, Ordering::Relaxed);
        self.ctl.free_enq.pos.store(n, Ordering::Release);
    }

    /// The control block.
    pub fn ctl(&self) -> &'a WorkCtl {
        self.ctl
    }

    /// The data area.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Bytes per slot (the largest message).
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Offset of slot `idx` in the data area.
    pub fn slot_offset(&self, idx: u32) -> usize {
        idx as usize * self.slot_size
    }

    fn push(q: &[WorkSlot], enq: &AtomicU64, v: u64) -> Result<(), RingError> {
        let mask = q.len() as u64 - 1;
        let mut pos = enq.load(Ordering::Relaxed);
        for _ in 0..MAX_RETRIES {
            let cell = &q[(pos & mask) as usize];
            let seq = cell.seq.load(Ordering::Acquire);
            let dif = seq.wrapping_sub(pos) as i64;
            if dif == 0 {
                match enq.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => {
                        cell.val.store(v, Ordering::Relaxed);
                        cell.seq.store(pos + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if dif < 0 {
                return Err(RingError::Full);
            } else {
                pos = enq.load(Ordering::Relaxed);
            }
            #[cfg(loom)]
            loom::thread::yield_now();
        }
        Err(RingError::Corrupt("work queue positions"))
    }

    /// Pushes to a queue that has room for every slot: a `Full` there is a pop still under way
    /// on the cell (between its claim and its release), so retry, a bounded number of times
    /// (a popper that died there leaves the cell stuck: `Corrupt`).
    fn push_room(
        q: &[WorkSlot],
        enq: &AtomicU64,
        v: u64,
        what: &'static str,
    ) -> Result<(), RingError> {
        for _ in 0..MAX_RETRIES {
            match Self::push(q, enq, v) {
                Err(RingError::Full) => {
                    #[cfg(loom)]
                    loom::thread::yield_now();
                    #[cfg(not(loom))]
                    core::hint::spin_loop();
                }
                r => return r,
            }
        }
        Err(RingError::Corrupt(what))
    }

    fn pop(q: &[WorkSlot], deq: &AtomicU64) -> Result<Option<u64>, RingError> {
        let mask = q.len() as u64 - 1;
        let mut pos = deq.load(Ordering::Relaxed);
        for _ in 0..MAX_RETRIES {
            let cell = &q[(pos & mask) as usize];
            let seq = cell.seq.load(Ordering::Acquire);
            let dif = seq.wrapping_sub(pos + 1) as i64;
            if dif == 0 {
                match deq.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => {
                        let v = cell.val.load(Ordering::Relaxed);
                        cell.seq.store(pos + mask + 1, Ordering::Release);
                        return Ok(Some(v));
                    }
                    Err(now) => pos = now,
                }
            } else if dif < 0 {
                return Ok(None);
            } else {
                pos = deq.load(Ordering::Relaxed);
            }
            #[cfg(loom)]
            loom::thread::yield_now();
        }
        Err(RingError::Corrupt("work queue positions"))
    }

    fn check_slot(&self, v: u64) -> Result<(u32, usize), RingError> {
        let idx = v as u32;
        let len = (v >> 32) as usize;
        if idx as usize >= self.free.len() || len > self.slot_size {
            return Err(RingError::Corrupt("work queue slot index or length"));
        }
        Ok((idx, len))
    }

    /// Whether the cell at `deq` holds a value (a cheap check for waiting loops).
    fn has_value(q: &[WorkSlot], deq: &AtomicU64) -> bool {
        let mask = q.len() as u64 - 1;
        let pos = deq.load(Ordering::Acquire);
        q[(pos & mask) as usize].seq.load(Ordering::Acquire) == pos.wrapping_add(1)
    }

    /// Whether a published message may be waiting (a cheap check for waiting loops).
    pub fn has_ready(&self) -> bool {
        Self::has_value(self.ready, &self.ctl.ready_deq.pos)
    }

    /// Whether a free slot may be available (a cheap check for waiting loops).
    pub fn has_free(&self) -> bool {
        Self::has_value(self.free, &self.ctl.free_deq.pos)
    }

    /// How many slots there are.
    pub fn slots(&self) -> usize {
        self.free.len()
    }

    /// Takes a free slot: `Ok(None)` when every slot is in use.
    pub fn acquire(&self) -> Result<Option<u32>, RingError> {
        match Self::pop(self.free, &self.ctl.free_deq.pos)? {
            Some(v) => Ok(Some(self.check_slot(v & 0xffff_ffff)?.0)),
            None => Ok(None),
        }
    }

    /// Publishes slot `idx` holding `len` bytes to the consumers.
    pub fn publish(&self, idx: u32, len: usize) -> Result<(), RingError> {
        let v = u64::from(idx) | ((len as u64) << 32);
        self.check_slot(v)?;
        Self::push_room(self.ready, &self.ctl.ready_enq.pos, v, "ready queue full")
    }

    /// Takes the next published message: `(slot, len)`, or `Ok(None)` when none waits.
    pub fn take(&self) -> Result<Option<(u32, usize)>, RingError> {
        match Self::pop(self.ready, &self.ctl.ready_deq.pos)? {
            Some(v) => Ok(Some(self.check_slot(v)?)),
            None => Ok(None),
        }
    }

    /// Returns slot `idx` to the free pool.
    pub fn release(&self, idx: u32) -> Result<(), RingError> {
        self.check_slot(u64::from(idx))?;
        Self::push_room(
            self.free,
            &self.ctl.free_enq.pos,
            u64::from(idx),
            "free queue full",
        )
    }

    /// Copying send: `Err(Full)` when no slot is free.
    pub fn try_send(&self, msg: &[u8]) -> Result<(), RingError> {
        if msg.len() > self.slot_size {
            return Err(RingError::TooLarge {
                len: msg.len(),
                max: self.slot_size,
            });
        }
        let idx = self.acquire()?.ok_or(RingError::Full)?;
        self.data.copy_in(self.slot_offset(idx), msg, false);
        self.publish(idx, msg.len())
    }

    /// Copying receive into `buf`: the message length, or `None`.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<usize>, RingError> {
        let Some((idx, len)) = self.take()? else {
            return Ok(None);
        };
        let n = len.min(buf.len());
        self.data
            .copy_out(self.slot_offset(idx), &mut buf[..n], false);
        self.release(idx)?;
        Ok(Some(len))
    }
}
