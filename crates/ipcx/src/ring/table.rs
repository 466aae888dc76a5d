//! The participant table: roles, what a work-queue participant holds, liveness, and how a
//! process claims a place, gives it up and reaps the places of dead processes.

use std::sync::atomic::Ordering;

use ipcx_ring::{CLAIMED, Cursor, FREE};

use crate::registry::process_start_time;

/// Participant roles (stored in `Cursor::role`).
pub(crate) const ROLE_PUBLISHER: u32 = 1;
pub(crate) const ROLE_SUBSCRIBER: u32 = 2;
pub(crate) const ROLE_PRODUCER: u32 = 3;
pub(crate) const ROLE_CONSUMER: u32 = 4;

/// Cursor state (process layer): a dead owner's cursor being reclaimed. Never claimed by a
/// joiner; a reaper that dies there leaves it to the next reaper.
pub(crate) const REAPING: u32 = 4;

/// `Cursor::holding` values (work queue): what the owner holds; `tail` says which slot.
pub(crate) const HOLD_NONE: u32 = 0;
/// A loaned (free, being filled) slot: `tail` is its index.
pub(crate) const HOLD_LOAN: u32 = 1;
/// A received message: `tail` is `slot | len << 32`.
pub(crate) const HOLD_MSG: u32 = 2;

/// Whether the process recorded in `c` still runs (same pid, same start time). A cursor whose
/// pid is not written yet counts as alive (it is being claimed right now).
pub(crate) fn cursor_alive(c: &Cursor) -> bool {
    let pid = c.pid.load(Ordering::Acquire);
    alive(pid, c.start_time.load(Ordering::Relaxed))
}

/// Whether process `pid` started at `start` still runs (pid 0: being claimed, alive).
pub(super) fn alive(pid: u32, start: u64) -> bool {
    if pid == 0 {
        return true;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    process_start_time(pid) == Some(start)
}

/// Claims a free cursor of the table (or `cursor` itself) for this process: CLAIMED,
/// with pid, start time and role. A dead owner's cursor is taken over.
pub(super) fn claim(cursor: &Cursor, role: u32) -> bool {
    let me = std::process::id();
    let start = process_start_time(me as i32).unwrap_or(0);
    let mut state = cursor.state.load(Ordering::Acquire);
    loop {
        if state != FREE && cursor_alive(cursor) {
            return false;
        }
        match cursor
            .state
            .compare_exchange(state, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(s) => state = s,
        }
    }
    cursor.pid.store(me, Ordering::Relaxed);
    cursor.start_time.store(start, Ordering::Relaxed);
    cursor.role.store(role, Ordering::Release);
    true
}

/// Claims `cursor` only if it is free (work queue: a dead owner's cursor must be reaped,
/// so that what it held is given back, before anyone reuses it).
pub(super) fn claim_free(cursor: &Cursor, role: u32) -> bool {
    if cursor
        .state
        .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    let me = std::process::id();
    cursor.start_time.store(
        process_start_time(me as i32).unwrap_or(0),
        Ordering::Relaxed,
    );
    cursor.pid.store(me, Ordering::Relaxed);
    cursor.role.store(role, Ordering::Release);
    true
}
