//! Fuzzes the `/proc` parsing behind `ipcx ls` and `ipcx clean`: the `/proc/sysvipc` tables,
//! `/proc/PID/stat` (process start times: a command name may hold anything, parentheses and
//! spaces included), `/proc/net/unix` (socket paths are chosen by any user) and the
//! `/dev/mqueue` file text, and the `/proc/PID/task/TID/syscall` and `/proc/PID/maps` text behind
//! `ipcx ls --waiters` (a mapped file's name is anyone's choice). Arbitrary bytes never panic,
//! and what parses is consistent.
#![no_main]

use ipcx::inventory::{
    fuzz_task_parsers, parse_mqueue_qsize, parse_proc_net_unix, parse_sysv, parse_table,
};
use ipcx::registry::parse_start_time;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in ["sysv-shm", "sysv-sem", "sysv-mq"] {
        for o in parse_sysv(kind, data) {
            assert_eq!(o.kind, kind);
            assert!(o.name.starts_with(kind));
            assert!(o.creator_pid.is_none_or(|p| p > 0));
            assert!(o.last_pid.is_none_or(|p| p > 0));
        }
    }
    if let Some(rows) = parse_table(data) {
        assert!(rows.len() <= data.iter().filter(|&&b| b == b'\n').count() + 1);
    }
    let _ = parse_start_time(data);
    for s in parse_proc_net_unix(data) {
        assert!(matches!(s.kind, "unix" | "unix-dgram" | "unix-seqpacket"));
    }
    let _ = parse_mqueue_qsize(data);
    fuzz_task_parsers(data);
});
