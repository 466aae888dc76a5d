//! Hostile and faulty peers of the shared-memory ring (`shm:/NAME`), run against the real
//! binary: a huge sparse ring file, rings that never finish initialising, a ring truncated
//! under a live receiver and sender, and a ring made by another user.
mod util;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{Bg, NOBODY, ipcx, is_root, run, stderr, stdout, unique};

/// The header fields the tests patch (offsets in the segment header).
const LAYOUT_SIZE: usize = 16;
const CAPACITY: usize = 24;
const READY: usize = 44;

/// Removes `/dev/shm/NAME` at the end of a test whatever happens.
struct Remove(String);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// The control pages of a fresh ring (16 participants, a 4 KiB data area) and where its data
/// area starts.
fn control_pages() -> (Vec<u8>, usize) {
    let opts = ipcx::ring::Options::new().capacity(4096).max_message(64);
    let image = ipcx::ring::fresh_segment_image(false, &opts).unwrap();
    let data_off = image.len() - 4096;
    (image[..data_off].to_vec(), data_off)
}

/// Writes a ring file of `size` bytes whose first bytes are `head` (the rest a hole).
fn ring_file(name: &str, head: &[u8], size: u64) -> File {
    let f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    f.write_all_at(head, 0).unwrap();
    f.set_len(size).unwrap();
    f
}

