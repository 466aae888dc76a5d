//! Unit tests of the writer and reader on a heap-allocated ring.

extern crate std;
use crate::record::{KIND_MSG, KIND_PAD, stamp};
use crate::shim::Ordering;
use crate::*;
use std::vec::Vec;

const P: Params = Params {
    capacity: 64,
    max_msg: 16,
    overwrite: false,
};

/// A ring on the heap with one claimed reader cursor.
struct Rig {
    /// The data area's storage (16-aligned); only reached through `data`.
    _words: Vec<u128>,
    data: Data,
    ctl: Ctl,
    cursors: [Cursor; 1],
    p: Params,
}

impl Rig {
    fn new(p: Params) -> Rig {
        let mut words = std::vec![0u128; p.capacity as usize / 16];
        #[allow(unsafe_code)]
        // SAFETY: the buffer is `capacity` bytes, 16-aligned (u128), on the heap (it does
        // not move with the Rig), lives as long as the Rig, and no reference to it is used
        // while the ring accesses it.
        let data = unsafe { Data::new(words.as_mut_ptr().cast::<u8>(), words.len() * 16) };
        let cursors = [Cursor::new()];
        cursors[0].state.store(CLAIMED, Ordering::Relaxed);
        Rig {
            _words: words,
            data,
            ctl: Ctl::new(),
            cursors,
            p,
        }
    }
    fn reader(&self) -> Reader<'_> {
        Reader::join(&self.ctl, &self.cursors[0], self.data, self.p).unwrap()
    }
    fn writer(&self) -> Writer<'_> {
        Writer::attach(&self.ctl, &self.cursors, self.data, self.p).unwrap()
    }
}

