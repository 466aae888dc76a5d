//! Queues and semaphores against hostile and vanishing peers, through the real `ipcx` binary:
//! objects another user created beforehand are refused unless that user is trusted (and are
//! never removed), and a sender whose receiver is gone ends with an error instead of hanging.
mod util;

use std::io::Write;
use std::time::Duration;

use ipcx::trust::Trust;
use util::{
    Bg, NOBODY, is_root, run, run_as_nobody, run_with_stdin, spawn_piped, stderr, stdout, wait_for,
    wait_output,
};

/// Whether the POSIX queue exists (asked of the kernel, whoever owns it).
fn mq_exists(name: &str) -> bool {
    ipcx::mq::MessageQueue::options()
        .trust(Trust::any_user())
        .open(name)
        .is_ok()
}

/// Unlinks the POSIX queue when the test ends.
struct MqGuard(String);

impl Drop for MqGuard {
    fn drop(&mut self) {
        let _ = ipcx::mq::MessageQueue::unlink(&self.0);
    }
}

/// Removes the System V queue with this key when the test ends.
struct SysvMqGuard(i32);

impl Drop for SysvMqGuard {
    fn drop(&mut self) {
        if let Ok(q) = ipcx::sysv::msg::MessageQueue::options()
            .trust(Trust::any_user())
            .open(ipcx::sysv::Key(self.0))
        {
            let _ = q.remove();
        }
    }
}

/// Nobody creates the queue at `ep` holding one message, "forged"; false (skip the test) when
/// no child can run as nobody here.
fn forge_as_nobody(ep: &str) -> bool {
    let Some(out) = run_as_nobody(&["send", ep, "--create", "--mode", "666", "forged"]) else {
        return false;
    };
    assert!(out.status.success(), "nobody's send: {}", stderr(&out));
    true
}

/// `ipcx recv` of nobody's queue at `ep` is refused: exit 1, nothing printed, and the error
/// names the flag that would trust nobody. Returns the error.
fn recv_refused(ep: &str) -> String {
    let out = run(&["recv", ep, "--count", "1", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "", "printed a forged message");
    let err = stderr(&out);
    assert!(err.contains(&format!("--allow-uid {NOBODY}")), "{err}");
    err
}

/// `ipcx recv --allow-uid NOBODY` of nobody's queue at `ep` reads the forged message.
fn recv_trusting_nobody(ep: &str) {
    let uid = NOBODY.to_string();
    let out = run(&[
        "recv",
        ep,
        "--count",
        "1",
        "--timeout",
        "5s",
        "--allow-uid",
        &uid,
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "forged\n");
}

/// Pipes `lines` into `ipcx send EP` while its receiver goes away, and waits for the sender:
/// it ends with exit 1, "peer gone" and "was removed". Returns its error.
fn send_ends_when_the_queue_goes(ep: &str, lines: &str) -> String {
    let out = run_with_stdin(&["send", ep], lines.as_bytes());
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("peer gone"), "{err}");
    assert!(err.contains("was removed"), "{err}");
    err
}

#[test]
fn recv_refuses_a_queue_another_user_created_and_leaves_it() {
    if !is_root() {
        eprintln!("skipped: needs root to create the hostile queue as nobody");
        return;
    }
    let name = format!("/{}", util::unique("hostile"));
    let _g = MqGuard(name.clone());
    let ep = format!("mq:{name}");
    if !forge_as_nobody(&ep) {
        return;
    }

    let err = recv_refused(&ep);
    assert!(err.contains(&format!("uid {NOBODY}")), "{err}");
    assert!(mq_exists(&name), "the refused queue was removed");
    let out = run(&["send", &ep, "x"]);
    assert_eq!(out.status.code(), Some(1), "send into a foreign queue");

    recv_trusting_nobody(&ep);
    assert!(
        mq_exists(&name),
        "a receiver removed a queue it did not create"
    );
}

#[test]
fn recv_refuses_a_sysv_queue_another_user_created_and_leaves_it() {
    if !is_root() {
        eprintln!("skipped: needs root to create the hostile queue as nobody");
        return;
    }
    let key = util::sysv_key();
    let _g = SysvMqGuard(key);
    let ep = format!("sysv-mq:{key}");
    if !forge_as_nobody(&ep) {
        return;
    }

    recv_refused(&ep);

    recv_trusting_nobody(&ep);
    assert!(
        ipcx::sysv::msg::MessageQueue::options()
            .trust(Trust::any_user())
            .open(ipcx::sysv::Key(key))
            .is_ok(),
        "a receiver removed a queue it did not create"
    );
}

/// `seq 1 100 | ipcx send mq:/X` while `ipcx recv mq:/X --count 1` takes one and exits: the
/// sender must end (exit 1, "peer gone") instead of waiting forever on the unlinked queue.
#[test]
fn mq_send_ends_when_its_receiver_exits() {
    let msg_default: usize = std::fs::read_to_string("/proc/sys/fs/mqueue/msg_default")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10);
    if msg_default >= 99 {
        eprintln!("skipped: the default queue holds {msg_default} messages, all 100 would fit");
        return;
    }
    let name = format!("/{}", util::unique("gone"));
    let _g = MqGuard(name.clone());
    let ep = format!("mq:{name}");
    let recv = Bg::spawn(&["recv", &ep, "--count", "1"]);
    assert!(wait_for(|| mq_exists(&name)), "the receiver made no queue");
    let lines: String = (1..=100).map(|i| format!("{i}\n")).collect();
    let err = send_ends_when_the_queue_goes(&ep, &lines);
    assert!(err.contains("lost"), "{err}");
    let got = recv.wait(Duration::from_secs(10));
    assert_eq!(stdout(&got), "1\n");
}