/// A ring file whose header claims a 256 MiB data area (consistent with the file's size, all
/// of it a hole): opening or listing it must not fault in the data area.
#[test]
fn a_huge_sparse_ring_is_listed_and_opened_without_faulting_it_in() {
    let name = unique("sparse");
    let _r = Remove(name.clone());
    let (mut head, data_off) = control_pages();
    let cap = 256u64 << 20;
    head[CAPACITY..CAPACITY + 8].copy_from_slice(&cap.to_ne_bytes());
    let total = data_off as u64 + cap;
    head[LAYOUT_SIZE..LAYOUT_SIZE + 8].copy_from_slice(&total.to_ne_bytes());
    let f = ring_file(&name, &head, total);
    let blocks = || f.metadata().unwrap().blocks();
    let before = blocks();
    let ls = run(&["ls", "--json"]);
    assert!(ls.status.success(), "{}", stderr(&ls));
    assert!(stdout(&ls).contains(&format!("shm:/{name}")), "not listed");
    assert_eq!(blocks(), before, "ipcx ls faulted in the ring's data");
    let clean = run(&["clean", "--dry-run"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert_eq!(blocks(), before, "ipcx clean faulted in the ring's data");
    // A receiver opens it (it is a valid ring of our own) and touches its control pages and
    // at most the page at its tail, never the whole data area.
    let recv = run(&["recv", &format!("shm:/{name}"), "--timeout", "200ms"]);
    assert_eq!(recv.status.code(), Some(3), "{}", stderr(&recv));
    let grown = (blocks() - before) * 512;
    assert!(grown <= 64 << 10, "ipcx recv faulted in {grown} bytes");
}

/// Five ring files whose creator never set the ready flag: `ls` and `clean` do not wait for
/// them.
#[test]
fn rings_that_never_become_ready_do_not_stall_ls_or_clean() {
    let (mut head, data_off) = control_pages();
    head[READY..READY + 4].copy_from_slice(&0u32.to_ne_bytes());
    let names: Vec<String> = (0..5).map(|_| unique("unready")).collect();
    let _r: Vec<Remove> = names.iter().map(|n| Remove(n.clone())).collect();
    let _files: Vec<File> = names
        .iter()
        .map(|n| ring_file(n, &head, data_off as u64 + 4096))
        .collect();
    for args in [&["ls"][..], &["ls", "--json"], &["clean", "--dry-run"]] {
        let t0 = Instant::now();
        let o = run(args);
        let took = t0.elapsed();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        // A hang check, not a speed claim: before the fix each file cost a second.
        assert!(took < Duration::from_secs(1), "{args:?} took {took:?}");
        if args == ["ls"] {
            for n in &names {
                assert!(stdout(&o).contains(&format!("shm:/{n}")), "{n} not listed");
            }
        }
    }
}

/// Waits until `/dev/shm/NAME` exists and has a size.
fn wait_for_ring(name: &str) {
    let path = format!("/dev/shm/{name}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&path).map_or(true, |m| m.len() == 0) {
        assert!(Instant::now() < deadline, "{path} never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn truncate(name: &str) {
    File::options()
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// `truncate -s 0` of the ring under a waiting `ipcx recv`: an error and status 1, not SIGBUS.
#[test]
fn a_ring_truncated_under_a_waiting_receiver_is_an_error() {
    let name = unique("trunc-wait");
    let _r = Remove(name.clone());
    let recv = Bg::spawn(&["recv", &format!("shm:/{name}")]);
    wait_for_ring(&name);
    std::thread::sleep(Duration::from_millis(200));
    truncate(&name);
    let o = recv.wait(Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(1), "{:?}: {}", o.status, stderr(&o));
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
}

/// The same while messages stream: the receiver and the sender both end with an error.
#[test]
fn a_ring_truncated_under_a_streaming_pair_is_an_error_for_both() {
    let name = unique("trunc-stream");
    let _r = Remove(name.clone());
    let ep = format!("shm:/{name}");
    let recv = ipcx()
        .args(["recv", &ep])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let recv = Bg(Some(recv));
    wait_for_ring(&name);
    let mut send = ipcx()
        .args(["send", &ep])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = send.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let line = [b'x'; 200];
        while input
            .write_all(&line)
            .and_then(|()| input.write_all(b"\n"))
            .is_ok()
        {}
    });
    let send = Bg(Some(send));
    std::thread::sleep(Duration::from_millis(300));
    truncate(&name);
    let o = recv.wait(Duration::from_secs(10));
    assert_eq!(
        o.status.code(),
        Some(1),
        "recv {:?}: {}",
        o.status,
        stderr(&o)
    );
    let o = send.wait(Duration::from_secs(10));
    assert_eq!(
        o.status.code(),
        Some(1),
        "send {:?}: {}",
        o.status,
        stderr(&o)
    );
    feeder.join().unwrap();
}

/// Whether `nobody` can run the binary (every directory on the way lets others through).
fn nobody_can_run_ipcx() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_ipcx"));
    exe.ancestors()
        .skip(1)
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
        && std::fs::metadata(exe).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005)
}

fn as_nobody(args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = ipcx();
    c.args(args).uid(NOBODY).gid(NOBODY);
    c
}

/// A ring that `nobody` made (mode 666) is refused by root's receiver, with the owner named,
/// and left in place; `--allow-uid` lets it through.
#[test]
fn a_ring_made_by_another_user_is_refused_unless_allowed() {
    if !is_root() || !nobody_can_run_ipcx() {
        eprintln!("skipped: needs root and a binary that nobody can run");
        return;
    }
    let name = unique("foreign");
    let _r = Remove(name.clone());
    let ep = format!("shm:/{name}");
    let theirs = as_nobody(&["recv", &ep, "--mode", "666"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _theirs = Bg(Some(theirs));
    wait_for_ring(&name);
    let o = run(&["recv", &ep, "--timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{:?}: {}", o.status, stderr(&o));
    assert!(stderr(&o).contains("65534"), "{}", stderr(&o));
    assert!(
        std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "the refused ring was removed"
    );
    let o = run(&["send", &ep, "forged"]);
    assert_eq!(o.status.code(), Some(1), "{:?}: {}", o.status, stderr(&o));
    assert!(stderr(&o).contains("65534"), "{}", stderr(&o));
    // Explicitly trusted: root receives what nobody sends.
    let ours = Bg::spawn(&[
        "recv",
        &ep,
        "--allow-uid",
        "65534",
        "--count",
        "1",
        "--timeout",
        "10s",
    ]);
    // Both receivers subscribed: nobody's and ours.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ipcx::ring::participants(&format!("/{name}")).map_or(0, |p| p.len()) < 2 {
        assert!(Instant::now() < deadline, "our receiver never subscribed");
        std::thread::sleep(Duration::from_millis(5));
    }
    loop {
        let s = as_nobody(&["send", &ep, "hello"]).output().unwrap();
        if s.status.success() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = ours.wait(Duration::from_secs(10));
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
    assert!(stdout(&o).contains("hello"), "{}", stdout(&o));
    assert!(std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}
