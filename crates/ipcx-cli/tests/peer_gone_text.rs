//! `ipcx send` with nobody on the other side names the endpoint once, in one line.
mod util;

use util::{TempDir, run, stderr};

/// Runs `ipcx send EP hi` and returns its stderr, asserting exit status 1.
fn send_alone(ep: &str) -> String {
    let out = run(&["send", ep, "hi"]);
    assert_eq!(out.status.code(), Some(1), "{ep}: {}", stderr(&out));
    stderr(&out)
}

#[test]
fn a_fifo_without_reader_is_named_once() {
    let dir = TempDir::new();
    let path = dir.join("alone.fifo");
    let _fifo = ipcx::fifo::Fifo::create(&path).unwrap();
    let ep = format!("fifo:{path}");
    assert_eq!(
        send_alone(&ep),
        format!("ipcx: peer gone: no reader on {ep}: start the receiver first\n")
    );
    assert_eq!(
        send_alone(&format!("fifo:{}", dir.join("missing.fifo"))),
        format!(
            "ipcx: no fifo:{0}: start `ipcx recv fifo:{0}` first, or pass --create\n",
            dir.join("missing.fifo")
        )
    );
}

#[test]
fn sockets_without_listener_are_named_once() {
    let dir = TempDir::new();
    for scheme in ["unix", "unix-dgram", "unix-seqpacket"] {
        let ep = format!("{scheme}:{}", dir.join("none.sock"));
        assert_eq!(
            send_alone(&ep),
            format!("ipcx: no listener at {ep}: start `ipcx recv` first\n")
        );
    }
    let ep = format!("unix:@{}", util::unique("nolisten"));
    assert_eq!(
        send_alone(&ep),
        format!("ipcx: no listener at {ep}: start `ipcx recv` first\n")
    );
}

#[test]
fn a_missing_queue_is_named_once() {
    let ep = format!("mq:/{}", util::unique("noq"));
    assert_eq!(
        send_alone(&ep),
        format!("ipcx: no queue {ep}: start a receiver first or pass --create\n")
    );
}
