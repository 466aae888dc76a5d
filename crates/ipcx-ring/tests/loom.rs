//! Loom model checks of the ring algorithms (run with `--cfg loom`, see the crate docs).
#![cfg(loom)]

use ipcx_ring::{
    ACTIVE, CLAIMED, Ctl, Cursor, Data, Params, Reader, RingError, WorkCtl, WorkQueue, WorkSlot,
    Writer,
};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use loom::thread;

fn words(bytes: usize) -> &'static [AtomicU64] {
    let v: Vec<AtomicU64> = (0..bytes / 8).map(|_| AtomicU64::new(0)).collect();
    Box::leak(v.into_boxed_slice())
}

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

fn msg(i: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| i.wrapping_mul(31).wrapping_add(k as u8))
        .collect()
}

fn send_spin(w: &mut Writer<'_>, m: &[u8]) {
    loop {
        match w.try_send(m) {
            Ok(()) => return,
            Err(RingError::Full) => thread::yield_now(),
            Err(e) => panic!("send: {e:?}"),
        }
    }
}

fn recv_spin(r: &mut Reader<'_>, buf: &mut [u8]) -> (usize, u64) {
    loop {
        match r.try_recv(buf).expect("recv") {
            Some(x) => return x,
            None => thread::yield_now(),
        }
    }
}

const P: Params = Params {
    capacity: 64,
    max_msg: 16,
    overwrite: false,
};

/// SPSC, lossless, variable sizes through a 64-byte ring: wrap-around padding and a full ring.
#[test]
fn spsc_lossless_variable_sizes() {
    loom::model(|| {
        let ctl = leak(Ctl::new());
        let cursors: &'static [Cursor] = Box::leak(vec![Cursor::new()].into_boxed_slice());
        let data = Data::from_words(words(64));
        cursors[0].state.store(CLAIMED, Ordering::Relaxed);
        let mut r = Reader::join(ctl, &cursors[0], data, P).unwrap();
        let sizes = [0usize, 9, 3, 16];
        let t = thread::spawn(move || {
            let mut w = Writer::attach(ctl, cursors, data, P).unwrap();
            for (i, n) in sizes.iter().enumerate() {
                send_spin(&mut w, &msg(i as u8, *n));
            }
        });
        let mut buf = [0u8; 16];
        for (i, n) in sizes.iter().enumerate() {
            let (len, missed) = recv_spin(&mut r, &mut buf);
            assert_eq!(missed, 0);
            assert_eq!(&buf[..len], &msg(i as u8, *n)[..]);
        }
        t.join().unwrap();
    });
}

