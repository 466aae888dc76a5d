//! Threads blocked in the kernel on an IPC object, as `/proc` tells: the system call each thread
//! sleeps in (`/proc/PID/task/TID/syscall`: its number and arguments), the arguments it passed
//! in memory (`/proc/PID/mem`: the `sembuf` array of `semop`), the file a futex address lies in
//! (`/proc/PID/maps`) and the object an fd refers to (`/proc/PID/fd`).
//!
//! Reading `syscall` and `mem` of a process needs the permission to trace it (the same user,
//! without a Yama restriction, or root); the threads that cannot be read are counted, not
//! guessed at.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};

/// What a blocked thread waits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    /// A futex wait (or priority-inheritance lock) on this address.
    Futex { uaddr: u64 },
    /// `semop`/`semtimedop` on this set; the operations when they could be read.
    Semop {
        semid: i32,
        ops: Option<Vec<(u16, i16)>>,
    },
    /// `mq_timedreceive` (`send` false) or `mq_timedsend` on this descriptor.
    Mq { fd: i32, send: bool },
}

/// One blocked thread.
#[derive(Debug, Clone)]
pub(super) struct Blocked {
    pub(super) pid: i32,
    pub(super) tid: i32,
    pub(super) call: Call,
}

/// Every blocked thread that could be read, and how many could not.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    pub(super) blocked: Vec<Blocked>,
    /// Threads whose `syscall` file could not be read (other users' processes).
    pub(super) unreadable: usize,
}

/// The largest `semop` operation array read from another process.
const MAX_SEMOPS: usize = 64;

impl Tasks {
    pub(super) fn scan() -> Tasks {
        let mut t = Tasks::default();
        let Ok(procs) = fs::read_dir("/proc") else {
            return t;
        };
        let me = std::process::id() as i32;
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(tasks) = fs::read_dir(p.path().join("task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let Ok(tid) = task.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if pid == me {
                    continue;
                }
                let Ok(text) = fs::read_to_string(task.path().join("syscall")) else {
                    // Gone meanwhile, or not ours to trace.
                    if task.path().exists() {
                        t.unreadable += 1;
                    }
                    continue;
                };
                if let Some(call) = parse_syscall(&text, |addr, n| read_semops(pid, addr, n)) {
                    t.blocked.push(Blocked { pid, tid, call });
                }
            }
        }
        t
    }
}

/// Parses a `/proc/PID/task/TID/syscall` line ("NR ARG0 ... ARG5 SP PC", hex arguments;
/// "running" or "-1 SP PC" outside a system call) into the IPC wait it shows, if any.
/// `semops` reads a waiter's `sembuf` array (address, count).
pub(super) fn parse_syscall(
    text: &str,
    semops: impl FnOnce(u64, usize) -> Option<Vec<(u16, i16)>>,
) -> Option<Call> {
    let mut f = text.split_whitespace();
    let nr: i64 = f.next()?.parse().ok()?;
    let args: Vec<u64> = f
        .take(6)
        .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if args.len() < 6 {
        return None;
    }
    let fd = || i32::try_from(args[0]).ok();
    if nr == libc::SYS_futex {
        // The command, without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
        let cmd = args[1] & 0x7f;
        const WAITS: [u64; 5] = [
            0,  // FUTEX_WAIT
            6,  // FUTEX_LOCK_PI
            9,  // FUTEX_WAIT_BITSET
            11, // FUTEX_WAIT_REQUEUE_PI
            13, // FUTEX_LOCK_PI2
        ];
        return WAITS
            .contains(&cmd)
            .then_some(Call::Futex { uaddr: args[0] });
    }
    if nr == libc::SYS_semop || nr == libc::SYS_semtimedop {
        let semid = i32::try_from(args[0]).ok()?;
        let n = usize::try_from(args[2]).ok()?;
        let ops = (n > 0 && n <= MAX_SEMOPS)
            .then(|| semops(args[1], n))
            .flatten();
        return Some(Call::Semop { semid, ops });
    }
    if nr == libc::SYS_mq_timedreceive || nr == libc::SYS_mq_timedsend {
        return Some(Call::Mq {
            fd: fd()?,
            send: nr == libc::SYS_mq_timedsend,
        });
    }
    None
}

/// The `sembuf` array (`sem_num`, `sem_op`) a waiter passed to `semop`, read from its memory.
fn read_semops(pid: i32, addr: u64, n: usize) -> Option<Vec<(u16, i16)>> {
    // struct sembuf { unsigned short sem_num; short sem_op; short sem_flg; }
    let mut buf = vec![0u8; n * 6];
    let mem = fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    mem.read_exact_at(&mut buf, addr).ok()?;
    Some(
        buf.chunks_exact(6)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    i16::from_ne_bytes([c[2], c[3]]),
                )
            })
            .collect(),
    )
}

