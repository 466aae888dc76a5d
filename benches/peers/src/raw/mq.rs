//! `raw-mq`: two POSIX message queues, `mq_timedsend` / `mq_timedreceive`.

use std::ffi::CString;
use std::io;
use std::time::{Duration, Instant};

use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

use super::sys::{deadline_of, last_err};

/// Two POSIX message queues created by the parent (which unlinks them), one message per
/// payload, `mq_timedsend`/`mq_timedreceive`.
#[derive(Debug, Default)]
pub struct RawMq;

fn read_proc(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Removes the row's queues when the row ends.
struct Unlink(Vec<CString>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for n in &self.0 {
            // SAFETY: `n` is a valid NUL-terminated name.
            unsafe { libc::mq_unlink(n.as_ptr()) };
        }
    }
}

struct Mqd(libc::mqd_t);

impl Drop for Mqd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is open and owned by this value.
        unsafe { libc::mq_close(self.0) };
    }
}

fn mq_open(name: &CString, flags: i32, attr: Option<&libc::mq_attr>) -> io::Result<Mqd> {
    let attr_ptr = attr.map_or(std::ptr::null(), |a| a as *const libc::mq_attr);
    // SAFETY: `name` is NUL-terminated; the mode and attr arguments are read only with O_CREAT,
    // and attr is either null or a valid mq_attr.
    let q = unsafe {
        libc::mq_open(
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            0o600 as libc::mode_t,
            attr_ptr,
        )
    };
    if q == -1 as libc::mqd_t {
        Err(last_err())
    } else {
        Ok(Mqd(q))
    }
}

fn raise_mq_rlimit(bytes: u64) {
    let want = bytes + (1 << 20);
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cur` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut cur) } != 0 {
        return;
    }
    if cur.rlim_cur == libc::RLIM_INFINITY || cur.rlim_cur >= want {
        return;
    }
    let hard = if is_root() {
        cur.rlim_max.max(want)
    } else {
        cur.rlim_max
    };
    let new = libc::rlimit {
        rlim_cur: want.min(hard),
        rlim_max: hard,
    };
    // SAFETY: `new` is a valid rlimit; failure is harmless (the queue creation says why).
    unsafe { libc::setrlimit(libc::RLIMIT_MSGQUEUE, &new) };
}

fn timespec_at(deadline: Option<Instant>) -> libc::timespec {
    let left = deadline.map_or(Duration::from_secs(3600), |d| {
        d.saturating_duration_since(Instant::now())
    });
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let mut ns = now.tv_nsec + i64::from(left.subsec_nanos());
    let mut s = now.tv_sec + left.as_secs() as i64;
    if ns >= 1_000_000_000 {
        ns -= 1_000_000_000;
        s += 1;
    }
    libc::timespec {
        tv_sec: s as _,
        tv_nsec: ns as _,
    }
}

struct MqLink {
    tx: Mqd,
    rx: Mqd,
    msgsize: usize,
}

impl Link for MqLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let ts = timespec_at(deadline_of(wait));
        // SAFETY: the queue is open; `msg` is a live buffer of msg.len() bytes; `ts` is valid.
        let r = unsafe { libc::mq_timedsend(self.tx.0, msg.as_ptr().cast(), msg.len(), 0, &ts) };
        if r == 0 {
            return Ok(());
        }
        let e = last_err();
        match e.raw_os_error() {
            Some(libc::ETIMEDOUT) | Some(libc::EINTR) | Some(libc::EAGAIN) => {
                Err(LinkError::Timeout)
            }
            Some(libc::EMSGSIZE) => Err(LinkError::TooLarge(e.to_string())),
            _ => Err(e.into()),
        }
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let ts = timespec_at(deadline_of(wait));
        buf.resize(self.msgsize, 0);
        // SAFETY: the queue is open; `buf` is writable for msgsize bytes, the queue's message
        // size, so any message fits; `ts` is valid.
        let r = unsafe {
            libc::mq_timedreceive(
                self.rx.0,
                buf.as_mut_ptr().cast(),
                self.msgsize,
                std::ptr::null_mut(),
                &ts,
            )
        };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(());
        }
        let e = last_err();
        match e.raw_os_error() {
            Some(libc::ETIMEDOUT) | Some(libc::EINTR) | Some(libc::EAGAIN) => {
                Err(LinkError::Timeout)
            }
            _ => Err(e.into()),
        }
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.msgsize)
    }
}

struct MqHalf(Option<MqLink>);

impl HalfOpen for MqHalf {
    fn connect(self: Box<Self>, _wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        Ok(Box::new(self.0.expect("opened")))
    }
}

impl Mechanism for RawMq {
    fn name(&self) -> &str {
        "raw-mq"
    }
    fn description(&self) -> &str {
        "bare libc: two POSIX message queues, mq_timedsend / mq_timedreceive"
    }
    fn check_payload(&self, payload: usize) -> Result<(), String> {
        let max = read_proc("/proc/sys/fs/mqueue/msgsize_max").unwrap_or(8192);
        if payload > max && !is_root() {
            Err(format!(
                "POSIX queues take at most msgsize_max = {max} bytes per message; only root \
                 can create larger queues"
            ))
        } else {
            Ok(())
        }
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let names: Vec<CString> = ["a2b", "b2a"]
            .iter()
            .map(|d| CString::new(format!("/{}-raw-{d}", ctx.tag)).expect("no NUL"))
            .collect();
        let n = read_proc("/proc/sys/fs/mqueue/msg_default")
            .unwrap_or(10)
            .clamp(1, 10);
        let msgsize = ctx.payload.max(8);
        raise_mq_rlimit(2 * n as u64 * (msgsize as u64 + 64));
        // SAFETY: an all-zero mq_attr is valid; the fields that matter are set below.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = n as _;
        attr.mq_msgsize = msgsize as _;
        let guard = Unlink(Vec::new());
        let mut guard = guard;
        for name in &names {
            mq_open(
                name,
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                Some(&attr),
            )
            .map_err(|e| {
                let m = format!("creating a {msgsize}-byte POSIX queue: {e}");
                if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EMFILE)
                {
                    LinkError::TooLarge(m)
                } else {
                    LinkError::Failed(m)
                }
            })?;
            guard.0.push(name.clone());
        }
        let spec = format!(
            "{} {} {msgsize}",
            names[0].to_str().expect("ascii"),
            names[1].to_str().expect("ascii")
        );
        Ok(Prepared::with_guard(spec, guard))
    }
    fn open(&self, spec: &str, side: Side, _: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let parts: Vec<&str> = spec.split(' ').collect();
        let [a2b, b2a, size] = parts[..] else {
            return Err(LinkError::Failed(format!("bad raw-mq spec {spec:?}")));
        };
        let msgsize: usize = size
            .parse()
            .map_err(|_| LinkError::Failed(format!("bad raw-mq spec {spec:?}")))?;
        let (rx, tx) = match side {
            Side::Parent => (b2a, a2b),
            Side::Peer => (a2b, b2a),
        };
        let open = |n: &str, flags| {
            let c = CString::new(n).map_err(|_| LinkError::Failed("NUL in name".into()))?;
            mq_open(&c, flags, None).map_err(|e| LinkError::Failed(format!("opening {n}: {e}")))
        };
        Ok(Box::new(MqHalf(Some(MqLink {
            rx: open(rx, libc::O_RDONLY)?,
            tx: open(tx, libc::O_WRONLY)?,
            msgsize,
        }))))
    }
}
