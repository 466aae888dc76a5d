//! Looking at a named ring without joining it (`ipcx ls`, `ipcx clean`).

use ipcx_ring::{Cursor, FREE};

use super::RingError;
use super::format::{MAGIC, check_size, read_header, u32_at, u64_at};
use super::table::{ROLE_CONSUMER, ROLE_PRODUCER, ROLE_PUBLISHER, ROLE_SUBSCRIBER, alive};
use crate::name::PosixName;
use crate::sys::shm::{self, OpenMode};

/// One participant of a ring, as `ipcx ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Participant {
    /// `publisher`, `subscriber`, `producer` or `consumer`.
    pub role: &'static str,
    /// Process id.
    pub pid: i32,
    /// Whether that process still runs (pid and start time match).
    pub alive: bool,
}

/// Reads the participants of the ring `name`, for `ipcx ls` and `ipcx clean`.
///
/// Read-only and non-blocking: the header and the participant table are read with `pread`
/// (nothing is mapped, no page of a sparse object is allocated), a ring whose creator has not
/// finished initialising it is [`RingError::NotInitialised`] at once, and a file whose size is not
/// the one its header gives is [`RingError::Corrupt`]. Every value read is checked.
pub fn participants(name: &str) -> Result<Vec<Participant>, RingError> {
    use std::mem::offset_of;
    let name = PosixName::new(name)?;
    let io = |e| RingError::from_io(&name, e);
    let fd = shm::shm_open(&name, OpenMode::Open, false, 0).map_err(io)?;
    let st = shm::fstat(&fd).map_err(io)?;
    if !st.regular {
        return Err(RingError::NotARing {
            name: name.to_string(),
            found: 0,
        });
    }
    let (_, participants, layout) = read_header(&fd, &name)?.layout(&name)?;
    check_size(&name, st.size, &layout)?;
    // The writer's cursor, then the table: `participants` cursors.
    let line = size_of::<Cursor>();
    let mut cursors = vec![0u8; line * (1 + participants as usize)];
    let (writer, table) = cursors.split_at_mut(line);
    let got = shm::pread(&fd, writer, layout.writer_off as u64).map_err(io)?
        + shm::pread(&fd, table, layout.table_off as u64).map_err(io)?;
    if got < cursors.len() {
        return Err(RingError::Corrupt {
            name: name.to_string(),
            what: "the participant table is cut short",
        });
    }
    let mut out = Vec::new();
    for c in cursors.chunks_exact(line) {
        if u32_at(c, offset_of!(Cursor, state)) == FREE {
            continue;
        }
        let role = match u32_at(c, offset_of!(Cursor, role)) {
            ROLE_PUBLISHER => "publisher",
            ROLE_SUBSCRIBER => "subscriber",
            ROLE_PRODUCER => "producer",
            ROLE_CONSUMER => "consumer",
            _ => "unknown",
        };
        let pid = u32_at(c, offset_of!(Cursor, pid));
        out.push(Participant {
            role,
            pid: pid as i32,
            alive: alive(pid, u64_at(c, offset_of!(Cursor, start_time))),
        });
    }
    Ok(out)
}

/// Whether the shared-memory object `name` starts with a ring header (without opening it for
/// writing).
///
/// Never blocks and never follows a symlink: the object is opened with `O_NONBLOCK` and
/// `O_NOFOLLOW`, and only a regular file is read.
pub fn is_ring(name: &str) -> bool {
    let Ok(name) = PosixName::new(name) else {
        return false;
    };
    let Ok(fd) = shm::shm_open(&name, OpenMode::Open, false, 0) else {
        return false;
    };
    let mut magic = [0u8; 8];
    shm::fstat(&fd).is_ok_and(|st| st.regular)
        && shm::pread(&fd, &mut magic, 0).is_ok_and(|n| n == 8)
        && u64::from_le_bytes(magic) == MAGIC
}
