//! The `--json` output of every command that prints records, between real processes: each
//! record's exact key set and the type of each value, against one table ([`SCHEMAS`]).
//! Streams (`recv`, `sub`, `signal wait`, `bridge`) print one object per line; snapshots (`ls`,
//! `ls --services`, `ls --waiters`, `deadlock`, `clean`) one document. Every line is valid JSON with no raw control
//! character, whatever the names and bytes behind it. (`bench --json FILE` writes a file; its
//! schema is checked in `tests/bench.rs`.)

mod util;

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use serde_json::Value;
use util::{
    Bg, Remove, ipcx, recv_in_background, run, run_with_stdin_when_ready, send_when_ready, stderr,
    stdout, succeeded, unique,
};

const WAIT: Duration = Duration::from_secs(30);

/// A JSON type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    /// An integer (signed or not).
    Int,
    Bool,
    Arr,
    Obj,
}

fn type_of(v: &Value) -> Option<Ty> {
    match v {
        Value::String(_) => Some(Ty::Str),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Ty::Int),
        Value::Bool(_) => Some(Ty::Bool),
        Value::Array(_) => Some(Ty::Arr),
        Value::Object(_) => Some(Ty::Obj),
        _ => None,
    }
}

/// The keys a record may have, each with its type. Which of them a record has depends on what
/// the mechanism gives (a queue has no sender credentials): each test says exactly which.
struct Schema {
    record: &'static str,
    keys: &'static [(&'static str, Ty)],
}

use Ty::{Arr, Bool, Int, Obj, Str};

/// Every record `--json` prints. The same meaning has the same key everywhere: `pid`, `uid`,
/// `gid`, `priority`, `type`, `text`/`base64` (a payload), `name`, `kind`, `alive`.
const SCHEMAS: &[Schema] = &[
    Schema {
        record: "recv",
        keys: &[
            ("priority", Int),
            ("type", Int),
            ("pid", Int),
            ("uid", Int),
            ("gid", Int),
            ("peer", Str),
            ("text", Str),
            ("base64", Str),
        ],
    },
    Schema {
        record: "sub",
        keys: &[
            ("topic", Str),
            ("topic_base64", Str),
            ("missed", Int),
            ("text", Str),
            ("base64", Str),
        ],
    },
    Schema {
        record: "signal wait",
        keys: &[("signal", Str), ("pid", Int), ("uid", Int), ("value", Int)],
    },
    Schema {
        record: "bridge ready",
        keys: &[("event", Str), ("from", Str), ("to", Str)],
    },
    Schema {
        record: "bridge end",
        keys: &[
            ("event", Str),
            ("from", Str),
            ("to", Str),
            ("reason", Str),
            ("forwarded", Int),
            ("bytes", Int),
            ("held", Int),
        ],
    },
    Schema {
        record: "ls",
        keys: &[("objects", Arr), ("notes", Arr)],
    },
    Schema {
        record: "ls object",
        keys: &[
            ("kind", Str),
            ("name", Str),
            ("id", Int),
            ("uid", Int),
            ("user", Str),
            ("mode", Str),
            ("size", Int),
            ("messages", Int),
            ("nsems", Int),
            ("attachments", Int),
            ("creator_pid", Int),
            ("creator_alive", Bool),
            ("last_pid", Int),
            ("last_alive", Bool),
            ("holders", Arr),
            ("listening", Bool),
            ("participants", Arr),
        ],
    },
    Schema {
        record: "ls participant",
        keys: &[("role", Str), ("pid", Int), ("alive", Bool)],
    },
    Schema {
        record: "ls --services",
        keys: &[
            ("name", Str),
            ("kind", Str),
            ("endpoint", Str),
            ("pid", Int),
            ("alive", Bool),
            ("methods", Arr),
        ],
    },
    Schema {
        record: "ls --services method",
        keys: &[("name", Str), ("codecs", Arr)],
    },
    Schema {
        record: "ls --waiters",
        keys: &[("objects", Arr), ("notes", Arr)],
    },
    Schema {
        record: "ls --waiters object",
        keys: &[
            ("kind", Str),
            ("name", Str),
            ("state", Str),
            ("holder", Obj),
            ("value", Int),
            ("waiters", Arr),
            ("kernel_waiters", Int),
            ("idle_secs", Int),
        ],
    },
    Schema {
        record: "ls --waiters holder",
        keys: &[
            ("pid", Int),
            ("tid", Int),
            ("alive", Bool),
            ("inferred", Bool),
        ],
    },
    Schema {
        record: "ls --waiters waiter",
        keys: &[("pid", Int), ("tid", Int), ("op", Str)],
    },
    Schema {
        record: "deadlock",
        keys: &[("cycles", Arr), ("waiting", Int), ("notes", Arr)],
    },
    Schema {
        record: "deadlock cycle",
        keys: &[("text", Str), ("steps", Arr)],
    },
    Schema {
        record: "deadlock step",
        keys: &[
            ("pid", Int),
            ("tid", Int),
            ("holds", Str),
            ("inferred", Bool),
            ("waits_for", Str),
        ],
    },
    Schema {
        record: "clean",
        keys: &[
            ("dry_run", Bool),
            ("objects", Arr),
            ("removed", Int),
            ("kept", Int),
            ("failed", Int),
        ],
    },
    Schema {
        record: "clean object",
        keys: &[("name", Str), ("action", Str), ("reason", Str)],
    },
];

