//! The rows that go through `ipcx::channel`: one per endpoint kind.
//!
//! Each row uses two endpoints with fresh names: `a2b` (parent to peer) and `b2a` (peer to
//! parent). Each side creates the receiver it reads from, then opens a sender to the other's.
//! For the queues (`mq`, `sysv-mq`) the parent creates both queues, so that it owns and removes
//! them whatever happens to the peer: it holds a receiver on `a2b` that it never reads.
//! For `shm` the parent creates both rings with no participant (a subscriber that never
//! reads would hold the publisher back) and removes them when the row ends.

use std::path::Path;
use std::time::{Duration, Instant};

use ipcx::channel::{Endpoint, Error, MessageReceiver, MessageSender, Options};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

/// The largest UDP payload over IPv4.
pub const UDP_MAX: usize = 65_507;

/// The largest message of a ring created with the default channel options.
const SHM_DEFAULT_MAX: usize = 64 << 10;

/// The endpoint kinds of `ipcx::channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// `fifo:PATH`.
    Fifo,
    /// `mq:/NAME`.
    Mq,
    /// `sysv-mq:KEY`.
    SysvMq,
    /// `unix:PATH`.
    Unix,
    /// `unix-dgram:PATH`.
    UnixDgram,
    /// `unix-seqpacket:PATH`.
    UnixSeqpacket,
    /// `tcp:127.0.0.1:PORT`.
    Tcp,
    /// `udp:127.0.0.1:PORT`.
    Udp,
    /// `shm:/NAME`: the shared-memory ring, through the channel interface (a copy in, a copy
    /// out, the default wait strategy).
    Shm,
}

impl ChannelKind {
    /// Every kind, in table order.
    pub const ALL: [ChannelKind; 9] = [
        ChannelKind::Fifo,
        ChannelKind::Mq,
        ChannelKind::SysvMq,
        ChannelKind::Unix,
        ChannelKind::UnixDgram,
        ChannelKind::UnixSeqpacket,
        ChannelKind::Tcp,
        ChannelKind::Udp,
        ChannelKind::Shm,
    ];

    /// The row name, which is also the endpoint scheme.
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Fifo => "fifo",
            ChannelKind::Mq => "mq",
            ChannelKind::SysvMq => "sysv-mq",
            ChannelKind::Unix => "unix",
            ChannelKind::UnixDgram => "unix-dgram",
            ChannelKind::UnixSeqpacket => "unix-seqpacket",
            ChannelKind::Tcp => "tcp",
            ChannelKind::Udp => "udp",
            ChannelKind::Shm => "shm",
        }
    }

    fn description(self) -> &'static str {
        match self {
            ChannelKind::Fifo => "named pipes (one per direction), framed, via ipcx::channel",
            ChannelKind::Mq => "POSIX message queues (one per direction) via ipcx::channel",
            ChannelKind::SysvMq => "System V message queues (one per direction) via ipcx::channel",
            ChannelKind::Unix => "Unix stream sockets, framed, via ipcx::channel",
            ChannelKind::UnixDgram => "Unix datagram sockets via ipcx::channel",
            ChannelKind::UnixSeqpacket => "Unix seqpacket sockets via ipcx::channel",
            ChannelKind::Tcp => "TCP over loopback (TCP_NODELAY), framed, via ipcx::channel",
            ChannelKind::Udp => "UDP over loopback, windowed streaming, via ipcx::channel",
            ChannelKind::Shm => {
                "shared-memory rings (one per direction) via ipcx::channel: the copying path \
                 of ipcx send/recv"
            }
        }
    }
}

/// A row over one `ipcx::channel` endpoint kind.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    kind: ChannelKind,
}

impl ChannelRow {
    /// The row for `kind`.
    pub fn new(kind: ChannelKind) -> ChannelRow {
        ChannelRow { kind }
    }

    /// The endpoint kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }
}

/// What the parent sends the peer: both addresses and the options that matter.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spec {
    a2b: String,
    b2a: String,
    max_frame_len: usize,
    /// Queue or ring capacity (messages, bytes per message), when the default message size is
    /// too small.
    mq_capacity: Option<(usize, usize)>,
}

impl Spec {
    fn options(&self) -> Options {
        let mut o = Options::new().max_frame_len(self.max_frame_len);
        if let Some((n, size)) = self.mq_capacity {
            o = o.capacity(n, size);
        }
        o
    }
}

