//! A ring handle and the one sample (or loan) that borrows it, kept together across Python
//! calls.
//!
//! In Rust a [`Sample`](ipcx::ring::Sample) borrows its subscriber mutably, so the compiler
//! proves that the subscriber neither receives again nor goes away while the sample is read in
//! place. A Python object cannot hold a borrow: [`Lent`] keeps the handle on the heap and the
//! sample next to it, and upholds the same rules at run time: the handle is reachable only
//! when no sample is out ([`Lent::handle`]), a new sample replaces (drops) the previous one
//! first ([`Lent::lend`]), and the sample is dropped before the handle ([`Drop`]).

use std::ptr::NonNull;

/// A handle `H` on the heap, and `S`, something borrowing it mutably, while one is out.
pub(crate) struct Lent<H, S> {
    /// Declared first, so also dropped first; and dropped explicitly before `handle` anyway.
    out: Option<S>,
    /// Owned (from `Box::into_raw`); only `out` refers to it while `out` is `Some`.
    handle: NonNull<H>,
}

// SAFETY: `Lent` owns the `H` behind `handle` (like a `Box<H>`) and the `S` borrowing it; moving
// both to another thread together is sound when each may move alone.
unsafe impl<H: Send, S: Send> Send for Lent<H, S> {}

impl<H: 'static, S> Lent<H, S> {
    /// Takes ownership of `handle`.
    pub(crate) fn new(handle: H) -> Lent<H, S> {
        Lent {
            out: None,
            handle: NonNull::from(Box::leak(Box::new(handle))),
        }
    }

    /// The handle, when nothing borrows it (`None` while a sample is out).
    pub(crate) fn handle(&mut self) -> Option<&mut H> {
        if self.out.is_some() {
            return None;
        }
        // SAFETY: `handle` is owned by `self` and valid until `self` drops it; no sample
        // borrows it (`out` is `None`), and `&mut self` makes this the only reference.
        Some(unsafe { self.handle.as_mut() })
    }

    /// The sample that is out.
    pub(crate) fn out(&self) -> Option<&S> {
        self.out.as_ref()
    }

    /// The sample that is out, to write into (a loan).
    pub(crate) fn out_mut(&mut self) -> Option<&mut S> {
        self.out.as_mut()
    }

    /// Takes the sample that is out, if any (dropping it gives it back to the handle).
    pub(crate) fn give_back(&mut self) -> Option<S> {
        self.out.take()
    }

    /// Drops the sample that is out, then lends the handle to `f`, keeping what it returns.
    ///
    /// # Safety
    /// `f` must not keep the reference it gets anywhere but in the `S` it returns: `'static`
    /// stands for "until this `Lent` drops the sample", which the type system cannot name.
    pub(crate) unsafe fn lend<E>(
        &mut self,
        f: impl FnOnce(&'static mut H) -> Result<S, E>,
    ) -> Result<(), E> {
        self.out = None;
        // SAFETY: no sample is out any more, so this is the only reference to the handle; it
        // lives until `self` is dropped, which drops the `S` holding the reference first. The
        // caller promises that the reference ends up nowhere else.
        let h: &'static mut H = unsafe { &mut *self.handle.as_ptr() };
        self.out = Some(f(h)?);
        Ok(())
    }
}

impl<H, S> Drop for Lent<H, S> {
    fn drop(&mut self) {
        self.out = None;
        // SAFETY: `handle` came from `Box::leak` in `new` and is freed only here; the sample
        // borrowing it was dropped on the line above.
        drop(unsafe { Box::from_raw(self.handle.as_ptr()) });
    }
}