/// One writer, two readers, each making a bounded number of attempts (no spinning, so every
/// interleaving is explored): whatever a reader gets is the right message in the right order,
/// the writer never overwrites what either reader has not read, and after the threads finish
/// each reader gets every message that was sent, exactly once.
#[test]
fn broadcast_two_readers_lossless() {
    loom::model(|| {
        let ctl = leak(Ctl::new());
        let cursors: &'static [Cursor] =
            Box::leak(vec![Cursor::new(), Cursor::new()].into_boxed_slice());
        let data = Data::from_words(words(64));
        let mut readers = Vec::new();
        for c in cursors {
            c.state.store(CLAIMED, Ordering::Relaxed);
            readers.push(Reader::join(ctl, c, data, P).unwrap());
        }
        // Records of 32 bytes: the third message needs a slot both readers have released.
        let t = thread::spawn(move || {
            let mut w = Writer::attach(ctl, cursors, data, P).unwrap();
            let mut sent = 0u8;
            for i in 0..3u8 {
                match w.try_send(&msg(i, 16)) {
                    Ok(()) => sent += 1,
                    Err(RingError::Full) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            sent
        });
        let attempt = |r: &mut Reader<'static>, got: &mut Vec<u8>| {
            let mut buf = [0u8; 16];
            if let Some((len, _)) = r.try_recv(&mut buf).unwrap() {
                let i = got.len() as u8;
                assert_eq!(&buf[..len], &msg(i, 16)[..]);
                got.push(i);
            }
        };
        let mut r1 = readers.pop().unwrap();
        let t1 = thread::spawn(move || {
            let mut got = Vec::new();
            attempt(&mut r1, &mut got);
            (r1, got)
        });
        let mut r0 = readers.pop().unwrap();
        let mut got0 = Vec::new();
        attempt(&mut r0, &mut got0);
        let sent = t.join().unwrap();
        let (mut r1, mut got1) = t1.join().unwrap();
        assert!(sent >= 2, "two records always fit");
        for (r, got) in [(&mut r0, &mut got0), (&mut r1, &mut got1)] {
            for _ in 0..3 {
                attempt(r, got);
            }
            assert_eq!(got.len(), sent as usize);
        }
    });
}

/// A reader joining while the writer runs sees an unbroken, intact suffix of the messages,
/// and the writer never overwrites what it has not read.
#[test]
fn reader_joins_concurrently() {
    loom::model(|| {
        let ctl = leak(Ctl::new());
        let cursors: &'static [Cursor] = Box::leak(vec![Cursor::new()].into_boxed_slice());
        let data = Data::from_words(words(64));
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let t = thread::spawn(move || {
            let mut w = Writer::attach(ctl, cursors, data, P).unwrap();
            for i in 0..3u8 {
                send_spin(&mut w, &msg(i, 16));
            }
            d2.store(true, Ordering::Release);
        });
        cursors[0].state.store(CLAIMED, Ordering::Relaxed);
        let mut r = Reader::join(ctl, &cursors[0], data, P).unwrap();
        assert_eq!(cursors[0].state.load(Ordering::Relaxed), ACTIVE);
        let mut buf = [0u8; 16];
        let mut last: Option<u8> = None;
        loop {
            let finished = done.load(Ordering::Acquire);
            match r.try_recv(&mut buf).unwrap() {
                Some((len, missed)) => {
                    assert_eq!(missed, 0);
                    let i = buf[0] / 31; // msg(i, _)[0] == 31 * i
                    assert_eq!(&buf[..len], &msg(i, 16)[..]);
                    if let Some(l) = last {
                        assert_eq!(i, l + 1);
                    }
                    last = Some(i);
                }
                None if finished => break,
                None => thread::yield_now(),
            }
        }
        t.join().unwrap();
    });
}

/// The hot window: a writer whose reader has read everything starts a record that would end
/// past the window at the next lap (a padding record to the end of this one), and a record
/// sent while the reader is still busy stays where it is. With the writer starting just below
/// the window's end, the second message is sent once the reader has taken the first (a
/// rewind), the third at once: whatever the interleaving, the reader gets all three, intact
/// and in order, across the padding.
#[test]
fn hot_window_rewind() {
    const HOT: Params = Params {
        capacity: 512,
        max_msg: 16,
        overwrite: false,
    };
    loom::model(|| {
        let ctl = leak(Ctl::new());
        // The first record (32 bytes) ends at the window's end, 256.
        ctl.writer.head.store(224, Ordering::Relaxed);
        let cursors: &'static [Cursor] = Box::leak(vec![Cursor::new()].into_boxed_slice());
        let data = Data::from_words(words(512));
        cursors[0].state.store(CLAIMED, Ordering::Relaxed);
        let mut r = Reader::join(ctl, &cursors[0], data, HOT).unwrap();
        let t = thread::spawn(move || {
            let mut w = Writer::attach(ctl, cursors, data, HOT).unwrap();
            w.set_hot_window(256);
            let mut offsets = Vec::new();
            for i in 0..3u8 {
                if i == 1 {
                    while cursors[0].tail.load(Ordering::Acquire) != 256 {
                        thread::yield_now();
                    }
                }
                let m = msg(i, 16);
                let res = w.reserve(m.len()).unwrap();
                w.write(&res, 0, &m);
                w.commit(res, m.len());
                offsets.push(res.offset);
            }
            offsets
        });
        let mut buf = [0u8; 16];
        for i in 0..3u8 {
            let (len, missed) = recv_spin(&mut r, &mut buf);
            assert_eq!(missed, 0);
            assert_eq!(&buf[..len], &msg(i, 16)[..]);
        }
        // Payloads at 240, then at the next lap's start (16), then right after it (48).
        assert_eq!(t.join().unwrap(), [240, 16, 48]);
    });
}

/// Overwrite mode: the writer never waits; the reader never returns a torn record, sees
/// increasing sequence numbers, and received + missed accounts for every message.
#[test]
fn overwrite_never_torn_and_counts_missed() {
    loom::model(|| {
        let p = Params {
            overwrite: true,
            ..P
        };
        let ctl = leak(Ctl::new());
        let cursors: &'static [Cursor] = Box::leak(vec![Cursor::new()].into_boxed_slice());
        let data = Data::from_words(words(64));
        cursors[0].state.store(CLAIMED, Ordering::Relaxed);
        let mut r = Reader::join(ctl, &cursors[0], data, p).unwrap();
        const N: u8 = 4;
        let t = thread::spawn(move || {
            let mut w = Writer::attach(ctl, cursors, data, p).unwrap();
            for i in 0..N {
                w.try_send(&msg(i, 16)).unwrap();
            }
        });
        let mut buf = [0u8; 16];
        let (mut got, mut missed_total) = (0u64, 0u64);
        let mut last: Option<u8> = None;
        loop {
            let (len, missed) = recv_spin(&mut r, &mut buf);
            let i = buf[0] / 31;
            assert_eq!(&buf[..len], &msg(i, 16)[..], "torn record");
            assert!(last.is_none_or(|l| i > l));
            last = Some(i);
            got += 1;
            missed_total += missed;
            if i == N - 1 {
                break;
            }
        }
        assert_eq!(got + missed_total, u64::from(N));
        t.join().unwrap();
    });
}

fn work_queue(n: usize, slot: usize) -> WorkQueue<'static> {
    let ctl = leak(WorkCtl::new());
    let free: &'static [WorkSlot] = Box::leak((0..n).map(|_| WorkSlot::new()).collect());
    let ready: &'static [WorkSlot] = Box::leak((0..n).map(|_| WorkSlot::new()).collect());
    let q = WorkQueue::new(ctl, free, ready, Data::from_words(words(n * slot)), slot).unwrap();
    q.init();
    q
}

