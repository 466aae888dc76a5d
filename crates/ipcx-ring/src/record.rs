//! Records in a ring's data area: a 16-byte header (`len: u32`, `kind: u32`, a 64-bit tag),
//! then the payload, padded to 16 bytes; and the checks every header read from shared memory
//! passes before it is used.

use crate::{Data, HEADER, Params, RingError, corrupt, record_size};

/// Record kind: a message.
pub(crate) const KIND_MSG: u32 = 1;
/// Record kind: padding up to the end of the ring.
pub(crate) const KIND_PAD: u32 = 2;

/// Checks that `data` is the data area `p` describes (else [`RingError::Corrupt`]): then the
/// positional accessors of [`Data`] reach the ring's cells.
pub(crate) fn ring_data(data: &Data, p: &Params) -> Result<(), RingError> {
    if data.is_ring() && p.is_valid() && data.len() as u64 == p.capacity {
        return Ok(());
    }
    corrupt("ring parameters")
}

/// A record header as read from shared memory (not yet validated).
pub(crate) struct RawHeader {
    pub(crate) len: u32,
    pub(crate) kind: u32,
    /// Lossless rings: the commit stamp; overwrite rings: the sequence number.
    pub(crate) seq: u64,
}

/// The commit stamp of a lossless record at `pos` (never 0: zeroed memory holds no stamp).
#[inline]
pub(crate) const fn stamp(pos: u64) -> u64 {
    pos | 1
}

#[inline]
pub(crate) fn read_header(data: &Data, off: u64) -> RawHeader {
    let w0 = data.read_u64(off as usize);
    let seq = data.read_u64(off as usize + 8);
    RawHeader {
        len: w0 as u32,
        kind: (w0 >> 32) as u32,
        seq,
    }
}

pub(crate) fn write_header(data: &Data, off: u64, len: u32, kind: u32, seq: u64) {
    data.write_u64(off as usize, u64::from(len) | (u64::from(kind) << 32));
    data.write_u64(off as usize + 8, seq);
}

/// Validates the header of the record at `pos` and returns its size, or an error naming what
/// is wrong. `limit` is the end of what may be read (`head`).
#[inline]
pub(crate) fn checked_size(
    p: &Params,
    h: &RawHeader,
    pos: u64,
    limit: u64,
) -> Result<u64, RingError> {
    let off = pos & p.mask();
    let size = match h.kind {
        KIND_MSG if h.len <= p.max_msg => record_size(u64::from(h.len)),
        KIND_MSG => return corrupt("record length above the maximum"),
        KIND_PAD => {
            let size = u64::from(h.len) + HEADER;
            if size != p.capacity - off {
                return corrupt("padding record does not end at the end of the ring");
            }
            size
        }
        _ => return corrupt("unknown record kind"),
    };
    if off + size > p.capacity {
        return corrupt("record crosses the end of the ring");
    }
    if size > limit.wrapping_sub(pos) {
        return corrupt("record extends past the published head");
    }
    Ok(size)
}
