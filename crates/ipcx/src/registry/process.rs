//! Whether a recorded process is still the one that created an object: its start time.

use std::fs;

/// A process's start time in clock ticks since boot (`/proc/PID/stat` field 22), or `None`
/// when no such process exists.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// The start time in a `/proc/PID/stat` text (`None` for a zombie, a dead process or text that
/// does not parse). Exposed for fuzzing; [`process_start_time`] uses it.
#[doc(hidden)]
pub fn parse_start_time(stat: &[u8]) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain anything, spaces and
    // parentheses included: skip past its last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    // rest starts at field 3 (state); the start time is field 22.
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: i32) -> bool {
    process_start_time(pid).is_some()
}