/// Two producers, two consumers, two slots: every message goes to exactly one consumer.
#[test]
fn work_queue_each_message_once() {
    loom::model(|| {
        let q = leak(work_queue(2, 16));
        let got = Arc::new(AtomicU64::new(0));
        let producers: Vec<_> = (0..2u8)
            .map(|p| {
                thread::spawn(move || {
                    loop {
                        match q.try_send(&msg(p + 1, 8)) {
                            Ok(()) => break,
                            Err(RingError::Full) => thread::yield_now(),
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                })
            })
            .collect();
        let g2 = got.clone();
        let consumer = thread::spawn(move || {
            let mut buf = [0u8; 16];
            if let Some(len) = q.try_recv(&mut buf).unwrap() {
                let i = buf[0] / 31;
                assert_eq!(&buf[..len], &msg(i, 8)[..]);
                g2.fetch_or(1 << i, Ordering::Relaxed);
            }
        });
        for p in producers {
            p.join().unwrap();
        }
        consumer.join().unwrap();
        let mut buf = [0u8; 16];
        while let Some(len) = q.try_recv(&mut buf).unwrap() {
            let i = buf[0] / 31;
            assert_eq!(&buf[..len], &msg(i, 8)[..]);
            let before = got.fetch_or(1 << i, Ordering::Relaxed);
            assert_eq!(before & (1 << i), 0, "delivered twice");
        }
        assert_eq!(got.load(Ordering::Relaxed), 0b110);
    });
}

/// One slot recycled: a producer sends two messages through it while a consumer takes them.
#[test]
fn work_queue_slot_reuse() {
    loom::model(|| {
        let q = leak(work_queue(1, 16));
        let t = thread::spawn(move || {
            for i in 0..2u8 {
                loop {
                    match q.try_send(&msg(i, 16)) {
                        Ok(()) => break,
                        Err(RingError::Full) => thread::yield_now(),
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
        });
        let mut buf = [0u8; 16];
        for i in 0..2u8 {
            let len = loop {
                match q.try_recv(&mut buf).unwrap() {
                    Some(l) => break l,
                    None => thread::yield_now(),
                }
            };
            assert_eq!(&buf[..len], &msg(i, 16)[..]);
        }
        t.join().unwrap();
    });
}

/// Redelivery (what the process layer does for a consumer that died holding a message): a
/// reaper publishes the taken slot again while a producer sends another message through the
/// other slot and a consumer waits on `has_ready`; both messages arrive exactly once, intact.
#[test]
fn work_queue_redelivery_after_a_dead_consumer() {
    loom::model(|| {
        let q = leak(work_queue(2, 16));
        q.try_send(&msg(1, 8)).unwrap();
        // The "dead" consumer took message 1 and never released it.
        let (idx, len) = q.take().unwrap().unwrap();
        assert!(!q.has_ready());
        let reaper = thread::spawn(move || q.publish(idx, len).unwrap());
        let producer = thread::spawn(move || {
            loop {
                match q.try_send(&msg(2, 8)) {
                    Ok(()) => break,
                    Err(RingError::Full) => thread::yield_now(),
                    Err(e) => panic!("{e:?}"),
                }
            }
        });
        let mut seen = 0u64;
        let mut buf = [0u8; 16];
        while seen != 0b110 {
            if !q.has_ready() {
                thread::yield_now();
                continue;
            }
            if let Some(len) = q.try_recv(&mut buf).unwrap() {
                let i = buf[0] / 31;
                assert_eq!(&buf[..len], &msg(i, 8)[..]);
                assert_eq!(seen & (1 << i), 0, "delivered twice");
                seen |= 1 << i;
            }
        }
        reaper.join().unwrap();
        producer.join().unwrap();
        assert!(q.try_recv(&mut buf).unwrap().is_none());
        assert!(q.has_free());
    });
}
