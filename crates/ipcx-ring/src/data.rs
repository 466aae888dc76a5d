//! The data area of a ring or work queue: bytes in shared memory, or under loom a slice of
//! atomic words.
#![allow(unsafe_code)] // the shared-memory exception: raw access to the mapped data area

#[cfg(loom)]
use crate::shim::AtomicU64;
use crate::shim::Ordering;

/// The data area of a ring: `len` bytes at a base address (shared memory), or under loom a
/// slice of atomic words.
///
/// Two kinds of access:
/// * by byte offset ([`Data::copy_in`], [`Data::copy_out`], [`Data::ptr`]), bounds-checked
///   against `len`;
/// * by ring position (a byte counter), for the algorithms' record headers: a ring's data area
///   is a power of two of 16-byte *cells*, records start on cell boundaries, and the two 64-bit
///   words of a record header fill the cell it starts in. A position is mapped to its cell by
///   masking, so every such access lands inside the area and 8-aligned whatever the position:
///   the fast paths reach header words without a bounds check.
#[derive(Debug, Clone, Copy)]
pub struct Data {
    #[cfg(not(loom))]
    base: *mut u8,
    #[cfg(loom)]
    words: &'static [AtomicU64],
    len: usize,
    /// Maps a position to the offset of its cell: the largest power of two of bytes that fits
    /// in the area, less one, with the low four bits cleared (0 for an area under 16 bytes,
    /// which holds no cell: see [`Data::at`]).
    mask: usize,
}

// SAFETY: Data is an address range in shared memory; every access through it is either atomic,
// volatile, or to bytes the ring protocol gives one party exclusively.
unsafe impl Send for Data {}
// SAFETY: as above.
unsafe impl Sync for Data {}

/// The cell mask of an area of `len` bytes (see [`Data::mask`](Data#structfield.mask)).
const fn cell_mask(len: usize) -> usize {
    if len < 16 {
        return 0;
    }
    ((1 << len.ilog2()) - 1) & !15
}

impl Data {
    /// The data area at `base`, `len` bytes.
    ///
    /// # Safety
    /// `[base, base+len)` must be readable and writable, 16-byte aligned, and stay mapped as
    /// long as this `Data` (and any copy) is used; no Rust reference may cover those bytes
    /// except the ones the ring algorithms hand out.
    #[cfg(not(loom))]
    pub unsafe fn new(base: *mut u8, len: usize) -> Data {
        Data {
            base,
            len,
            mask: cell_mask(len),
        }
    }