fn word(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

/// A payload from an earlier lap that holds the very stamp a later record will have, at
/// the place that record's stamp goes, is never taken for a committed record.
#[test]
fn stale_payload_never_reads_as_a_stamp() {
    let rig = Rig::new(P);
    let mut r = rig.reader();
    let mut w = rig.writer();
    let mut out = [0u8; 16];
    // Record at 0: payload at offsets 16..32 looks like a message header (len 0) with the
    // stamp of a record at position 80 (offset 16).
    let mut forged = Vec::new();
    forged.extend_from_slice(&word(u64::from(KIND_MSG) << 32));
    forged.extend_from_slice(&word(stamp(80)));
    w.try_send(&forged).unwrap();
    assert_eq!(r.try_recv(&mut out).unwrap(), Some((16, 0)));
    w.try_send(&[7; 16]).unwrap(); // at 32
    assert_eq!(r.try_recv(&mut out).unwrap(), Some((16, 0)));
    w.try_send(&[]).unwrap(); // at 64, ends at 80
    assert_eq!(r.try_recv(&mut out).unwrap(), Some((0, 0)));
    assert!(!r.has_data());
    assert_eq!(r.try_recv(&mut out).unwrap(), None);
    w.try_send(&[9; 3]).unwrap(); // at 80
    assert_eq!(r.try_recv(&mut out).unwrap(), Some((3, 0)));
    assert_eq!(&out[..3], &[9; 3]);
}

/// A writer that died after stamping a record but before publishing the head: the next
/// writer takes the record as committed, and the reader (who may have read it) goes on.
#[test]
fn a_new_writer_adopts_a_stamped_but_unpublished_record() {
    let rig = Rig::new(P);
    let mut r = rig.reader();
    let mut w = rig.writer();
    w.try_send(b"one").unwrap();
    // Undo the head's publication, as if the writer had died just before it.
    rig.ctl.writer.head.store(0, Ordering::Release);
    rig.ctl.writer.seq.store(0, Ordering::Release);
    let mut out = [0u8; 16];
    assert_eq!(r.try_recv(&mut out).unwrap(), Some((3, 0)));
    assert_eq!(r.try_recv(&mut out).unwrap(), None);
    let mut w = rig.writer();
    assert_eq!(rig.ctl.writer.head.load(Ordering::Acquire), 32);
    w.try_send(b"two").unwrap();
    assert_eq!(r.try_recv(&mut out).unwrap(), Some((3, 0)));
    assert_eq!(&out[..3], b"two");
}

/// Messages of every size, many laps, a reader lagging by a varying amount: every
/// message arrives whole and in order (through the fast paths, padding and full rings).
#[test]
fn varied_sizes_over_many_laps() {
    const Q: Params = Params {
        capacity: 256,
        max_msg: 100,
        overwrite: false,
    };
    let rig = Rig::new(Q);
    let mut r = rig.reader();
    let mut w = rig.writer();
    let msg = |i: u32| -> Vec<u8> {
        let len = (i * 37 % 101) as usize;
        (0..len).map(|j| (i as usize + j) as u8).collect()
    };
    let (mut sent, mut got) = (0u32, 0u32);
    let mut out = [0u8; 100];
    while got < 2000 {
        // Send a few (until full), then receive a few.
        for _ in 0..(sent % 5) + 1 {
            match w.try_send(&msg(sent)) {
                Ok(()) => sent += 1,
                Err(RingError::Full) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        for _ in 0..(got % 4) + 1 {
            let Some((n, 0)) = r.try_recv(&mut out).unwrap() else {
                break;
            };
            assert_eq!(&out[..n], &msg(got)[..]);
            got += 1;
        }
    }
    assert!(rig.ctl.writer.head.load(Ordering::Acquire) > 20 * Q.capacity);
}

/// A stamped record whose header is garbage is corrupt, whichever check it fails.
#[test]
fn a_stamped_record_with_a_bad_header_is_corrupt() {
    for w0 in [
        u64::from(KIND_MSG) << 32 | 17, // above max_msg
        3 << 32,                        // unknown kind
        u64::from(KIND_PAD) << 32,      // padding that does not reach the end
        0,
    ] {
        let rig = Rig::new(P);
        let mut r = rig.reader();
        rig.data.write_u64(0, w0);
        rig.data.write_u64(8, stamp(0));
        let mut out = [0u8; 16];
        assert!(
            matches!(r.try_recv(&mut out), Err(RingError::Corrupt(_))),
            "{w0:#x}"
        );
    }
}

/// A record below the published head without its stamp is an error, not a hang.
#[test]
fn a_missing_stamp_below_the_head_is_corrupt() {
    let rig = Rig::new(P);
    let mut r = rig.reader();
    let mut w = rig.writer();
    w.try_send(b"one").unwrap();
    rig.data.write_u64(8, 12345);
    let mut out = [0u8; 16];
    assert!(matches!(r.try_recv(&mut out), Err(RingError::Corrupt(_))));
}

/// A lossless ring of 64 KiB (eight hot windows) that allows 1 KiB messages.
const HOT_P: Params = Params {
    capacity: 64 << 10,
    max_msg: 1024,
    overwrite: false,
};

/// One message of `len` bytes through `w` and `r`: where its payload went in the data
/// area, after checking it arrived intact.
fn exchange(w: &mut Writer<'_>, r: &mut Reader<'_>, i: u64, len: usize) -> usize {
    let msg: Vec<u8> = (0..len as u64).map(|k| (i * 7 + k) as u8).collect();
    let res = w.reserve(len).unwrap();
    w.write(&res, 0, &msg);
    w.commit(res, len);
    let mut out = std::vec![0u8; 1024];
    assert_eq!(r.try_recv(&mut out).unwrap(), Some((len, 0)), "message {i}");
    assert_eq!(&out[..len], &msg[..], "message {i}");
    res.offset
}

/// Request/reply traffic (each message read before the next is sent) cycles through the
/// hot window: no payload starts past it, over several times the capacity, with every
/// message intact.
#[test]
fn a_ring_kept_empty_stays_in_the_hot_window() {
    let rig = Rig::new(HOT_P);
    let (mut w, mut r) = (rig.writer(), rig.reader());
    assert_eq!(w.hot_window(), HOT_WINDOW);
    let mut rewinds = 0;
    let mut last = 0;
    for i in 0..4000 {
        let off = exchange(&mut w, &mut r, i, 64);
        assert!(off < HOT_WINDOW as usize, "message {i} at {off}");
        rewinds += usize::from(off < last);
        last = off;
    }
    // 4000 records of 80 bytes are almost five capacities; each window holds 102.
    assert!(rewinds >= 4000 / 103, "{rewinds} rewinds");
    assert!(!r.has_data());
}

/// A reader that is behind (a stream) keeps the whole ring: the writer fills it without a
/// rewind, and the reader then gets every message in order.
#[test]
fn a_reader_behind_keeps_the_whole_ring() {
    let rig = Rig::new(HOT_P);
    let (mut w, mut r) = (rig.writer(), rig.reader());
    let msg = |i: u64| -> [u8; 64] { [(i % 251) as u8; 64] };
    let mut sent = 0;
    while w.try_send(&msg(sent)).is_ok() {
        sent += 1;
    }
    // 80-byte records: all of the 64 KiB but the last partial record.
    assert_eq!(sent, (64 << 10) / 80);
    let mut out = [0u8; 64];
    for i in 0..sent {
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((64, 0)));
        assert_eq!(out, msg(i), "message {i}");
    }
    assert_eq!(r.try_recv(&mut out).unwrap(), None);
}

/// Records above an eighth of the window never rewind, and a window of 0 turns rewinding
/// off: in both cases request/reply traffic sweeps the ring.
#[test]
fn large_records_and_a_zero_window_sweep_the_ring() {
    for (len, window) in [(1024, HOT_WINDOW), (64, 0)] {
        let rig = Rig::new(HOT_P);
        let (mut w, mut r) = (rig.writer(), rig.reader());
        w.set_hot_window(window);
        let mut furthest = 0;
        for i in 0..1000 {
            furthest = furthest.max(exchange(&mut w, &mut r, i, len));
        }
        assert!(
            furthest > HOT_WINDOW as usize * 2,
            "{len} B, window {window}: {furthest}"
        );
    }
}

/// No hot window where it cannot help: overwrite rings and rings under four windows.
#[test]
fn hot_window_defaults() {
    let small = Params {
        capacity: 16 << 10,
        ..HOT_P
    };
    let overwrite = Params {
        overwrite: true,
        ..HOT_P
    };
    for (p, want) in [(HOT_P, HOT_WINDOW), (small, 0), (overwrite, 0)] {
        let rig = Rig::new(p);
        let mut w = rig.writer();
        assert_eq!(w.hot_window(), want, "{p:?}");
        w.set_hot_window(1000);
        assert_eq!(w.hot_window(), if p.overwrite { 0 } else { 992 }, "{p:?}");
    }
}