/// Checks `v` against the schema of `record` (every key known, every value of its type) and
/// returns its keys.
fn check(record: &str, v: &Value) -> BTreeSet<String> {
    let schema = SCHEMAS
        .iter()
        .find(|s| s.record == record)
        .unwrap_or_else(|| panic!("no schema for {record}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{record}: not an object: {v}"));
    for (k, val) in obj {
        let (_, ty) = schema
            .keys
            .iter()
            .find(|(name, _)| name == k)
            .unwrap_or_else(|| panic!("{record}: unexpected key {k:?} in {v}"));
        assert_eq!(type_of(val), Some(*ty), "{record}: {k} in {v}");
    }
    obj.keys().cloned().collect()
}

/// Checks `v` against `record` and that it has exactly `keys`.
fn check_exact(record: &str, v: &Value, keys: &[&str]) {
    let got = check(record, v);
    let want: BTreeSet<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(got, want, "{record}: {v}");
}

/// Parses one printed record; it must be valid JSON with no raw control character and no
/// invisible direction override (the output may go to a terminal).
fn parse(text: &str) -> Value {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n' && c != ' '
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "raw control or invisible character in {text:?}"
    );
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

/// The lines of a stream, each parsed.
fn lines(out: &std::process::Output) -> Vec<Value> {
    stdout(out).lines().map(parse).collect()
}

fn my_uid() -> u32 {
    ipcx::trust::euid()
}

#[test]
fn recv_records() {
    let mq = format!("mq:/{}", unique("js"));
    let _rm = Remove(vec![mq.clone()]);
    let hostile = "a\"b\\c\u{1b}[2J\u{7}\u{9b}\u{202e}z";
    let rx = Bg::spawn(&["recv", &mq, "--json", "--count", "2", "--timeout", "20s"]);
    succeeded(send_when_ready(&["send", &mq, "--priority", "3", hostile]));
    succeeded(run_with_stdin_when_ready(&["send", &mq], b"\xff\xfe\n"));
    let got = lines(&rx.wait(WAIT));
    assert_eq!(got.len(), 2, "{got:?}");
    check_exact("recv", &got[0], &["priority", "text"]);
    assert_eq!(got[0]["text"], hostile);
    assert_eq!(got[0]["priority"], 3);
    check_exact("recv", &got[1], &["priority", "base64"]);
    assert_eq!(got[1]["base64"], "//4=");

    let sysv = format!("sysv-mq:{}", util::sysv_key());
    let _rm = Remove(vec![sysv.clone()]);
    let rx = recv_in_background(&sysv, "1", &["--json"]);
    succeeded(send_when_ready(&["send", &sysv, "--type", "5", "typed"]));
    let got = lines(&rx.wait(WAIT));
    check_exact("recv", &got[0], &["type", "text"]);
    assert_eq!(got[0]["type"], 5);

    // A socket gives the sender's credentials, checked by the kernel.
    let sock = format!("unix-seqpacket:@{}", unique("js"));
    let rx = recv_in_background(&sock, "1", &["--json"]);
    succeeded(send_when_ready(&["send", &sock, "cred"]));
    let got = lines(&rx.wait(WAIT));
    check_exact("recv", &got[0], &["pid", "uid", "gid", "text"]);
    assert_eq!(got[0]["uid"], my_uid());
}