    /// Loom: a data area made of atomic words (`8 * words.len()` bytes).
    #[cfg(loom)]
    pub fn from_words(words: &'static [AtomicU64]) -> Data {
        let len = words.len() * 8;
        Data {
            words,
            len,
            mask: cell_mask(len),
        }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the area is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the area can hold a ring's cells: a power of two of at least 16 bytes.
    pub(crate) fn is_ring(&self) -> bool {
        self.len.is_power_of_two() && self.len >= 16
    }

    #[inline]
    fn check(&self, off: usize, n: usize) {
        assert!(
            off.checked_add(n).is_some_and(|e| e <= self.len),
            "ring access out of bounds"
        );
    }

    /// The aligned 64-bit word at byte offset `off`, as an atomic.
    ///
    /// # Safety
    /// `off` is a multiple of 8 and `off + 8 <= len`.
    #[inline]
    unsafe fn word(&self, off: usize) -> &crate::shim::AtomicU64 {
        #[cfg(not(loom))]
        // SAFETY: in bounds and aligned (the caller's promise; the base is 16-aligned,
        // `Data::new`); the word stays mapped while `self` is used, and every access to it
        // from any process is atomic or volatile.
        unsafe {
            crate::shim::AtomicU64::from_ptr(self.base.add(off).cast::<u64>())
        }
        #[cfg(loom)]
        &self.words[off / 8]
    }

    /// Reads the aligned 64-bit word at `off` (volatile: another process may change it).
    ///
    /// # Safety
    /// `off` is a multiple of 8 and `off + 8 <= len`.
    #[inline]
    unsafe fn load(&self, off: usize) -> u64 {
        #[cfg(not(loom))]
        // SAFETY: in bounds and aligned (the caller's promise; the base is 16-aligned).
        unsafe {
            core::ptr::read_volatile(self.base.add(off).cast::<u64>())
        }
        #[cfg(loom)]
        self.words[off / 8].load(Ordering::Relaxed)
    }

    /// Writes the aligned 64-bit word at `off` (volatile).
    ///
    /// # Safety
    /// `off` is a multiple of 8 and `off + 8 <= len`.
    #[inline]
    unsafe fn store(&self, off: usize, v: u64) {
        #[cfg(not(loom))]
        // SAFETY: in bounds and aligned (the caller's promise; the base is 16-aligned).
        unsafe {
            core::ptr::write_volatile(self.base.add(off).cast::<u64>(), v)
        }
        #[cfg(loom)]
        self.words[off / 8].store(v, Ordering::Relaxed)
    }

    /// The address of byte `off` (zero-copy access by the process layer).
    #[cfg(not(loom))]
    #[inline]
    pub fn ptr(&self, off: usize, n: usize) -> *mut u8 {
        self.check(off, n);
        // SAFETY: off + n <= len (checked), so the result stays inside the area.
        unsafe { self.base.add(off) }
    }

    /// Reads the aligned 64-bit word at `off` (volatile: another process may change it).
    #[inline]
    pub(crate) fn read_u64(&self, off: usize) -> u64 {
        self.check(off, 8);
        assert!(off.is_multiple_of(8));
        // SAFETY: in bounds and aligned (checked).
        unsafe { self.load(off) }
    }

    /// Writes the aligned 64-bit word at `off`.
    #[inline]
    pub(crate) fn write_u64(&self, off: usize, v: u64) {
        self.check(off, 8);
        assert!(off.is_multiple_of(8));
        // SAFETY: in bounds and aligned (checked).
        unsafe { self.store(off, v) }
    }

    /// Copies `src` to `off`. `racy`: readers may read the bytes concurrently (overwrite mode),
    /// so the copy is volatile.
    #[inline]
    pub fn copy_in(&self, off: usize, src: &[u8], racy: bool) {
        self.check(off, src.len());
        #[cfg(not(loom))]
        {
            if racy {
                self.copy_in_volatile(off, src);
            } else {
                // SAFETY: in bounds (checked); the protocol gives the writer these bytes
                // exclusively, and `src` is not in the area (the caller owns it).
                unsafe {
                    core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off), src.len())
                };
            }
        }
        #[cfg(loom)]
        {
            let _ = racy;
            assert!(off % 8 == 0);
            for (i, chunk) in src.chunks(8).enumerate() {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                self.words[off / 8 + i].store(u64::from_le_bytes(w), Ordering::Relaxed);
            }
        }
    }

    /// `copy_in` byte by byte, volatile (kept out of line: the plain copy is the hot one).
    #[cfg(not(loom))]
    #[inline(never)]
    fn copy_in_volatile(&self, off: usize, src: &[u8]) {
        self.check(off, src.len());
        for (i, b) in src.iter().enumerate() {
            // SAFETY: off + i < len (checked above).
            unsafe { core::ptr::write_volatile(self.base.add(off + i), *b) };
        }
    }

    /// `copy_out` byte by byte, volatile (kept out of line).
    #[cfg(not(loom))]
    #[inline(never)]
    fn copy_out_volatile(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len());
        for (i, b) in dst.iter_mut().enumerate() {
            // SAFETY: off + i < len (checked above).
            *b = unsafe { core::ptr::read_volatile(self.base.add(off + i)) };
        }
    }

    /// Copies bytes at `off` into `dst`; see [`Data::copy_in`] for `racy`.
    #[inline]
    pub fn copy_out(&self, off: usize, dst: &mut [u8], racy: bool) {
        self.check(off, dst.len());
        #[cfg(not(loom))]
        {
            if racy {
                self.copy_out_volatile(off, dst);
            } else {
                // SAFETY: in bounds (checked); the protocol guarantees no one writes these
                // bytes until the reader releases them; `dst` is not in the area.
                unsafe {
                    core::ptr::copy_nonoverlapping(self.base.add(off), dst.as_mut_ptr(), dst.len())
                };
            }
        }
        #[cfg(loom)]
        {
            let _ = racy;
            assert!(off % 8 == 0);
            for (i, chunk) in dst.chunks_mut(8).enumerate() {
                let w = self.words[off / 8 + i]
                    .load(Ordering::Relaxed)
                    .to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
        }
    }

    /// Byte offset of word `word` (0 or 1) of the cell holding position `pos`: a multiple of
    /// 8, and in an area of at least 16 bytes at most `len - 8` (the mask keeps the cell
    /// below the largest power of two that fits). The ring algorithms use the positional
    /// accessors only over a ring's data area (checked by `ring_data`: a power of two of at
    /// least 64 bytes), where the mask is `len - 1` with the low four bits cleared.
    #[inline]
    fn at(&self, pos: u64, word: usize) -> usize {
        debug_assert!(self.len >= 16);
        (pos as usize & self.mask) | ((word & 1) << 3)
    }

    /// The header's first word (length and kind) of the cell at `pos` (volatile read).
    #[inline]
    pub(crate) fn header(&self, pos: u64) -> u64 {
        // SAFETY: in bounds and 8-aligned (see `at`).
        unsafe { self.load(self.at(pos, 0)) }
    }

    /// Writes the header's first word of the cell at `pos`.
    #[inline]
    pub(crate) fn set_header(&self, pos: u64, v: u64) {
        // SAFETY: as in `header`.
        unsafe { self.store(self.at(pos, 0), v) }
    }

    /// The header's second word (the stamp) of the cell at `pos`, with acquire ordering.
    #[inline]
    pub(crate) fn stamp(&self, pos: u64) -> u64 {
        // SAFETY: as in `header`.
        unsafe { self.word(self.at(pos, 1)) }.load(Ordering::Acquire)
    }

    /// Writes the header's second word of the cell at `pos` with release ordering.
    #[inline]
    pub(crate) fn set_stamp(&self, pos: u64, v: u64) {
        // SAFETY: as in `header`.
        unsafe { self.word(self.at(pos, 1)) }.store(v, Ordering::Release)
    }

    /// Hints the processor to bring the cache line holding `pos` in for reading (no effect
    /// off x86-64 and under loom).
    #[inline]
    pub(crate) fn prefetch(&self, pos: u64) {
        #[cfg(all(not(loom), target_arch = "x86_64"))]
        {
            let off = self.at(pos, 0);
            // SAFETY: a prefetch only hints the cache; it neither reads nor writes memory as
            // far as the program is concerned, and the address is inside the area anyway
            // (see `at`).
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    self.base.add(off).cast::<i8>().cast_const(),
                )
            }
        }
        #[cfg(any(loom, not(target_arch = "x86_64")))]
        let _ = pos;
    }
}
