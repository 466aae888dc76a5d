//! System V semaphore sets (`semget`, `semop`, `semtimedop`, `semctl`).
//!
//! `semctl` takes its fourth argument as a `union semun` that the caller must define; each
//! command reads one member of it (`val` for SETVAL, `buf` for IPC_STAT, `array` for
//! GETALL/SETALL, none for the others). [`Semun`] is that union and each wrapper below passes
//! the member its command reads. The libc crate does not declare `semtimedop`, so it is declared
//! here (glibc has exported it since 2.3.3).

use std::io;
use std::time::Duration;

use super::cvt;

unsafe extern "C" {
    /// `semtimedop(2)`: `semop` with a relative timeout (`NULL`: no timeout).
    fn semtimedop(
        semid: libc::c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> libc::c_int;
}

/// `union semun` from semctl(2): the fourth argument of `semctl`.
#[repr(C)]
#[derive(Clone, Copy)]
union Semun {
    val: libc::c_int,
    buf: *mut libc::semid_ds,
    array: *mut libc::c_ushort,
}

/// One semaphore operation (`struct sembuf`).
pub(crate) use libc::sembuf as SemBuf;

pub(crate) const SEM_UNDO: i16 = libc::SEM_UNDO as i16;
pub(crate) const IPC_NOWAIT: i16 = libc::IPC_NOWAIT as i16;

/// `semget(key, nsems, flags)`.
pub(crate) fn semget(key: i32, nsems: i32, flags: i32) -> io::Result<i32> {
    // SAFETY: semget takes no pointers.
    cvt(unsafe { libc::semget(key, nsems, flags) })
}

/// `semtimedop(id, ops, timeout)` once (`timeout` `None`: block without limit). May fail with
/// `EINTR`, `EAGAIN` (IPC_NOWAIT or timeout), `EIDRM` (removed while waiting), ...
pub(crate) fn semop(id: i32, ops: &mut [SemBuf], timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos() as _,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY:
    // - `ops` is a valid, writable array of `ops.len()` sembufs for the duration of the call;
    // - `ts_ptr` is null or points to `ts`, a valid timespec that outlives the call.
    cvt(unsafe { semtimedop(id, ops.as_mut_ptr(), ops.len(), ts_ptr) }).map(drop)
}

/// `semctl(id, index, cmd)` for the commands that read no fourth argument and return a value
/// (GETVAL, GETNCNT, GETZCNT, GETPID) or nothing (IPC_RMID).
fn semctl_plain(id: i32, index: i32, cmd: i32) -> io::Result<i32> {
    let arg = Semun { val: 0 };
    // SAFETY: `cmd` is one of GETVAL/GETNCNT/GETZCNT/GETPID/IPC_RMID (the callers below), which
    // do not read the union; a zero `val` is passed so that the variadic slot is initialised.
    cvt(unsafe { libc::semctl(id, index, cmd, arg) })
}

pub(crate) fn getval(id: i32, index: i32) -> io::Result<i32> {
    semctl_plain(id, index, libc::GETVAL)
}

pub(crate) fn getncnt(id: i32, index: i32) -> io::Result<i32> {
    semctl_plain(id, index, libc::GETNCNT)
}

pub(crate) fn getzcnt(id: i32, index: i32) -> io::Result<i32> {
    semctl_plain(id, index, libc::GETZCNT)
}

pub(crate) fn getpid(id: i32, index: i32) -> io::Result<i32> {
    semctl_plain(id, index, libc::GETPID)
}

pub(crate) fn rmid(id: i32) -> io::Result<()> {
    semctl_plain(id, 0, libc::IPC_RMID).map(drop)
}

/// `semctl(id, index, SETVAL, val)`.
pub(crate) fn setval(id: i32, index: i32, val: i32) -> io::Result<()> {
    let arg = Semun { val };
    // SAFETY: SETVAL reads the `val` member, which is the one initialised.
    cvt(unsafe { libc::semctl(id, index, libc::SETVAL, arg) }).map(drop)
}

/// `semctl(id, 0, GETALL, array)` into `out` (which must hold the set's nsems values).
pub(crate) fn getall(id: i32, out: &mut [u16]) -> io::Result<()> {
    let arg = Semun {
        array: out.as_mut_ptr(),
    };
    // SAFETY: GETALL writes nsems `unsigned short`s through `array`; the caller sizes `out` to
    // the set's nsems (from IPC_STAT), and it outlives the call.
    cvt(unsafe { libc::semctl(id, 0, libc::GETALL, arg) }).map(drop)
}

/// `semctl(id, 0, SETALL, array)` from `values` (which must hold the set's nsems values).
pub(crate) fn setall(id: i32, values: &[u16]) -> io::Result<()> {
    let arg = Semun {
        array: values.as_ptr().cast_mut(),
    };
    // SAFETY: SETALL only reads nsems `unsigned short`s through `array`; the caller sizes
    // `values` to the set's nsems, and it outlives the call. The kernel never writes through it.
    cvt(unsafe { libc::semctl(id, 0, libc::SETALL, arg) }).map(drop)
}

/// What IPC_STAT reports about a set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SemStat {
    pub(crate) nsems: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) cuid: u32,
    pub(crate) cgid: u32,
    pub(crate) mode: u32,
    pub(crate) key: i32,
    pub(crate) otime: i64,
    pub(crate) ctime: i64,
}

/// `semctl(id, 0, IPC_STAT, buf)`.
// The field types (`time_t`, `__syscall_ulong_t`) are narrower on 32-bit targets.
#[allow(clippy::useless_conversion)]
pub(crate) fn stat(id: i32) -> io::Result<SemStat> {
    let mut ds = std::mem::MaybeUninit::<libc::semid_ds>::zeroed();
    let arg = Semun {
        buf: ds.as_mut_ptr(),
    };
    // SAFETY: IPC_STAT writes one `semid_ds` through `buf`, which points to `ds`, a properly
    // sized and aligned buffer that outlives the call.
    cvt(unsafe { libc::semctl(id, 0, libc::IPC_STAT, arg) })?;
    // SAFETY: `semid_ds` is plain integers, so the zeroed buffer was already a valid value,
    // and the successful IPC_STAT filled it in.
    let ds = unsafe { ds.assume_init() };
    Ok(SemStat {
        nsems: u64::from(ds.sem_nsems),
        uid: ds.sem_perm.uid,
        gid: ds.sem_perm.gid,
        cuid: ds.sem_perm.cuid,
        cgid: ds.sem_perm.cgid,
        mode: u32::from(ds.sem_perm.mode) & 0o777,
        key: ds.sem_perm.__key,
        otime: i64::from(ds.sem_otime),
        ctime: i64::from(ds.sem_ctime),
    })
}