/// The same for a System V queue that its receiver removes: the blocked msgsnd ends with
/// EIDRM, reported as "peer gone".
#[test]
fn sysv_send_ends_when_its_receiver_exits() {
    let msgmnb: usize = std::fs::read_to_string("/proc/sys/kernel/msgmnb")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    if msgmnb >= 100 * 1001 {
        eprintln!("skipped: a new queue holds {msgmnb} bytes, all 100 messages would fit");
        return;
    }
    let key = util::sysv_key();
    let _g = SysvMqGuard(key);
    let ep = format!("sysv-mq:{key}");
    let recv = Bg::spawn(&["recv", &ep, "--count", "1"]);
    assert!(
        wait_for(|| ipcx::sysv::msg::MessageQueue::open(ipcx::sysv::Key(key)).is_ok()),
        "the receiver made no queue"
    );
    // Enough lines to fill the queue's default 16 KiB several times over.
    let line = format!("{}\n", "x".repeat(1000));
    send_ends_when_the_queue_goes(&ep, &line.repeat(100));
    recv.wait(Duration::from_secs(10));
}

/// Key 0 is IPC_PRIVATE (a new object nobody else can find) and -1 would be 0xffffffff: both
/// are usage errors that say why, and nothing is created.
#[test]
fn sysv_key_zero_and_negative_keys_are_refused() {
    for args in [
        &["sem", "create", "sysv-sem:0"][..],
        &["sem", "create", "sysv-sem:0x0"],
        &["shm", "create", "sysv-shm:0", "--size", "64"],
        &["recv", "sysv-mq:0", "--timeout", "10ms"],
        &["send", "sysv-mq:0", "x"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("IPC_PRIVATE"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    for args in [
        &["sem", "create", "sysv-sem:-1"][..],
        &["sem", "get", "sysv-sem:-1"],
        &["recv", "sysv-mq:-1", "--timeout", "10ms"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("0xffffffff"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// A sender that never blocks still learns at the end that its messages went into a queue
/// whose receiver removed it.
#[test]
fn mq_send_reports_messages_stranded_in_a_removed_queue() {
    let name = format!("/{}", util::unique("strand"));
    let _g = MqGuard(name.clone());
    let q = ipcx::mq::MessageQueue::options()
        .capacity(8, 64)
        .create_new(true)
        .open(&name)
        .unwrap();
    let mut send = spawn_piped(&["send", &format!("mq:{name}")]);
    let mut stdin = send.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\n").unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while q.attributes().unwrap().current_messages < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the messages never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(q); // the receiver goes, removing its queue with both messages in it
    drop(stdin);
    let out = wait_output(send, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("peer gone") && err.contains("2 messages"),
        "{err}"
    );
}

/// Semaphores another user made are refused too (its owner could post or take them at will),
/// and left in place.
#[test]
fn sem_refuses_semaphores_another_user_created() {
    if !is_root() {
        eprintln!("skipped: needs root to create the hostile semaphores as nobody");
        return;
    }
    let posix = format!("/{}", util::unique("hsem"));
    let sysv = format!("sysv-sem:{}", util::sysv_key());
    struct Rm(Vec<String>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for o in &self.0 {
                let _ = run(&["sem", "rm", o]);
            }
        }
    }
    let _rm = Rm(vec![posix.clone(), sysv.clone()]);
    for obj in [&posix, &sysv] {
        let Some(out) = run_as_nobody(&["sem", "create", obj, "--mode", "666", "--value", "1"])
        else {
            return;
        };
        assert!(out.status.success(), "nobody's create: {}", stderr(&out));
        for args in [["sem", "get", obj.as_str()], ["sem", "post", obj.as_str()]] {
            let out = run(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("uid {NOBODY}")),
                "{}",
                stderr(&out)
            );
        }
        let out = run_as_nobody(&["sem", "get", obj]).unwrap();
        assert_eq!(
            stdout(&out).trim(),
            "1",
            "the semaphore changed: {}",
            stderr(&out)
        );
    }
}