#[test]
fn sub_records() {
    let ep = format!("unix:@{}", unique("js-sub"));
    let sub = Bg::spawn(&["sub", &ep, "--json", "--count", "2", "--timeout", "20s"]);
    let p = run_with_stdin_when_ready(&["pub", &ep, "--topic", "t.1"], b"plain\n\xff\n");
    assert!(p.status.success(), "{}", stderr(&p));
    let got = lines(&sub.wait(WAIT));
    assert_eq!(got.len(), 2, "{got:?}");
    check_exact("sub", &got[0], &["topic", "text"]);
    assert_eq!(got[0]["topic"], "t.1");
    check_exact("sub", &got[1], &["topic", "base64"]);
    assert_eq!(got[1]["base64"], "/w==");
}

/// Whether process `pid` blocks signal number `signo` (its `SigBlk` mask).
fn blocks(pid: u32, signo: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << (signo - 1)) != 0)
}

#[test]
fn signal_wait_records() {
    let rtmin = u32::try_from(libc::SIGRTMIN()).unwrap();
    let usr1 = libc::SIGUSR1 as u32;
    let waiter = Bg::spawn(&[
        "signal",
        "wait",
        "RTMIN+2",
        "USR1",
        "--json",
        "--count",
        "2",
        "--timeout",
        "20s",
    ]);
    let pid = waiter.pid();
    // Sent before the waiter blocks them, the signals would kill it.
    assert!(util::wait_for(
        || blocks(pid, rtmin + 2) && blocks(pid, usr1)
    ));
    let pid = pid.to_string();
    let sender = ipcx()
        .args(["signal", "send", &pid, "RTMIN+2", "--value", "-42"])
        .spawn()
        .unwrap();
    let sender_pid = sender.id();
    assert!(util::wait_output(sender, WAIT).status.success());
    succeeded(run(&["signal", "send", &pid, "SIGUSR1"]));
    let got = lines(&waiter.wait(WAIT));
    assert_eq!(got.len(), 2, "{got:?}");
    check_exact("signal wait", &got[0], &["signal", "pid", "uid", "value"]);
    assert_eq!(got[0]["signal"], "RTMIN+2");
    assert_eq!(got[0]["pid"], sender_pid);
    assert_eq!(got[0]["uid"], my_uid());
    assert_eq!(got[0]["value"], -42);
    // A signal sent without a value has none.
    check_exact("signal wait", &got[1], &["signal", "pid", "uid"]);
    assert_eq!(got[1]["signal"], "USR1");
}

#[test]
fn bridge_records() {
    let from = format!("unix-dgram:@{}", unique("js-in"));
    let to = format!("unix-seqpacket:@{}", unique("js-out"));
    let rx = recv_in_background(&to, "1", &["--json"]);
    let mut bridge = Bg::spawn(&[
        "bridge",
        &from,
        &to,
        "--json",
        "--count",
        "1",
        "--timeout",
        "20s",
    ]);
    let ready = parse(&bridge.read_stdout_line());
    check_exact("bridge ready", &ready, &["event", "from", "to"]);
    assert_eq!(ready["event"], "ready");
    succeeded(send_when_ready(&["send", &from, "over"]));
    let got = lines(&rx.wait(WAIT));
    assert_eq!(got[0]["text"], "over");
    let end = lines(&bridge.wait(WAIT));
    check_exact(
        "bridge end",
        &end[0],
        &[
            "event",
            "from",
            "to",
            "reason",
            "forwarded",
            "bytes",
            "held",
        ],
    );
    assert_eq!(end[0]["forwarded"], 1);
}

