//! `ipcx ls`, `clean`, `rm` and `shm` against objects that other programs (or another user) made
//! to mislead them: names with terminal control characters, FIFOs where shared memory is expected,
//! names reused by another program, foreign System V segments, absurd lengths and durations.
mod util;

use std::process::Output;

use util::{Remove, run, stderr, stdout, succeeded};

/// Held by the tests that run `ipcx clean` for real: a clean in one test would remove what
/// another test's killed process left behind on purpose.
static CLEAN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn clean_lock() -> std::sync::MutexGuard<'static, ()> {
    CLEAN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the /dev/shm file on drop, so failing tests leave nothing behind.
struct ShmFile(std::path::PathBuf);

impl ShmFile {
    fn new(name: &str) -> ShmFile {
        ShmFile(std::path::Path::new("/dev/shm").join(name))
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn assert_no_raw_controls(what: &str, o: &Output) {
    for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        if let Some(b) = bytes
            .iter()
            .find(|&&b| (b < 0x20 && b != b'\n') || b == 0x7f)
        {
            panic!(
                "{what}: {stream} holds the raw control byte {b:#04x}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

#[test]
fn names_with_control_characters_are_printed_escaped() {
    let tag = util::unique("esc");
    // What any user can create: a name that clears the screen, rings the bell, retitles the
    // terminal and starts a forged row.
    let evil = format!("{tag}\u{1b}[2J\u{7}\u{1b}]0;owned\u{7}\rposix-shm:forged\nx");
    let file = ShmFile::new(&evil);
    std::fs::write(&file.0, b"payload").unwrap();

    let ls = run(&["ls"]);
    assert!(ls.status.success(), "{}", stderr(&ls));
    assert_no_raw_controls("ls", &ls);
    let lines: Vec<String> = stdout(&ls)
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 1, "one line for the object: {lines:?}");
    assert!(lines[0].contains("\\e[2J"), "{}", lines[0]);
    assert!(
        !stdout(&ls).lines().any(|l| l.starts_with("x ")),
        "no forged row"
    );

    let clean = run(&["clean", "--dry-run", "--verbose"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert_no_raw_controls("clean", &clean);
    let lines = stdout(&clean).lines().filter(|l| l.contains(&tag)).count();
    assert_eq!(lines, 1, "{}", stdout(&clean));

    // ipcx rm takes the raw name (as a shell passes it) and removes the object.
    let o = run(&["rm", &format!("posix-shm:/{evil}")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!file.0.exists());
    // An error message that quotes such a name escapes it too.
    let rm = run(&["rm", &format!("fifo:/nonexistent/{evil}")]);
    assert_eq!(rm.status.code(), Some(1));
    assert_no_raw_controls("rm", &rm);
    assert!(stderr(&rm).contains("\\e[2J"), "{}", stderr(&rm));
}

#[test]
fn names_with_control_characters_are_refused() {
    let tag = util::unique("bad");
    for name in [
        format!("/{tag}\u{1b}[2Jb"),
        format!("/{tag}\nb"),
        format!("/{tag}\u{7}"),
        format!("/{tag}\u{9b}"),
    ] {
        let file = ShmFile::new(&name[1..]);
        let o = run(&["shm", "create", &name, "--size", "64"]);
        assert_eq!(o.status.code(), Some(2), "{name:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("control character"), "{}", stderr(&o));
        assert_no_raw_controls("shm create", &o);
        assert!(!file.0.exists(), "{name:?} was created");
        let o = run(&["sem", "create", &name]);
        assert_eq!(o.status.code(), Some(2), "{name:?}: {}", stderr(&o));
        let o = run(&["send", "--create", &format!("mq:{name}"), "x"]);
        assert_eq!(o.status.code(), Some(2), "{name:?}: {}", stderr(&o));
    }
}

/// Runs `ipcx ARGS`, which must finish within 10 s (a hang fails the test).
fn run_quick(args: &[&str]) -> Output {
    let child = util::ipcx()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ipcx");
    util::wait_output(child, std::time::Duration::from_secs(10))
}

fn assert_no_panic(o: &Output) {
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

#[test]
fn a_fifo_in_dev_shm_is_refused_at_once() {
    let _clean = clean_lock();
    let name = util::unique("fifo");
    let file = ShmFile::new(&name);
    let made = std::process::Command::new("mkfifo")
        .arg(&file.0)
        .status()
        .unwrap();
    assert!(made.success());
    for obj in [format!("shm:/{name}"), format!("posix-shm:/{name}")] {
        let o = run_quick(&["rm", &obj]);
        assert_eq!(o.status.code(), Some(1), "{obj}: {}", stderr(&o));
        assert!(stderr(&o).contains("is not a"), "{}", stderr(&o));
        assert!(file.0.exists(), "{obj}: the FIFO was removed");
    }
    for args in [
        vec!["shm", "read", &format!("/{name}")],
        vec!["shm", "write", &format!("/{name}"), "x"],
        vec!["recv", &format!("shm:/{name}"), "--timeout", "1s"],
    ] {
        let o = run_quick(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    }
    assert!(run_quick(&["ls"]).status.success());
    assert!(run_quick(&["clean", "--dry-run"]).status.success());
    assert!(run_quick(&["clean"]).status.success());
    assert!(file.0.exists());
}

#[test]
fn a_symlink_in_dev_shm_is_not_followed() {
    let dir = util::TempDir::new();
    let target = dir.join("victim");
    std::fs::write(&target, b"untouched").unwrap();
    let name = util::unique("link");
    let link = ShmFile::new(&name);
    std::os::unix::fs::symlink(&target, &link.0).unwrap();
    let o = run_quick(&["shm", "write", &format!("/{name}"), "owned"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
    let o = run_quick(&["shm", "read", &format!("/{name}")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    // rm removes the link itself, never its target.
    let o = run_quick(&["rm", &format!("posix-shm:/{name}")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(link.0.symlink_metadata().is_ok());
    assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
}

#[test]
fn absurd_lengths_and_durations_are_errors_not_panics() {
    let name = format!("/{}", util::unique("len"));
    let _g = Remove(vec![format!("posix-shm:{name}")]);
    succeeded(run(&["shm", "create", &name, "--size", "4k"]));
    for (offset, len) in [
        ("0", "18446744073709551615"),
        ("0", "64g"),
        ("18446744073709551615", "2"),
        ("1", "4096"),
    ] {
        let o = run_quick(&["shm", "read", &name, "--offset", offset, "--len", len]);
        assert_eq!(o.status.code(), Some(1), "{offset}+{len}: {}", stderr(&o));
        assert!(stderr(&o).contains("past the end"), "{}", stderr(&o));
        assert_no_panic(&o);
    }
    // A large read is streamed whole.
    let o = run_quick(&["shm", "read", &name, "--offset", "96"]);
    assert_eq!(o.stdout.len(), 4000);

    let sem = format!("/{}", util::unique("dur"));
    let _g2 = Remove(vec![format!("posix-sem:{sem}")]);
    assert!(run(&["sem", "create", &sem]).status.success());
    for args in [
        vec!["sem", "wait", &sem, "--timeout", "9223372036854775807s"],
        vec![
            "recv",
            "mq:/ipcx-never",
            "--timeout",
            "9223372036854775807s",
        ],
        vec![
            "signal",
            "wait",
            "USR1",
            "--timeout",
            "18446744073709551615",
        ],
    ] {
        let o = run_quick(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("too long"), "{}", stderr(&o));
        assert_no_panic(&o);
    }
}

#[test]
fn errors_print_each_text_once() {
    // A library error that quotes its OS error, which is also its cause: printed once.
    let name = util::unique("dir");
    let dir = ShmFile::new(&name);
    std::fs::create_dir(&dir.0).unwrap();
    let o = run_quick(&["shm", "write", &format!("/{name}"), "x"]);
    std::fs::remove_dir(&dir.0).unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert_eq!(text.matches("Is a directory").count(), 1, "{text}");
}

#[test]
fn a_broken_ring_is_named_once() {
    let name = util::unique("ring");
    let file = ShmFile::new(&name);
    std::fs::write(&file.0, b"IPCXRING").unwrap();
    let o = run_quick(&["recv", &format!("shm:/{name}"), "--timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stderr(&o);
    assert!(text.contains(&format!("/{name}")), "{text}");
    assert!(
        !text.contains(&format!("ring shm:/{name}: ring /{name}")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("shm:/{name}: shm:/{name}")),
        "{text}"
    );
}

/// The file name of this user's owner record for `object`, when it has one.
fn record_exists(object: &str) -> bool {
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let dir = format!("/tmp/.ipcx-owners-{}", uid.unwrap());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let name = e.file_name().to_string_lossy().replace("%2F", "/");
        name == object
            || text
                .split_whitespace()
                .any(|f| f.replace("%2F", "/") == format!("object={object}"))
    })
}

#[test]
fn names_up_to_the_kernel_limit_work_and_are_recorded() {
    let tag = util::unique("n");
    let name = |len: usize| format!("/{tag}{}", "x".repeat(len - tag.len()));
    // Shared memory: up to 254 bytes after the '/'.
    for len in [253, 254] {
        let n = name(len);
        let obj = format!("posix-shm:{n}");
        let _g = Remove(vec![obj.clone()]);
        let o = run(&["shm", "create", &n, "--size", "64"]);
        assert!(o.status.success(), "{len}: {}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{len}: {}", stderr(&o));
        assert!(record_exists(&obj), "{len}: no owner record");
        let dry = stdout(&run(&["clean", "--dry-run"]));
        assert!(
            dry.contains(&format!("keep    {obj}: made to persist")),
            "{dry}"
        );
        assert!(run(&["shm", "rm", &n]).status.success());
        assert!(!record_exists(&obj), "{len}: record left behind");
    }
    let o = run(&["shm", "create", &name(255), "--size", "64"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("longer than 254"), "{}", stderr(&o));
    // Queues: up to 255.
    let q = format!("mq:{}", name(255));
    let _g = Remove(vec![q.clone()]);
    let o = run(&["send", "--create", &q, "m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run(&["rm", &q]).status.success());
    let o = run(&["send", "--create", &format!("mq:{}", name(256)), "m"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Semaphores: up to 251.
    let s = name(251);
    let _g = Remove(vec![format!("posix-sem:{s}")]);
    assert!(run(&["sem", "create", &s]).status.success());
    assert!(record_exists(&format!("posix-sem:{s}")));
    assert!(run(&["sem", "rm", &s]).status.success());
    assert!(!record_exists(&format!("posix-sem:{s}")));
    assert_eq!(run(&["sem", "create", &name(252)]).status.code(), Some(2));
}

#[test]
fn removing_by_decimal_key_forgets_the_record() {
    for (family, kind) in [("shm", "sysv-shm"), ("sem", "sysv-sem")] {
        let key = util::sysv_key();
        let decimal = format!("{kind}:{key}");
        let hex = format!("{kind}:0x{:08x}", key as u32);
        let _g = Remove(vec![hex.clone()]);
        let mut create = vec![family, "create", &decimal];
        if family == "shm" {
            create.extend(["--size", "64"]);
        }
        let o = run(&create);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(record_exists(&hex), "{hex}: no record");
        let o = run(&[family, "rm", &decimal]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!record_exists(&hex), "{hex}: record left behind");
    }
}

#[test]
fn a_record_that_cannot_be_written_is_reported() {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !root
        || std::process::Command::new("setpriv")
            .arg("--help")
            .output()
            .is_err()
    {
        eprintln!("not root or no setpriv: cannot run ipcx as a fresh uid; test skipped");
        return;
    }
    // A uid nobody else uses, whose registry path another user has taken (here: a file).
    let uid = 54000 + std::process::id() % 1000;
    let squatted = format!("/tmp/.ipcx-owners-{uid}");
    let _ = std::fs::remove_dir_all(&squatted);
    std::fs::write(&squatted, b"not a directory").unwrap();
    let name = util::unique("norecord");
    let file = ShmFile::new(&name);
    let o = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            env!("CARGO_BIN_EXE_ipcx"),
            "shm",
            "create",
            &format!("/{name}"),
            "--size",
            "64",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&squatted);
    drop(file);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot record the creator"),
        "no warning: {}",
        stderr(&o)
    );
}

/// Runs a Python snippet (ctypes on the C library: another program than ipcx); `false` when
/// python3 is missing.
fn python(code: &str) -> bool {
    match std::process::Command::new("python3")
        .args([
            "-c",
            &format!("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n{code}"),
        ])
        .status()
    {
        Ok(s) => {
            assert!(s.success(), "python3 failed: {code}");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn clean_keeps_an_object_that_reuses_a_recorded_name() {
    let _clean = clean_lock();
    let name = util::unique("reuse");
    let mq = format!("mq:/{name}");
    let queue = format!("/{name}");
    let dir = util::TempDir::new();
    let fifo_path = dir.join("reuse.fifo");
    let fifo = format!("fifo:{fifo_path}");
    let key = util::sysv_key();
    let sysv = format!("sysv-mq:0x{:08x}", key as u32);
    let _g = Remove(vec![mq.clone(), fifo.clone(), sysv.clone()]);
    // ipcx creates and records them, then is killed: its records stay.
    let mut receivers = vec![
        util::Bg::spawn(&["recv", &mq]),
        util::Bg::spawn(&["recv", &fifo]),
        util::Bg::spawn(&["recv", &sysv]),
    ];
    assert!(util::wait_for(|| {
        util::mq_exists(&queue)
            && std::path::Path::new(&fifo_path).exists()
            && stdout(&run(&["ls"])).contains(&sysv)
    }));
    for r in &mut receivers {
        let _ = r.0.as_mut().unwrap().kill();
        let _ = r.0.as_mut().unwrap().wait();
    }
    // Behind ipcx's back, the objects are removed and other programs make new ones under the
    // same names, holding data.
    let made = python(&format!(
        "libc.mq_unlink(b'{queue}')\n\
         fd = libc.mq_open(b'{queue}', os.O_RDWR | os.O_CREAT, 0o600, None)\n\
         assert fd >= 0 and libc.mq_send(fd, b'precious', 8, 0) == 0\n\
         q = libc.msgget({key}, 0)\n\
         assert libc.msgctl(q, 0, None) == 0\n\
         assert libc.msgget({key}, 0o1600) >= 0\n\
         os.unlink('{fifo_path}')\n\
         os.mkfifo('{fifo_path}', 0o600)"
    ));
    if !made {
        eprintln!("python3 is not available: name-reuse test skipped");
        return;
    }
    let o = run(&["clean", "--verbose"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for obj in [&mq, &fifo, &sysv] {
        assert!(
            out.contains(&format!(
                "keep    {obj}: the name now belongs to another object"
            )),
            "{obj}: {out}"
        );
    }
    assert_eq!(
        util::mq_messages(&queue),
        Some(1),
        "the other program's message is gone"
    );
    assert!(std::path::Path::new(&fifo_path).exists());
    assert!(stdout(&run(&["ls"])).contains(&sysv));
}

#[test]
fn a_record_without_identity_keeps_its_object() {
    let _clean = clean_lock();
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let registry = std::path::PathBuf::from(format!("/tmp/.ipcx-owners-{}", uid.unwrap()));
    // Make sure this user's registry exists (ipcx creates it with its first record).
    let dir = util::TempDir::new();
    let probe = format!("fifo:{}", dir.join("probe"));
    let _ = run(&["send", "--create", "--timeout", "1ms", &probe, "x"]);
    let _ = run(&["rm", &probe]);
    if !registry.is_dir() {
        eprintln!("no owner registry for this user: test skipped");
        return;
    }
    // A record as an older ipcx wrote it (pid and start time only), for a FIFO another
    // program made, by a creator that is dead.
    let path = dir.join("old.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let object = format!("fifo:{path}");
    let record = registry.join(object.replace('%', "%25").replace('/', "%2F"));
    std::fs::write(&record, b"999999999 1\n").unwrap();
    let o = run(&["clean", "--verbose"]);
    let _ = std::fs::remove_file(&record);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "keep    {object}: its creator, pid 999999999, died, but the record (from an older ipcx)"
        )),
        "{}",
        stdout(&o)
    );
    assert!(std::path::Path::new(&path).exists());
}

#[test]
fn a_foreign_sysv_segment_is_kept_unless_forced() {
    let _clean = clean_lock();
    let key = util::sysv_key();
    let name = format!("sysv-shm:0x{:08x}", key as u32);
    let _g = Remove(vec![name.clone()]);
    // Created by another program, which then exits: creator and last user dead, no attachments.
    if !python(&format!("assert libc.shmget({key}, 64, 0o1600) >= 0")) {
        eprintln!("python3 is not available: foreign segment test skipped");
        return;
    }
    let o = run(&["clean", "--verbose"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("keep    {name}: not created by ipcx")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&run(&["ls"])).contains(&name));
    let removed = stdout(&succeeded(run(&["clean", "--force-foreign"])));
    assert!(removed.contains(&format!("removed {name}")), "{removed}");
    assert!(!stdout(&run(&["ls"])).contains(&name));
}

#[test]
fn ls_without_dev_mqueue_says_so_once_and_lists_the_rest() {
    if !std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    }) {
        eprintln!("not root: cannot make a mount namespace without /dev/mqueue; test skipped");
        return;
    }
    let ns = std::process::Command::new("unshare")
        .args(["-m", "true"])
        .output();
    if !ns.is_ok_and(|o| o.status.success()) {
        eprintln!("unshare -m is not available or not permitted here: test skipped");
        return;
    }
    let shm = format!("/{}", util::unique("nomq"));
    let mq = format!("mq:/{}", util::unique("nomq"));
    let _g = Remove(vec![format!("posix-shm:{shm}"), mq.clone()]);
    succeeded(run(&["shm", "create", &shm, "--size", "64"]));
    assert!(run(&["send", "--create", &mq, "m"]).status.success());
    for cmd in ["ls", "clean --dry-run"] {
        let script = format!(
            "umount /dev/mqueue 2>/dev/null; \
             if grep -q ' /dev/mqueue ' /proc/self/mounts; then exit 99; fi; \
             exec {} {cmd}",
            env!("CARGO_BIN_EXE_ipcx")
        );
        let o = std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
            .unwrap();
        if o.status.code() == Some(99) {
            eprintln!("/dev/mqueue cannot be unmounted here: test skipped");
            return;
        }
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        let note = "POSIX queues not listed: /dev/mqueue is not mounted";
        assert_eq!(stderr(&o).matches(note).count(), 1, "{cmd}: {}", stderr(&o));
        let out = stdout(&o);
        if cmd == "ls" {
            assert!(out.contains(&format!("posix-shm:{shm}")), "{out}");
            // The queue ipcx recorded is still found, with mq_open.
            assert!(out.contains(&mq), "{out}");
        }
    }
}