/// Where a futex address of process `pid` lies: the file's device (major, minor), inode and
/// the offset in it, for a file under `/dev/shm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ShmSpot {
    pub(super) dev: (u32, u32),
    pub(super) ino: u64,
    pub(super) offset: u64,
}

/// The `/proc/PID/maps` of each process looked at, read once.
#[derive(Default)]
pub(super) struct Maps(HashMap<i32, Option<String>>);

impl Maps {
    pub(super) fn spot(&mut self, pid: i32, addr: u64) -> Option<ShmSpot> {
        let text = self
            .0
            .entry(pid)
            .or_insert_with(|| fs::read_to_string(format!("/proc/{pid}/maps")).ok());
        find_spot(text.as_deref()?, addr)
    }
}

/// Finds `addr` in the text of a `/proc/PID/maps` file: the `/dev/shm` file mapped there.
pub(super) fn find_spot(maps: &str, addr: u64) -> Option<ShmSpot> {
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (range, _perms, off, dev, ino) =
            (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let path = f.collect::<Vec<_>>().join(" ");
        let (lo, hi) = range.split_once('-')?;
        let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) else {
            continue;
        };
        if addr < lo || addr >= hi {
            continue;
        }
        if !path.starts_with("/dev/shm/") {
            return None;
        }
        let off = u64::from_str_radix(off, 16).ok()?;
        let (major, minor) = dev.split_once(':')?;
        return Some(ShmSpot {
            dev: (
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            ),
            ino: ino.parse().ok()?,
            offset: off.checked_add(addr - lo)?,
        });
    }
    None
}

/// Runs the parsers of this module on arbitrary text: a `syscall` line and a `maps` file (the
/// address looked up taken from the text's first 8 bytes). Exposed for fuzzing.
#[doc(hidden)]
pub fn fuzz_task_parsers(text: &[u8]) {
    let s = String::from_utf8_lossy(text);
    let _ = parse_syscall(&s, |_, n| Some(vec![(0, -1); n]));
    let addr = text
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes);
    if find_spot(&s, addr).is_some() {
        assert!(s.contains("/dev/shm/"), "only /dev/shm mappings are found");
    }
}

/// The device and inode of the file behind descriptor `fd` of `pid`.
pub(super) fn fd_identity(pid: i32, fd: i32) -> Option<(u64, u64)> {
    let m = fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
    Some((m.dev(), m.ino()))
}

/// The name an fd's link shows (for a POSIX queue: `/NAME`).
pub(super) fn fd_link(pid: i32, fd: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The process a thread belongs to (`Tgid` in `/proc/TID/status`), if it still runs.
pub(super) fn tgid(tid: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_lines() {
        let futex = format!(
            "{} 0x7f0000001080 0x80 0x0 0x0 0x0 0x0 0x7ffd 0x7f00",
            libc::SYS_futex
        );
        assert_eq!(
            parse_syscall(&futex, |_, _| None),
            Some(Call::Futex {
                uaddr: 0x7f00_0000_1080
            })
        );
        let wake = format!(
            "{} 0x7f0000001080 0x81 0x1 0x0 0x0 0x0 0x1 0x2",
            libc::SYS_futex
        );
        assert_eq!(parse_syscall(&wake, |_, _| None), None);
        let semop = format!(
            "{} 0x5 0x1000 0x1 0x0 0x0 0x0 0x1 0x2",
            libc::SYS_semtimedop
        );
        assert_eq!(
            parse_syscall(&semop, |a, n| (a == 0x1000 && n == 1)
                .then(|| vec![(1, -1)])),
            Some(Call::Semop {
                semid: 5,
                ops: Some(vec![(1, -1)])
            })
        );
        for idle in ["running", "-1 0x7ffd 0x7f00", "", "230 0x0", "x y z"] {
            assert_eq!(parse_syscall(idle, |_, _| None), None, "{idle:?}");
        }
        let huge = format!(
            "{} 0x5 0x1000 0xffffffff 0x0 0x0 0x0 0x1 0x2",
            libc::SYS_semop
        );
        assert_eq!(
            parse_syscall(&huge, |_, _| panic!("not read")),
            Some(Call::Semop {
                semid: 5,
                ops: None
            })
        );
    }

    #[test]
    fn maps_lines() {
        let maps = "55d0-55e0 r-xp 00000000 fd:01 123 /usr/bin/x\n\
                    7f00000000-7f00002000 rw-s 00001000 00:1a 4242 /dev/shm/a b (deleted)\n";
        assert_eq!(
            find_spot(maps, 0x007f_0000_0080),
            Some(ShmSpot {
                dev: (0, 0x1a),
                ino: 4242,
                offset: 0x1080
            })
        );
        assert_eq!(find_spot(maps, 0x55d8), None);
        assert_eq!(find_spot(maps, 0x1), None);
        assert_eq!(find_spot("garbage\n\n-", 5), None);
    }
}