/// The objects of `ls --json`, each checked; the document is checked too.
fn ls_objects() -> Vec<Value> {
    let out = succeeded(run(&["ls", "--json"]));
    let doc = parse(&stdout(&out));
    check_exact("ls", &doc, &["objects", "notes"]);
    let objects = doc["objects"].as_array().unwrap().clone();
    for o in &objects {
        let keys = check("ls object", o);
        for k in ["kind", "name", "uid", "mode", "holders"] {
            assert!(keys.contains(k), "{k} missing: {o}");
        }
        for p in o["participants"].as_array().into_iter().flatten() {
            check_exact("ls participant", p, &["role", "pid", "alive"]);
        }
    }
    objects
}

#[test]
fn ls_records_with_hostile_names() {
    // Anyone can make these: files in /dev/shm are POSIX shared memory objects.
    let hostile = format!("{}-\u{1b}]0;x\u{7}\n\"\u{9b}\u{202e}", unique("js"));
    let mut raw = unique("js-raw").into_bytes();
    raw.extend_from_slice(b"-\xff\xfe");
    let paths = [
        std::path::PathBuf::from(format!("/dev/shm/{hostile}")),
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(
            &[b"/dev/shm/".as_slice(), &raw].concat(),
        )),
    ];
    struct Files<'a>(&'a [std::path::PathBuf]);
    impl Drop for Files<'_> {
        fn drop(&mut self) {
            for p in self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _files = Files(&paths);
    for p in &paths {
        std::fs::write(p, b"x").unwrap();
    }
    let named = format!("/{}", unique("js-shm"));
    let _rm = Remove(vec![format!("posix-shm:{named}")]);
    succeeded(run(&["shm", "create", &named, "--size", "4096"]));

    let objects = ls_objects();
    let find = |name: &str| {
        objects
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name:?} not listed"))
            .clone()
    };
    let o = find(&format!("posix-shm:/{hostile}"));
    assert_eq!(o["kind"], "posix-shm");
    let o = find(&format!("posix-shm:{named}"));
    assert_eq!(o["size"], 4096);
    assert_eq!(o["uid"], my_uid());
    assert_eq!(o["mode"], "0600");
    let raw_prefix = String::from_utf8_lossy(&raw[..raw.len() - 3]).into_owned();
    assert!(
        objects
            .iter()
            .any(|o| o["name"].as_str().is_some_and(|n| n.contains(&raw_prefix))),
        "a name that is not UTF-8 is listed too"
    );
}

#[test]
fn ls_services_records() {
    let ep = format!("unix:@{}", unique("js-svc"));
    // A publisher lists itself while it waits for its first subscriber.
    let publisher = Bg::spawn(&["pub", &ep, "--timeout", "20s", "hello"]);
    let pid = publisher.pid();
    let mut found = None;
    let listed = util::wait_for(|| {
        let out = run(&["ls", "--services", "--json"]);
        let doc = parse(&stdout(&out));
        found = doc
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["pid"] == pid)
            .cloned();
        found.is_some()
    });
    assert!(listed, "the publisher {pid} is not listed");
    let s = found.unwrap();
    check_exact(
        "ls --services",
        &s,
        &["name", "kind", "endpoint", "pid", "alive", "methods"],
    );
    assert_eq!(s["kind"], "pubsub");
    assert_eq!(s["alive"], true);
    assert_eq!(s["endpoint"], ep);
    for m in s["methods"].as_array().unwrap() {
        check_exact("ls --services method", m, &["name", "codecs"]);
    }
}

