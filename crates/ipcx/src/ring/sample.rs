//! Messages lent in place: a [`Sample`] is a received message, a [`SampleMut`] one being
//! written. One pair serves the ring ([`Subscriber`], [`Publisher`]) and the work queue
//! ([`Consumer`](super::Consumer), [`Producer`](super::Producer)); the handle it borrows says
//! where the bytes are and what happens when the sample is sent or dropped.
#![allow(unsafe_code)] // the shared-memory exception: in-place views of ring records and slots

use std::ops::{Deref, DerefMut};

use super::{Publisher, RingError, Subscriber};
use lend::{Holder, Lender, Loaned};

/// What a sample borrows (sealed: only the ring's own handles implement it).
pub(super) mod lend {
    use super::RingError;

    /// A receiving handle: where a message it received lies, and how it gives it back.
    ///
    /// # Safety
    /// `bytes(held)` is a range of that many readable bytes, inside a mapping that stays while
    /// `self` lives, that no one writes (by the protocol) until `release(held)`.
    pub unsafe trait Holder {
        /// What names a received message.
        type Held: Copy + std::fmt::Debug;
        /// The message's bytes: where they start, and how many.
        fn bytes(&self, held: &Self::Held) -> (*const u8, usize);
        /// Gives the message back (the sample is dropped).
        fn release(&mut self, held: Self::Held);
    }

    /// A sending handle: what a loan of its room is.
    pub trait Lender {
        /// A loan in progress: the handle borrowed and the room it lent. Dropping it unsent
        /// gives the room back (its own `Drop`, where there is anything to give back).
        type Loaned<'a>: Loaned
        where
            Self: 'a;
    }

    /// A loan in progress.
    ///
    /// # Safety
    /// `bytes()` is a range of that many writable bytes, inside a mapping that stays while the
    /// loan lives, that nothing else reads or writes until the loan is sent or dropped.
    pub unsafe trait Loaned: std::fmt::Debug {
        /// The bytes loaned.
        fn len(&self) -> usize;
        /// The loaned bytes: where they start, and how many.
        fn bytes(&self) -> (*mut u8, usize);
        /// Sends the first `len` bytes of the loan (at most all of them).
        fn send(self, len: usize) -> Result<(), RingError>;
    }
}

/// A received message: `Deref<Target = [u8]>`, in place in the ring or in a work-queue slot
/// (or, on an overwrite ring, a copy). The message is given back when the sample is dropped:
/// a subscriber's tail moves past it, a consumer's slot returns to the pool.
///
/// Borrowing the shared bytes is sound: the record or slot lies inside the data area (its
/// header, or its index and length, were checked), no publisher or producer reuses it until
/// the sample gives it back, and the borrow of the receiving handle keeps the mapping alive.
/// (A peer that ignores the protocol and writes into the segment anyway can change the bytes
/// under you, never make ipcx access memory outside the segment.)
#[derive(Debug)]
pub struct Sample<'a, H: Holder = Subscriber> {
    pub(super) owner: &'a mut H,
    pub(super) held: H::Held,
}

impl<'a, H: Holder> Sample<'a, H> {
    #[inline]
    pub(super) fn new(owner: &'a mut H, held: H::Held) -> Sample<'a, H> {
        Sample { owner, held }
    }

    /// The message as a plain-data value, in place, when the length and alignment fit.
    pub fn as_value<T>(&self) -> Option<&T>
    where
        T: zerocopy::FromBytes + zerocopy::KnownLayout + zerocopy::Immutable,
    {
        T::ref_from_bytes(&self[..]).ok()
    }
}

impl<H: Holder> Deref for Sample<'_, H> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let (p, len) = self.owner.bytes(&self.held);
        // SAFETY: the `Holder` contract: `len` readable bytes that stay mapped and unchanged
        // until the message is released, which only dropping this sample does; `&self`
        // borrows `owner`, so the slice cannot outlive it.
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}

impl<H: Holder> Drop for Sample<'_, H> {
    #[inline]
    fn drop(&mut self) {
        self.owner.release(self.held);
    }
}

/// A message being written in place, in the ring or in a work-queue slot:
/// `DerefMut<Target = [u8]>`. [`SampleMut::send`] publishes it; dropping it unsent publishes
/// nothing (a work-queue slot returns to the pool).
///
/// Handing out `&mut [u8]` is sound: the bytes are reserved for this sender alone (no
/// subscriber reads past the published head, the publisher is the ring's only writer, a
/// work-queue slot taken from the free pool is this producer's), they stay mapped as long as
/// the sending handle (which this borrows) lives, and nothing else touches them until they
/// are sent.
#[derive(Debug)]
pub struct SampleMut<'a, L: Lender + 'a = Publisher> {
    loan: L::Loaned<'a>,
}

impl<'a, L: Lender + 'a> SampleMut<'a, L> {
    #[inline]
    pub(super) fn new(loan: L::Loaned<'a>) -> SampleMut<'a, L> {
        SampleMut { loan }
    }

    /// Publishes the message.
    // Always inlined, as the publisher's commit is: the send of a loan is the ring's hot path.
    #[inline(always)]
    pub fn send(self) -> Result<(), RingError> {
        let len = self.loan.len();
        self.loan.send(len)
    }

    /// Publishes only the first `len` bytes.
    #[inline(always)]
    pub fn send_len(self, len: usize) -> Result<(), RingError> {
        self.loan.send(len)
    }

    /// The loan as a plain-data value, when the length and alignment fit.
    pub fn as_value_mut<T>(&mut self) -> Option<&mut T>
    where
        T: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::KnownLayout,
    {
        T::mut_from_bytes(&mut self[..]).ok()
    }
}

impl<'a, L: Lender + 'a> Deref for SampleMut<'a, L> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let (p, len) = self.loan.bytes();
        // SAFETY: the `Loaned` contract: `len` bytes reserved for this loan alone until it is
        // sent or dropped (which consumes or drops this sample), mapped while it lives.
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}

impl<'a, L: Lender + 'a> DerefMut for SampleMut<'a, L> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let (p, len) = self.loan.bytes();
        // SAFETY: as for `deref`; `&mut self` makes this the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(p, len) }
    }
}
