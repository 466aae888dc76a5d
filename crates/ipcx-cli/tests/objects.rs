//! `ipcx shm`, `ipcx sem`, `ipcx signal`, `ipcx ls`, `ipcx rm` and `ipcx clean`, run as real
//! processes.
mod util;

use std::time::Duration;

use util::{Bg, Remove, run, stderr, stdout, succeeded};

/// Held by the tests that run `ipcx clean` for real: a clean in one test would remove what
/// another test's killed process left behind on purpose.
static CLEAN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn clean_lock() -> std::sync::MutexGuard<'static, ()> {
    CLEAN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn posix_and_sysv_shared_memory_from_the_shell() {
    let posix = format!("/{}", util::unique("shm"));
    let sysv = format!("sysv-shm:{}", util::sysv_key());
    let _g = Remove(vec![format!("posix-shm:{posix}"), sysv.clone()]);
    for obj in [posix.as_str(), sysv.as_str()] {
        let o = run(&["shm", "create", obj, "--size", "4k"]);
        assert!(o.status.success(), "{obj}: {}", stderr(&o));
        // The object outlives the command; a second create is refused.
        let again = run(&["shm", "create", obj, "--size", "4k"]);
        assert_eq!(again.status.code(), Some(1), "{obj}");
        succeeded(run(&["shm", "write", obj, "--offset", "100", "hello"]));
        let o = run(&["shm", "read", obj, "--offset", "100", "--len", "5"]);
        assert_eq!(o.stdout, b"hello", "{obj}: {}", stderr(&o));
        // Reading the whole segment gives exactly its size.
        assert_eq!(run(&["shm", "read", obj]).stdout.len(), 4096);
        // Past the end: a clear error, exit 1.
        let o = run(&["shm", "read", obj, "--offset", "4090", "--len", "10"]);
        assert_eq!(o.status.code(), Some(1), "{obj}");
        assert!(!stderr(&o).is_empty());
        let o = run(&["shm", "write", obj, "--offset", "5000", "x"]);
        assert_eq!(o.status.code(), Some(1), "{obj}");
        assert!(run(&["shm", "rm", obj]).status.success());
        let o = run(&["shm", "read", obj]);
        assert_eq!(o.status.code(), Some(1), "{obj} still readable after rm");
    }
    // Size 0 and bad names.
    assert_eq!(
        run(&["shm", "create", &posix, "--size", "0"]).status.code(),
        Some(1)
    );
    assert_eq!(
        run(&["shm", "create", "no-slash", "--size", "1"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn semaphores_from_the_shell() {
    let posix = format!("/{}", util::unique("sem"));
    let sysv = format!("sysv-sem:{}", util::sysv_key());
    let _g = Remove(vec![format!("posix-sem:{posix}"), sysv.clone()]);
    for obj in [posix.as_str(), sysv.as_str()] {
        let o = run(&["sem", "create", obj, "--value", "1"]);
        assert!(o.status.success(), "{obj}: {}", stderr(&o));
        assert_eq!(stdout(&run(&["sem", "get", obj])), "1\n");
        assert!(run(&["sem", "wait", obj]).status.success());
        // Zero now: a timed wait exits 3.
        let o = run(&["sem", "wait", obj, "--timeout", "200ms"]);
        assert_eq!(o.status.code(), Some(3), "{obj}: {}", stderr(&o));
        // A waiter in another process is released by a post.
        let waiter = Bg::spawn(&["sem", "wait", obj, "--timeout", "20s"]);
        std::thread::sleep(Duration::from_millis(100));
        assert!(run(&["sem", "post", obj]).status.success());
        assert!(
            waiter.wait(Duration::from_secs(30)).status.success(),
            "{obj}"
        );
        assert!(run(&["sem", "rm", obj]).status.success());
        let o = run(&["sem", "wait", obj, "--timeout", "1s"]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{obj}: waiting on a missing semaphore"
        );
    }
    // One semaphore of a set by index.
    let set = format!("sysv-sem:{}", util::sysv_key());
    let _g2 = Remove(vec![set.clone()]);
    succeeded(run(&[
        "sem", "create", &set, "--nsems", "3", "--value", "2",
    ]));
    assert!(run(&["sem", "post", &set, "--index", "2"]).status.success());
    assert_eq!(stdout(&run(&["sem", "get", &set, "--index", "2"])), "3\n");
    assert_eq!(stdout(&run(&["sem", "get", &set, "--index", "0"])), "2\n");
}

#[test]
fn signals_with_a_payload_from_the_shell() {
    let mut waiter = Bg::spawn(&[
        "signal",
        "wait",
        "RTMIN+2",
        "USR1",
        "--count",
        "2",
        "--timeout",
        "20s",
    ]);
    let pid = waiter.pid().to_string();
    // A signal that arrives before the waiter has blocked it would kill it: wait until its
    // blocked mask (SigBlk in /proc/PID/status) holds USR1 (10) and RTMIN+2 (glibc: 36).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !blocks(&pid, &[10, 36]) {
        assert!(
            std::time::Instant::now() < deadline,
            "waiter never blocked its signals"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    succeeded(run(&["signal", "send", &pid, "RTMIN+2", "--value", "42"]));
    assert!(run(&["signal", "send", &pid, "SIGUSR1"]).status.success());
    let first = waiter.read_stdout_line();
    let out = waiter.wait(Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    let all = format!("{first}\n{}", stdout(&out));
    assert!(all.contains("RTMIN+2 pid="), "{all}");
    assert!(all.contains("value=42"), "{all}");
    assert!(all.contains("USR1 pid="), "{all}");
    // A pid that does not exist: exit 1 with a clear message.
    let o = run(&["signal", "send", "999999", "USR1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("999999"), "{}", stderr(&o));
    // An unknown signal name is a usage error.
    assert_eq!(run(&["signal", "send", "1", "NOPE"]).status.code(), Some(2));
    // No signal in time: exit 3.
    assert_eq!(
        run(&["signal", "wait", "USR2", "--timeout", "200ms"])
            .status
            .code(),
        Some(3)
    );
}

/// Whether process `pid` blocks every signal number in `sigs`.
fn blocks(pid: &str, sigs: &[u32]) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(0);
    sigs.iter().all(|s| mask & (1 << (s - 1)) != 0)
}

#[test]
fn ls_shows_objects_with_owner_mode_and_liveness() {
    let posix = format!("/{}", util::unique("ls"));
    let sysv = format!("sysv-shm:{}", util::sysv_key());
    let _g = Remove(vec![format!("posix-shm:{posix}"), sysv.clone()]);
    succeeded(run(&[
        "shm", "create", &posix, "--size", "8k", "--mode", "640",
    ]));
    succeeded(run(&["shm", "create", &sysv, "--size", "100"]));
    let o = run(&["ls", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let objs = v["objects"].as_array().unwrap();
    let find = |name: &str| {
        objs.iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
    };
    let p = find(&format!("posix-shm:{posix}"));
    assert_eq!(p["mode"], "0640");
    assert_eq!(p["size"], 8192);
    assert_eq!(p["kind"], "posix-shm");
    let key: i32 = sysv.trim_start_matches("sysv-shm:").parse().unwrap();
    let s = find(&format!("sysv-shm:0x{:08x}", key as u32));
    assert_eq!(s["size"], 100);
    assert_eq!(s["attachments"], 0);
    assert_eq!(
        s["creator_alive"], false,
        "the creating ipcx command has exited"
    );
    // The table names the same objects.
    let table = stdout(&run(&["ls"]));
    assert!(table.contains(&format!("posix-shm:{posix}")), "{table}");
}

#[test]
fn clean_removes_only_what_it_can_prove_is_stale() {
    let _clean = clean_lock();
    // A segment another program created, whose creator died without removing it and that
    // nobody attaches: stale by what the kernel records (removed with --force-foreign).
    let key = util::sysv_key();
    let name = format!("sysv-shm:0x{:08x}", key as u32);
    let _g = Remove(vec![name.clone()]);
    // Python's ctypes calls shmget directly (no extra module needed).
    let py = format!("import ctypes; assert ctypes.CDLL(None).shmget({key}, 64, 0o1600) >= 0");
    let made = std::process::Command::new("python3")
        .args(["-c", &py])
        .status();
    if !matches!(made, Ok(s) if s.success()) {
        eprintln!("python3 not available: clean test skipped");
        return;
    }
    // One that was made to persist on purpose, by ipcx: kept.
    let kept = format!("sysv-shm:{}", util::sysv_key());
    let _g2 = Remove(vec![kept.clone()]);
    succeeded(run(&["shm", "create", &kept, "--size", "64"]));

    // Not created by ipcx: kept unless --force-foreign.
    let dry = stdout(&run(&["clean", "--dry-run"]));
    assert!(
        dry.contains(&format!("keep    {name}: not created by ipcx")),
        "{dry}"
    );
    let dry = stdout(&run(&["clean", "--dry-run", "--force-foreign"]));
    assert!(dry.contains(&format!("remove  {name}")), "{dry}");
    let kept_key: i32 = kept.trim_start_matches("sysv-shm:").parse().unwrap();
    let kept_name = format!("sysv-shm:0x{:08x}", kept_key as u32);
    assert!(
        dry.contains(&format!("keep    {kept_name}: made to persist")),
        "{dry}"
    );
    // --dry-run removed nothing.
    assert!(stdout(&run(&["ls"])).contains(&name));

    let removed = stdout(&succeeded(run(&["clean", "--force-foreign"])));
    assert!(removed.contains(&format!("removed {name}")), "{removed}");
    let after = stdout(&run(&["ls"]));
    assert!(!after.contains(&name), "{after}");
    assert!(after.contains(&kept_name), "{after}");
}

#[test]
fn rm_reports_missing_objects_and_bad_names() {
    let o = run(&["rm", &format!("posix-shm:/{}", util::unique("none"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing to remove"), "{}", stderr(&o));
    assert_eq!(run(&["rm", "what:ever"]).status.code(), Some(2));
    // A fifo: name that is a regular file is left untouched.
    let dir = util::TempDir::new();
    let f = dir.join("regular");
    std::fs::write(&f, b"data").unwrap();
    let o = run(&["rm", &format!("fifo:{f}")]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&f).unwrap(), b"data");
}

#[test]
fn clean_removes_what_a_killed_receiver_left_behind() {
    let _clean = clean_lock();
    let name = util::unique("killed");
    let mq = format!("mq:/{name}");
    let dir = util::TempDir::new();
    let fifo_path = dir.join("killed.fifo");
    let fifo = format!("fifo:{fifo_path}");
    let _g = Remove(vec![mq.clone(), fifo.clone()]);
    let mut receivers = vec![Bg::spawn(&["recv", &mq]), Bg::spawn(&["recv", &fifo])];
    // The queue is looked for with mq_open: /dev/mqueue need not be mounted.
    let queue = format!("/{name}");
    assert!(
        util::wait_for(|| util::mq_exists(&queue) && std::path::Path::new(&fifo_path).exists()),
        "receivers never created their objects"
    );
    // While they run, clean keeps both: their creators are alive.
    let dry = stdout(&run(&["clean", "--dry-run"]));
    assert!(dry.contains(&format!("keep    {mq}: its creator")), "{dry}");
    // kill -9: no chance to remove anything.
    for r in &mut receivers {
        let _ = r.0.as_mut().unwrap().kill();
        let _ = r.0.as_mut().unwrap().wait();
    }
    assert!(util::mq_exists(&queue));
    assert!(std::path::Path::new(&fifo_path).exists());
    let listed = stdout(&run(&["ls"]));
    assert!(
        listed.contains(&fifo),
        "the registry lists the FIFO: {listed}"
    );
    let o = run(&["clean"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("removed {mq}")), "{out}");
    assert!(out.contains(&format!("removed {fifo}")), "{out}");
    assert!(!util::mq_exists(&queue));
    assert!(!std::path::Path::new(&fifo_path).exists());
}

#[test]
fn rm_removes_queues() {
    let mq = format!("mq:/{}", util::unique("rmq"));
    let sysv = format!("sysv-mq:{}", util::sysv_key());
    let _g = Remove(vec![mq.clone(), sysv.clone()]);
    for q in [&mq, &sysv] {
        // `send --create` makes the queue and leaves it.
        assert!(
            run(&["send", "--create", q, "hello"]).status.success(),
            "{q}"
        );
        let listed = run(&["ls", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let found = v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == q.split(':').next().unwrap() && o["messages"] == 1);
        assert!(found, "{q} with one message not listed");
        let o = run(&["rm", q]);
        assert!(o.status.success(), "{q}: {}", stderr(&o));
        assert_eq!(run(&["rm", q]).status.code(), Some(1), "{q}");
    }
}
