//! For the rows' unit tests: both sides of a row in this process, the peer echoing in a thread.

use std::time::Duration;

use ipcx::wait::Wait;

use crate::mechanism::{Mechanism, RowContext, Side};

/// Opens both sides of `row` (4 KiB payloads) in a private directory, sends 20 messages of 8
/// and 4096 bytes, checks that each comes back unchanged, then ends the phase. Returns the
/// row's spec and how many messages the peer echoed.
pub(crate) fn echo_twenty(row: &dyn Mechanism) -> (String, u64) {
    // One directory per row: the tests run in parallel and each removes its own.
    let tag = format!("ipcx-bench-echo-{}-{}", std::process::id(), row.name());
    let dir = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&dir).unwrap();
    let ctx = RowContext {
        payload: 4096,
        dir: dir.clone(),
        tag,
    };
    let p = row.prepare(&ctx).unwrap();
    let peer_half = row.open(&p.spec, Side::Peer, 4096).unwrap();
    let parent_half = row.open(&p.spec, Side::Parent, 4096).unwrap();
    let wait = Wait::timeout(Duration::from_secs(10));
    let is_end = |m: &[u8]| m.len() >= 8 && m[..8] == u64::MAX.to_le_bytes();
    let echo = std::thread::spawn(move || {
        let mut peer = peer_half.connect(wait).unwrap();
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            peer.recv(&mut buf, Wait::timeout(Duration::from_secs(10)))
                .unwrap();
            if is_end(&buf) {
                return n;
            }
            peer.send(&buf, Wait::Forever).unwrap();
            n += 1;
        }
    });
    let mut parent = parent_half.connect(wait).unwrap();
    let mut buf = Vec::new();
    for seq in 0..20u64 {
        let mut msg = seq.to_le_bytes().to_vec();
        msg.resize(if seq % 2 == 0 { 8 } else { 4096 }, 7);
        parent.send(&msg, wait).unwrap();
        parent.recv(&mut buf, wait).unwrap();
        assert_eq!(buf, msg);
    }
    parent.send(&u64::MAX.to_le_bytes(), wait).unwrap();
    let echoed = echo.join().unwrap();
    drop(parent);
    let _ = std::fs::remove_dir_all(dir);
    (p.spec.clone(), echoed)
}