fn read_proc(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Maps a channel error: timeouts retry, size limits and stub adapters skip, the rest fail.
fn map_err(what: &str, e: Error) -> LinkError {
    match e {
        Error::Timeout | Error::WouldBlock | Error::Full { .. } => LinkError::Timeout,
        Error::TooLarge { .. } | Error::FrameTooLarge { .. } => {
            let _ = what;
            LinkError::TooLarge(e.to_string())
        }
        Error::Unsupported { .. } => {
            LinkError::Unsupported(format!("not available in this build yet ({e})"))
        }
        Error::PeerGone { .. } => LinkError::PeerGone(format!("{what}: {e}")),
        e => LinkError::Failed(format!("{what}: {e}")),
    }
}

fn parse(addr: &str) -> Result<Endpoint, LinkError> {
    Endpoint::parse(addr).map_err(|e| LinkError::Failed(e.to_string()))
}

fn free_port(udp: bool) -> Result<u16, LinkError> {
    let port = if udp {
        std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    }
    .map_err(|e| LinkError::Unsupported(format!("no free loopback port: {e}")))?
    .port();
    Ok(port)
}

/// A System V key that no message queue uses now.
fn free_sysv_key(tag: &str, dir: &str) -> i32 {
    let used: Vec<i64> = std::fs::read_to_string("/proc/sysvipc/msg")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes().chain(dir.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    loop {
        let key = ((h >> 16) as u32 & 0x7fff_fff0) as i32 | 0x1000_0000;
        if key != 0 && !used.contains(&i64::from(key)) {
            return key;
        }
        h = h.wrapping_mul(0x100_0000_01b3).wrapping_add(1);
    }
}

/// A fresh `scheme:PATH` address under `dir` (`scheme:@NAME` when the path is too long).
pub(crate) fn unix_addr(scheme: &str, dir: &Path, tag: &str, dirn: &str) -> String {
    let path = dir.join(format!("{tag}-{scheme}-{dirn}.sock"));
    let s = path.display().to_string();
    if s.len() <= 100 {
        format!("{scheme}:{s}")
    } else {
        format!("{scheme}:@{tag}-{dirn}")
    }
}

/// Raises RLIMIT_MSGQUEUE so that queues of `bytes` in total can be created (root only;
/// best effort).
fn raise_mq_rlimit(bytes: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Msgqueue);
    let want = bytes + (1 << 20);
    if cur.current.is_some_and(|c| c >= want) || cur.current.is_none() {
        return;
    }
    let hard = if is_root() {
        cur.maximum.map(|m| m.max(want))
    } else {
        cur.maximum
    };
    let soft = hard.map_or(want, |h| want.min(h));
    let _ = setrlimit(
        Resource::Msgqueue,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    );
}

impl Mechanism for ChannelRow {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn description(&self) -> &str {
        self.kind.description()
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        match self.kind {
            ChannelKind::Udp if payload > UDP_MAX => {
                Err(format!("UDP carries at most {UDP_MAX} bytes per datagram"))
            }
            ChannelKind::SysvMq => {
                let max = read_proc("/proc/sys/kernel/msgmax").unwrap_or(8192);
                let mnb = read_proc("/proc/sys/kernel/msgmnb").unwrap_or(16384);
                if payload > max {
                    Err(format!(
                        "System V queues carry at most MSGMAX = {max} bytes per message \
                         (/proc/sys/kernel/msgmax; root can raise it)"
                    ))
                } else if payload > mnb {
                    Err(format!(
                        "a System V queue holds at most MSGMNB = {mnb} bytes \
                         (/proc/sys/kernel/msgmnb; root can raise it)"
                    ))
                } else {
                    Ok(())
                }
            }
            ChannelKind::Mq => {
                let max = read_proc("/proc/sys/fs/mqueue/msgsize_max").unwrap_or(8192);
                if payload > max && !is_root() {
                    Err(format!(
                        "POSIX queues take at most msgsize_max = {max} bytes per message \
                         (/proc/sys/fs/mqueue/msgsize_max); only root can create larger queues \
                         (up to 16 MiB)"
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn needs_flow_control(&self) -> bool {
        self.kind == ChannelKind::Udp
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let tag = &ctx.tag;
        let dirs = ["a2b", "b2a"];
        let addrs: Vec<String> = match self.kind {
            ChannelKind::Fifo => dirs
                .iter()
                .map(|d| format!("fifo:{}", ctx.dir.join(format!("{tag}-{d}.fifo")).display()))
                .collect(),
            ChannelKind::Mq => dirs.iter().map(|d| format!("mq:/{tag}-{d}")).collect(),
            ChannelKind::SysvMq => {
                let a = free_sysv_key(tag, "a2b");
                let mut b = free_sysv_key(tag, "b2a");
                if b == a {
                    b = a ^ 1;
                }
                vec![format!("sysv-mq:{a}"), format!("sysv-mq:{b}")]
            }
            ChannelKind::Unix | ChannelKind::UnixDgram | ChannelKind::UnixSeqpacket => dirs
                .iter()
                .map(|d| unix_addr(self.kind.name(), &ctx.dir, tag, d))
                .collect(),
            ChannelKind::Tcp => vec![
                format!("tcp:127.0.0.1:{}", free_port(false)?),
                format!("tcp:127.0.0.1:{}", free_port(false)?),
            ],
            ChannelKind::Udp => vec![
                format!("udp:127.0.0.1:{}", free_port(true)?),
                format!("udp:127.0.0.1:{}", free_port(true)?),
            ],
            ChannelKind::Shm => dirs.iter().map(|d| format!("shm:/{tag}-{d}")).collect(),
        };
        let mut mq_capacity = None;
        if self.kind == ChannelKind::Mq {
            let default = read_proc("/proc/sys/fs/mqueue/msgsize_default").unwrap_or(8192);
            if ctx.payload > default {
                let n = read_proc("/proc/sys/fs/mqueue/msg_default")
                    .unwrap_or(10)
                    .clamp(1, 10);
                raise_mq_rlimit(2 * n as u64 * (ctx.payload as u64 + 64));
                mq_capacity = Some((n, ctx.payload));
            }
        }
        let mut spec = Spec {
            a2b: addrs[0].clone(),
            b2a: addrs[1].clone(),
            max_frame_len: ctx.payload.max(1024),
            mq_capacity,
        };
        if self.kind == ChannelKind::Shm && ctx.payload > SHM_DEFAULT_MAX {
            // Room for a few messages of this size, as `--capacity` gives `ipcx recv`.
            spec.mq_capacity = Some((4, ctx.payload));
        }
        let text = serde_json::to_string(&spec).expect("spec serialises");
        if self.kind == ChannelKind::Shm {
            // The parent creates both rings, so that it owns and removes them; the channel
            // endpoints open them (a receiver creates a ring only when it is missing).
            let (n, size) = spec.mq_capacity.unwrap_or((16, SHM_DEFAULT_MAX));
            let opts = ipcx::ring::Options::new()
                .max_message(size)
                .capacity(n.saturating_mul(size + 16));
            let names: Vec<String> = [&spec.a2b, &spec.b2a]
                .iter()
                .map(|a| a.trim_start_matches("shm:").to_owned())
                .collect();
            let guard = crate::ring_rows::create_rings(&names, &opts)?;
            return Ok(Prepared::with_guard(text, guard));
        }
        if matches!(self.kind, ChannelKind::Mq | ChannelKind::SysvMq) {
            // The parent creates the peer's queue too, so that it owns and removes it.
            let ep = parse(&spec.a2b)?;
            let holder = ep.receiver(&spec.options()).map_err(|e| {
                let max = read_proc("/proc/sys/fs/mqueue/msgsize_max").unwrap_or(8192);
                let big = self.kind == ChannelKind::Mq && ctx.payload > max;
                match map_err(&spec.a2b, e) {
                    LinkError::Failed(m) if big => LinkError::TooLarge(format!(
                        "POSIX queues for {}-byte messages cannot be created here ({m}); \
                         msgsize_max is {max} (/proc/sys/fs/mqueue/msgsize_max): raise it, or \
                         run with CAP_SYS_RESOURCE, for up to 16 MiB",
                        ctx.payload
                    )),
                    other => other,
                }
            })?;
            return Ok(Prepared::with_guard(text, QueueHolder(holder)));
        }
        Ok(Prepared::new(text))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let _ = payload;
        let spec = parse_spec(spec)?;
        let (rx_addr, tx_addr) = match side {
            Side::Parent => (&spec.b2a, &spec.a2b),
            Side::Peer => (&spec.a2b, &spec.b2a),
        };
        let opts = spec.options();
        let rx_ep = parse(rx_addr)?;
        let rx = rx_ep.receiver(&opts).map_err(|e| map_err(rx_addr, e))?;
        Ok(Box::new(ChannelHalf {
            rx,
            tx_ep: parse(tx_addr)?,
            opts,
        }))
    }
}

fn parse_spec(spec: &str) -> Result<Spec, LinkError> {
    serde_json::from_str(spec).map_err(|e| LinkError::Failed(format!("bad channel spec: {e}")))
}

/// For a row built on a channel row's spec (`bridge`): the endpoint the peer receives on, and
/// the options of both ends.
pub(crate) fn peer_endpoint(spec: &str) -> Result<(Endpoint, Options), LinkError> {
    let spec = parse_spec(spec)?;
    Ok((parse(&spec.a2b)?, spec.options()))
}

/// A channel row's `spec` with the parent sending to `to` instead of the peer's endpoint.
pub(crate) fn redirect_parent(spec: &str, to: &str) -> Result<String, LinkError> {
    let mut spec = parse_spec(spec)?;
    spec.a2b = to.to_owned();
    Ok(serde_json::to_string(&spec).expect("spec serialises"))
}

/// Keeps a queue the parent created for the peer until the row ends.
struct QueueHolder(#[allow(dead_code)] Box<dyn MessageReceiver>);

struct ChannelHalf {
    rx: Box<dyn MessageReceiver>,
    tx_ep: Endpoint,
    opts: Options,
}

impl HalfOpen for ChannelHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => Instant::now() + Duration::from_secs(10),
        };
        let what = self.tx_ep.to_string();
        let tx = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let opts = self
                .opts
                .clone()
                .connect_timeout(left.max(Duration::from_millis(1)));
            match self.tx_ep.sender(&opts) {
                Ok(tx) => break tx,
                Err(e @ (Error::NotFound { .. } | Error::PeerGone { .. } | Error::Timeout))
                    if Instant::now() < deadline =>
                {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(map_err(&what, e)),
            }
        };
        Ok(Box::new(ChannelLink {
            tx,
            rx: self.rx,
            what,
        }))
    }
}

struct ChannelLink {
    tx: Box<dyn MessageSender>,
    rx: Box<dyn MessageReceiver>,
    what: String,
}

impl Link for ChannelLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        self.tx
            .send_wait(msg, wait)
            .map_err(|e| map_err(&self.what, e))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        match self.rx.recv_wait(wait) {
            Ok(m) => {
                *buf = m.data;
                Ok(())
            }
            Err(e) => Err(map_err("receiving", e)),
        }
    }

    fn max_payload(&self) -> Option<usize> {
        self.tx.max_message_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_size_limits_say_why() {
        let udp = ChannelRow::new(ChannelKind::Udp);
        assert!(udp.check_payload(64).is_ok());
        assert!(udp.check_payload(1 << 20).unwrap_err().contains("65507"));
        let sysv = ChannelRow::new(ChannelKind::SysvMq);
        assert!(sysv.check_payload(64).is_ok());
        assert!(sysv.check_payload(1 << 20).unwrap_err().contains("MSGMAX"));
        assert!(
            ChannelRow::new(ChannelKind::Unix)
                .check_payload(1 << 20)
                .is_ok()
        );
    }

    #[test]
    fn stub_adapters_are_skipped_not_failed() {
        let e = map_err(
            "x",
            Error::Unsupported {
                what: "opening".into(),
                mechanism: "fifo".into(),
            },
        );
        assert!(e.is_skip(), "{e}");
        assert!(e.to_string().contains("not available"), "{e}");
        assert_eq!(map_err("x", Error::Timeout), LinkError::Timeout);
    }

    #[test]
    fn specs_have_fresh_names() {
        let dir = std::env::temp_dir();
        for kind in ChannelKind::ALL {
            if matches!(
                kind,
                ChannelKind::Mq | ChannelKind::SysvMq | ChannelKind::Shm
            ) {
                continue; // prepare creates the queues (rings): covered by the two-process tests
            }
            let row = ChannelRow::new(kind);
            let ctx = RowContext {
                payload: 64,
                dir: dir.clone(),
                tag: "ipcx-bench-test-1".into(),
            };
            let p = row.prepare(&ctx).unwrap();
            let spec: Spec = serde_json::from_str(&p.spec).unwrap();
            assert_ne!(spec.a2b, spec.b2a);
            assert!(spec.a2b.starts_with(kind.name()), "{}", spec.a2b);
            Endpoint::parse(&spec.a2b).unwrap();
            Endpoint::parse(&spec.b2a).unwrap();
        }
        let k1 = free_sysv_key("t", "a2b");
        let k2 = free_sysv_key("t", "b2a");
        assert_ne!(k1, k2);
        assert_ne!(k1, 0);
    }
}
