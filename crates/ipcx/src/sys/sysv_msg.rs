//! System V message queues: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.
//!
//! # References
//! [svipc(7)](https://man7.org/linux/man-pages/man7/svipc.7.html),
//! [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html),
//! [msgop(2)](https://man7.org/linux/man-pages/man2/msgop.2.html),
//! [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).

use std::io;
use std::mem::size_of;

use super::{cvt, retry_eintr};

/// Where the largest System V message size lives.
pub(crate) const MSGMAX_FILE: &str = "/proc/sys/kernel/msgmax";
/// Where the default (and, for unprivileged callers, largest) queue size in bytes lives.
pub(crate) const MSGMNB_FILE: &str = "/proc/sys/kernel/msgmnb";

/// Reads one of the `/proc/sys/kernel` limits; `None` when unreadable.
pub(crate) fn read_limit(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

const LONG: usize = size_of::<libc::c_long>();

/// A `struct msgbuf { long mtype; char mtext[N]; }`, backed by `c_long`s so that `mtype` is
/// aligned.
#[derive(Debug)]
pub(crate) struct MsgBuf {
    words: Vec<libc::c_long>,
    capacity: usize,
}

impl MsgBuf {
    /// A buffer whose text holds up to `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> MsgBuf {
        let words = 1 + capacity.div_ceil(LONG);
        MsgBuf {
            words: vec![0; words],
            capacity,
        }
    }

    /// A buffer holding `mtype` and `text`.
    pub(crate) fn from_message(mtype: libc::c_long, text: &[u8]) -> MsgBuf {
        let mut buf = MsgBuf::with_capacity(text.len());
        buf.words[0] = mtype;
        buf.text_mut()[..text.len()].copy_from_slice(text);
        buf
    }

    /// How many text bytes the buffer holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The message type.
    pub(crate) fn mtype(&self) -> libc::c_long {
        self.words[0]
    }

    /// The text area (all `capacity` bytes of it).
    pub(crate) fn text(&self) -> &[u8] {
        // SAFETY: `words[1..]` is `(words.len() - 1) * LONG >= capacity` initialised bytes owned
        // by `self`; u8 has no alignment or validity requirements; the borrow of `self` keeps
        // the allocation alive and unaliased by writers.
        unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().add(1).cast::<u8>(), self.capacity)
        }
    }

    fn text_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `text`, with exclusive access through `&mut self`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().add(1).cast::<u8>(),
                self.capacity,
            )
        }
    }
}

/// `msgget(2)`: `flags` carries `IPC_CREAT`/`IPC_EXCL` and the mode (or, when opening, the
/// access requested, which the kernel checks against the queue's mode).
pub(crate) fn msgget(key: i32, flags: i32) -> io::Result<i32> {
    // SAFETY: msgget takes plain integers.
    cvt(unsafe { libc::msgget(key as libc::key_t, flags) })
}

/// `msgsnd(2)` of the whole text of `buf`; `nowait` adds `IPC_NOWAIT`. Retried on `EINTR`.
pub(crate) fn msgsnd(id: i32, buf: &MsgBuf, nowait: bool) -> io::Result<()> {
    let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
    retry_eintr(|| {
        // SAFETY: `buf.words` is a valid `long mtype` followed by `buf.capacity` readable bytes
        // of text, alive for the call; msgsnd only reads it.
        cvt(unsafe { libc::msgsnd(id, buf.words.as_ptr().cast(), buf.capacity, flags) }).map(drop)
    })
}

/// `msgrcv(2)` into `buf` with type selector `selector`; `nowait` adds `IPC_NOWAIT`. Returns
/// the text length (the type is `buf.mtype()`). Retried on `EINTR`.
pub(crate) fn msgrcv(
    id: i32,
    buf: &mut MsgBuf,
    selector: libc::c_long,
    nowait: bool,
) -> io::Result<usize> {
    let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
    retry_eintr(|| {
        // SAFETY: `buf.words` is writable for one `long` plus `buf.capacity` bytes, and the
        // kernel writes at most that (msgsz = capacity; larger messages fail with E2BIG).
        let n = cvt(unsafe {
            libc::msgrcv(
                id,
                buf.words.as_mut_ptr().cast(),
                buf.capacity,
                selector,
                flags,
            )
        })?;
        Ok(n as usize)
    })
}

/// What `IPC_STAT` reports, in plain integers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MsqidDs {
    pub(crate) key: i32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) cuid: u32,
    pub(crate) cgid: u32,
    pub(crate) mode: u32,
    pub(crate) stime: i64,
    pub(crate) rtime: i64,
    pub(crate) ctime: i64,
    pub(crate) cbytes: u64,
    pub(crate) qnum: u64,
    pub(crate) qbytes: u64,
    pub(crate) lspid: i32,
    pub(crate) lrpid: i32,
}

fn stat_raw(id: i32) -> io::Result<libc::msqid_ds> {
    // SAFETY: an all-zero msqid_ds is a valid value (plain integers and padding).
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable msqid_ds for IPC_STAT to fill.
    cvt(unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) })?;
    Ok(ds)
}

/// `msgctl(id, IPC_STAT)`.
#[doc(alias = "msgctl")]
pub(crate) fn stat(id: i32) -> io::Result<MsqidDs> {
    let ds = stat_raw(id)?;
    Ok(MsqidDs {
        key: ds.msg_perm.__key as i32,
        uid: ds.msg_perm.uid,
        gid: ds.msg_perm.gid,
        cuid: ds.msg_perm.cuid,
        cgid: ds.msg_perm.cgid,
        mode: u32::from(ds.msg_perm.mode),
        stime: ds.msg_stime as i64,
        rtime: ds.msg_rtime as i64,
        ctime: ds.msg_ctime as i64,
        cbytes: ds.__msg_cbytes as u64,
        qnum: ds.msg_qnum as u64,
        qbytes: ds.msg_qbytes as u64,
        lspid: ds.msg_lspid,
        lrpid: ds.msg_lrpid,
    })
}

/// `msgctl(id, IPC_SET)` of `msg_qbytes` (the other settable fields are kept).
pub(crate) fn set_qbytes(id: i32, qbytes: u64) -> io::Result<()> {
    let mut ds = stat_raw(id)?;
    ds.msg_qbytes = qbytes as _;
    // SAFETY: `ds` is a valid msqid_ds, filled by IPC_STAT; IPC_SET only reads it.
    cvt(unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) }).map(drop)
}

/// `msgctl(id, IPC_RMID)`.
pub(crate) fn remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, which may be null.
    cvt(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}