#[test]
fn waiters_and_deadlock_records() {
    // A waiter on a POSIX semaphore and one on a System V semaphore.
    let posix = format!("posix-sem:/{}", unique("js-psem"));
    let sysv = format!("sysv-sem:{:#x}", util::sysv_key());
    let _rm = Remove(vec![posix.clone(), sysv.clone()]);
    for sem in [&posix, &sysv] {
        succeeded(run(&["sem", "create", sem, "--value", "0"]));
    }
    let _waiters = [&posix, &sysv].map(|sem| Bg::spawn(&["sem", "wait", sem, "--timeout", "20s"]));
    let mut doc = Value::Null;
    let seen = util::wait_for(|| {
        doc = parse(&stdout(&succeeded(run(&["ls", "--waiters", "--json"]))));
        doc["objects"].as_array().is_some_and(|objects| {
            objects
                .iter()
                .filter(|o| o["waiters"].as_array().is_some_and(|w| !w.is_empty()))
                .count()
                >= 2
        })
    });
    assert!(seen, "the two waiters are not listed: {doc}");
    check_exact("ls --waiters", &doc, &["objects", "notes"]);
    for o in doc["objects"].as_array().unwrap() {
        let keys = check("ls --waiters object", o);
        for k in ["kind", "name", "state", "waiters"] {
            assert!(keys.contains(k), "{k} missing: {o}");
        }
        if !o["holder"].is_null() {
            let keys = check("ls --waiters holder", &o["holder"]);
            for k in ["pid", "alive", "inferred"] {
                assert!(keys.contains(k), "{k} missing: {o}");
            }
        }
        for w in o["waiters"].as_array().unwrap() {
            check_exact("ls --waiters waiter", w, &["pid", "tid", "op"]);
        }
    }
    let out = run(&["deadlock", "--json"]);
    let doc = parse(&stdout(&out));
    check_exact("deadlock", &doc, &["cycles", "waiting", "notes"]);
    assert!(doc["waiting"].as_u64().unwrap() >= 2, "{doc}");
    let cycles = doc["cycles"].as_array().unwrap();
    assert_eq!(
        out.status.code(),
        Some(if cycles.is_empty() { 0 } else { 1 })
    );
    for c in cycles {
        check_exact("deadlock cycle", c, &["text", "steps"]);
        for st in c["steps"].as_array().unwrap() {
            check_exact(
                "deadlock step",
                st,
                &["pid", "tid", "holds", "inferred", "waits_for"],
            );
        }
    }
}

#[test]
fn clean_records() {
    // A receiver killed with SIGKILL leaves its queue behind: clean would remove it.
    let name = unique("js-clean");
    let mq = format!("mq:/{name}");
    let _rm = Remove(vec![mq.clone()]);
    let rx = recv_in_background(&mq, "1", &[]);
    // The queue exists a moment before its owner record does: wait until clean sees the
    // receiver as its live creator, so that the kill below leaves a provably stale queue.
    let judged_alive = || {
        let doc = parse(&stdout(&run(&["clean", "--dry-run", "--json"])));
        doc["objects"]
            .as_array()
            .is_some_and(|v| v.iter().any(|o| o["name"] == mq && o["action"] == "keep"))
    };
    assert!(util::wait_for(judged_alive), "{mq}: never judged live");
    drop(rx); // SIGKILL
    let out = run(&["clean", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = parse(&stdout(&out));
    check_exact(
        "clean",
        &doc,
        &["dry_run", "objects", "removed", "kept", "failed"],
    );
    assert_eq!(doc["dry_run"], true);
    let objects = doc["objects"].as_array().unwrap();
    for o in objects {
        check_exact("clean object", o, &["name", "action", "reason"]);
        assert!(o["action"] == "remove" || o["action"] == "keep", "{o}");
    }
    let ours = objects
        .iter()
        .find(|o| o["name"] == mq)
        .unwrap_or_else(|| panic!("{mq} not judged: {doc}"));
    assert_eq!(ours["action"], "remove", "{ours}");
    assert!(
        util::mq_exists(&format!("/{name}")),
        "a dry run removes nothing"
    );
}
