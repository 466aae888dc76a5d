//! What `/proc` says about a process: shared by these tests and the CLI's.

use std::fmt::Display;

/// A counter of /proc/PID/io (`rchar`, `wchar`).
pub fn io_counter(pid: impl Display, name: &str) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap()
        .parse()
        .unwrap()
}
