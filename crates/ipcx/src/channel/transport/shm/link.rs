//! A [`Connection`] over a pair of shared-memory rings (`shm:/NAME`), one per direction.
//!
//! A ring has one publisher, so a connection cannot share a well-known ring with other
//! clients. Instead:
//!
//! 1. The server binds the abstract Unix socket `@ipcx-shm-link/NAME` (which also makes
//!    `shm:/NAME` unique: a second server on the same name fails with "address in use").
//! 2. A client connects to that socket and creates two fresh rings named after the server,
//!    its pid and a counter: `/NAME.link-PID-N-q` (client → server, the client publishes)
//!    and `/NAME.link-PID-N-r` (server → client, the client subscribes). It sends both names
//!    in one frame on the socket.
//! 3. The server checks that the names belong to this server (`/NAME.link-` prefix), opens the
//!    request ring as its subscriber and the reply ring as its publisher, removes both names
//!    (the mapping stays; nothing is left in `/dev/shm` even if both processes are killed
//!    later) and answers `OK` on the socket. The socket is then closed: messages move through
//!    the rings only.
//!
//! The socket gives the server the client's kernel-verified credentials (for an authorisation
//! hook) before it touches the client's rings. The rings are created with mode `0o600`, so the
//! server must run as the client's user (or as root).
//!
//! # A client that dies while connecting
//!
//! Between creating its rings (step 2) and the server removing their names (step 3), the
//! names exist only because of the client. A client that fails the handshake removes them
//! itself (and so does a client whose server refuses it or dies). A client killed in that
//! window leaves one or two files, often half-made (killed while the ring was being created,
//! before it has a ring header), that the server never learnt the names of. Two things
//! remove them:
//!
//! * **The server sweeps them.** When it starts (once it holds the socket, so the names are
//!   its own) and each time it accepts a connection (before the handshake, so the sweep has
//!   run when that client's connect returns), it removes every `/NAME.link-PID-N-q` and
//!   `-r` owned by its own user whose PID no longer runs, and forgets their owner records.
//!   A file whose PID runs is kept: it is a client connecting right now, or a process that
//!   reuses a dead client's pid (its files go once that process has ended too). Another
//!   user's files are kept (`/dev/shm` is sticky: not ours to remove). A leftover thus
//!   lasts until the next connection, or the next start of the server. Pids are read in the
//!   server's pid namespace, as the rings' own liveness checks do: client and server must
//!   share one.
//! * **`ipcx clean` proves them stale.** Before creating each ring, the client records it in
//!   the owner registry ([`crate::registry`]) as `posix-shm:/NAME.link-PID-N-q`, the name
//!   `ipcx ls` gives a file without a ring header (and again once it exists); the record goes
//!   once the handshake is over. A half-made file left by a killed client therefore has a record whose creator is
//!   dead, and `ipcx clean` removes it (with no server running). A whole ring left that way
//!   has a dead publisher or subscriber, which `ipcx clean` already takes as stale.
//!
//! A peer that ends (cleanly or killed) is noticed by the ring: the reading side gets `Ok(None)`
//! once it has read everything the peer sent (the ring checks the publisher's pid and start
//! time while it waits).
//!
//! Messages are copied into the ring on send; on receive, [`Connection::recv_frame_with`] reads them
//! in place (the request/reply layer decodes them there), [`Connection::recv_frame_wait`] copies them
//! out. The largest frame is [`MAX_FRAME`].

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::channel::{Address, Connection, Endpoint, Error, Listener};
use crate::name::PosixName;
use crate::poison::lock;
use crate::registry::{self, Registration};
use crate::ring::{self, Publisher, Subscriber};
use crate::shm::Shm;
use crate::socket::{Credentials, UnixAddr, UnixListener, UnixStream};
use crate::wait::Wait;

/// The largest frame a ring link carries (1 MiB plus room for a request header).
pub const MAX_FRAME: usize = (1 << 20) + 4096;
/// How long the handshake on the accept socket may take, on either side.
const HANDSHAKE: Duration = Duration::from_secs(2);
const MAGIC: &[u8; 8] = b"IPCXSHM1";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn ring_options() -> ring::Options {
    ring::Options::new()
        .max_message(MAX_FRAME)
        .max_subscribers(1)
}

/// Validates `name` (`/NAME`) as the base of a ring link.
pub(crate) fn check_name(name: &str) -> Result<PosixName, String> {
    let n = PosixName::new(name).map_err(|e| e.to_string())?;
    // Room for ".link-PID-N-q".
    if n.as_str().len() > 200 {
        return Err("the name is too long for a ring link (at most 200 bytes)".into());
    }
    Ok(n)
}

fn accept_addr(name: &str) -> Result<UnixAddr, Error> {
    UnixAddr::parse(&format!("@ipcx-shm-link{name}")).map_err(|reason| Error::InvalidAddress {
        addr: format!("shm:{name}"),
        reason: reason.to_owned(),
    })
}

fn ring_err(what: &str, e: ring::RingError) -> Error {
    match e {
        ring::RingError::Timeout => Error::Timeout,
        ring::RingError::Empty => Error::WouldBlock,
        ring::RingError::Full => Error::Full { what: what.into() },
        ring::RingError::PeerGone { what } => Error::PeerGone { what },
        ring::RingError::TooLarge { len, max } => Error::TooLarge {
            len,
            max,
            what: what.into(),
        },
        other => Error::Io {
            context: what.into(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// One direction of a ring link as one handle holds it.
enum Half<T> {
    /// This handle alone uses it: no lock.
    Own(T),
    /// Shared with clones of the handle ([`Connection::try_clone`]).
    Shared(Arc<Mutex<T>>),
    /// Handed to another handle ([`Connection::take_reading_half`]).
    Gone,
}

impl<T> Half<T> {
    fn shared(t: T) -> Half<T> {
        Half::Shared(Arc::new(Mutex::new(t)))
    }

    /// Runs `f` on the direction, locking it only when it is shared.
    fn with<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut T) -> Result<R, Error>,
    ) -> Result<R, Error> {
        match self {
            Half::Own(t) => f(t),
            Half::Shared(m) => f(&mut lock(m)),
            Half::Gone => Err(Error::Io {
                context: format!("this handle of the ring link does not {what}"),
                source: std::io::Error::other("that direction was handed to another handle"),
            }),
        }
    }

    /// The same direction for a clone: `None` when this handle owns it alone.
    fn try_clone(&self) -> Option<Half<T>> {
        match self {
            Half::Own(_) => None,
            Half::Shared(m) => Some(Half::Shared(m.clone())),
            Half::Gone => Some(Half::Gone),
        }
    }

    /// Owns the direction alone if no clone shares it any more.
    fn into_own(self) -> Half<T> {
        match self {
            Half::Shared(m) => match Arc::try_unwrap(m) {
                Ok(m) => Half::Own(crate::poison::into_inner(m)),
                Err(m) => Half::Shared(m),
            },
            other => other,
        }
    }
}

/// A connection over two shared-memory rings (see the [module docs](self)).
pub struct ShmConnection {
    tx: Half<Publisher>,
    rx: Half<Subscriber>,
    cred: Option<Credentials>,
    peer: String,
    max: usize,
}

impl fmt::Debug for ShmConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmConnection")
            .field("peer", &self.peer)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl ShmConnection {
    /// Connects to the server of `shm:NAME` (`name` is `/NAME`), giving up at the deadline.
    pub fn connect(name: &str, wait: Wait) -> Result<ShmConnection, Error> {
        let base = check_name(name).map_err(|reason| Error::InvalidAddress {
            addr: format!("shm:{name}"),
            reason,
        })?;
        let addr = accept_addr(base.as_str())?;
        let timeout = wait.remaining().unwrap_or(HANDSHAKE).min(HANDSHAKE * 15);
        let mut sock =
            UnixStream::connect_timeout(&addr, timeout).map_err(|e| match Error::from(e) {
                Error::NotFound { .. } => Error::NotFound {
                    what: format!("ring link server at shm:{base}"),
                    hint: "start the server first".into(),
                },
                other => other,
            })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let req = format!("{base}.link-{pid}-{n}-q");
        let rep = format!("{base}.link-{pid}-{n}-r");
        // Recorded before the files exist, so that a client killed while creating them leaves
        // records that prove them stale; forgotten (dropped) once the handshake is over.
        let _records = [&req, &rep].map(|n| Registration::new(record_name(n)));
        let opts = ring_options();
        let tx = Publisher::create_new(&req, &opts).map_err(|e| ring_err("creating a ring", e))?;
        let rx = Subscriber::create_new(&rep, &opts).map_err(|e| ring_err("creating a ring", e))?;
        // Recorded again now that the files exist, so that a record can name the very file
        // (the registry may note an object's identity when recording it).
        for n in [&req, &rep] {
            registry::register(&record_name(n));
        }
        let mut hello = MAGIC.to_vec();
        for s in [&req, &rep] {
            hello.extend_from_slice(&(s.len() as u16).to_be_bytes());
            hello.extend_from_slice(s.as_bytes());
        }
        let hs = Wait::timeout(timeout);
        sock.send_frame_wait(&hello, hs)?;
        let answer = sock.recv_frame_wait(hs)?.ok_or_else(|| Error::PeerGone {
            what: format!("the server at shm:{base} closed during the handshake"),
        })?;
        if answer != b"OK" {
            return Err(Error::protocol(
                format!("shm:{base}"),
                String::from_utf8_lossy(answer.strip_prefix(b"NO").unwrap_or(&answer)),
            ));
        }
        // The server removed them already; this is for a server that did not. (On an error
        // above, dropping `tx` and `rx` removes them.)
        let _ = ring::remove(&req);
        let _ = ring::remove(&rep);
        let cred = sock.peer_credentials().ok();
        let peer = match cred {
            Some(c) => format!("shm:{base} (server pid {})", c.pid),
            None => format!("shm:{base}"),
        };
        Ok(ShmConnection {
            tx: Half::shared(tx),
            rx: Half::shared(rx),
            cred,
            peer,
            max: MAX_FRAME,
        })
    }
}

impl Connection for ShmConnection {
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        if msg.len() > self.max {
            return Err(Error::TooLarge {
                len: msg.len(),
                max: self.max,
                what: "the ring link's maximum frame length".into(),
            });
        }
        self.tx.with("send", |tx| {
            tx.send_wait(msg, wait)
                .map_err(|e| ring_err("the ring link", e))
        })
    }

    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        let mut out = None;
        self.recv_frame_with(wait, &mut |f| out = Some(f.to_vec()))?;
        Ok(out)
    }

    fn send_frame_parts(&mut self, parts: &[&[u8]], wait: Wait) -> Result<(), Error> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if len > self.max {
            return Err(Error::TooLarge {
                len,
                max: self.max,
                what: "the ring link's maximum frame length".into(),
            });
        }
        self.tx.with("send", |tx| {
            // Written straight into the ring: no joined copy.
            let mut loan = tx
                .loan_wait(len, wait)
                .map_err(|e| ring_err("the ring link", e))?;
            let mut at = 0;
            for p in parts {
                loan[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            loan.send().map_err(|e| ring_err("the ring link", e))
        })
    }

    fn recv_frame_with(&mut self, wait: Wait, f: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        let max = self.max;
        self.rx.with("receive", |rx| recv_on(rx, max, wait, f))
    }

    fn try_clone(&self) -> Result<Box<dyn Connection>, Error> {
        let (Some(tx), Some(rx)) = (self.tx.try_clone(), self.rx.try_clone()) else {
            return Err(Error::Io {
                context: "cloning a ring link handle".into(),
                source: std::io::Error::other(
                    "a handle split with take_reading_half cannot be cloned",
                ),
            });
        };
        Ok(Box::new(ShmConnection {
            tx,
            rx,
            cred: self.cred,
            peer: self.peer.clone(),
            max: self.max,
        }))
    }

    fn take_reading_half(&mut self) -> Result<Box<dyn Connection>, Error> {
        // Each handle then owns its direction alone (unless an earlier clone still shares
        // it): sending and receiving take no lock.
        let rx = std::mem::replace(&mut self.rx, Half::Gone).into_own();
        self.tx = std::mem::replace(&mut self.tx, Half::Gone).into_own();
        Ok(Box::new(ShmConnection {
            tx: Half::Gone,
            rx,
            cred: self.cred,
            peer: self.peer.clone(),
            max: self.max,
        }))
    }

    fn set_max_frame_len(&mut self, max: usize) {
        self.max = max.min(MAX_FRAME);
    }

    fn peer_credentials(&self) -> Option<Credentials> {
        self.cred
    }

    fn peer_name(&self) -> String {
        self.peer.clone()
    }
}

/// The owner-registry name of a client's ring `name` while it is being made (see the
/// [module docs](self)).
fn record_name(name: &str) -> String {
    format!("posix-shm:{name}")
}

/// Whether `rest` (what follows `/NAME.link-` in a name) is `PID-N-q` or `PID-N-r`, the name
/// of a client's ring, and that PID no longer runs.
fn dead_client(rest: &str) -> bool {
    let Some(rest) = rest.strip_suffix("-q").or_else(|| rest.strip_suffix("-r")) else {
        return false;
    };
    let Some((pid, n)) = rest.split_once('-') else {
        return false;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    number(pid)
        && number(n)
        && pid
            .parse::<i32>()
            .is_ok_and(|p| p > 0 && !registry::pid_alive(p))
}

/// Receives one frame from `rx` into `f` (see [`Connection::recv_frame_with`]). A publisher that
/// dies while we wait ends the ring's wait within its liveness tick (`PeerGone`), however long
/// the caller waits.
fn recv_on(
    rx: &mut Subscriber,
    max: usize,
    wait: Wait,
    f: &mut dyn FnMut(&[u8]),
) -> Result<bool, Error> {
    match rx.recv_wait(wait) {
        Ok(s) if s.len() > max => Err(Error::TooLarge {
            len: s.len(),
            max,
            what: "the ring link's maximum frame length".into(),
        }),
        Ok(s) => {
            // The sample is read in place, in the ring.
            f(&s);
            Ok(true)
        }
        Err(ring::RingError::Timeout) => Err(Error::Timeout),
        Err(ring::RingError::PeerGone { .. }) => Ok(false),
        Err(e) => Err(ring_err("the ring link", e)),
    }
}

/// The server side of `shm:/NAME`: accepts ring links (see the [module docs](self)).
#[derive(Debug)]
pub struct ShmListener {
    base: PosixName,
    sock: UnixListener,
}

impl ShmListener {
    /// Listens for ring links to `shm:NAME` (`name` is `/NAME`).
    pub fn bind(name: &str) -> Result<ShmListener, Error> {
        let base = check_name(name).map_err(|reason| Error::InvalidAddress {
            addr: format!("shm:{name}"),
            reason,
        })?;
        let sock = UnixListener::bind(&accept_addr(base.as_str())?)?;
        let listener = ShmListener { base, sock };
        listener.sweep();
        Ok(listener)
    }

    /// The base name (`/NAME`).
    pub fn name(&self) -> &str {
        self.base.as_str()
    }

    /// Accepts one client, waiting as `wait` allows for it to connect; the handshake itself
    /// takes at most two seconds.
    fn accept_connection(&self, wait: Wait) -> Result<ShmConnection, Error> {
        let (mut sock, cred) = self.sock.accept_wait(wait)?;
        self.sweep();
        let hs = Wait::timeout(HANDSHAKE);
        let peer = format!("shm:{} client pid {} uid {}", self.base, cred.pid, cred.uid);
        let f = sock.recv_frame_wait(hs)?.ok_or_else(|| Error::PeerGone {
            what: format!("{peer} left during the handshake"),
        })?;
        let (req, rep) = match self.parse_hello(&f) {
            Ok(names) => names,
            Err(reason) => {
                let _ = sock.send_frame_wait(format!("NO{reason}").as_bytes(), hs);
                return Err(Error::protocol(peer, reason));
            }
        };
        let opts = ring_options();
        let opened = Subscriber::open(&req, &opts).and_then(|rx| {
            let tx = Publisher::open(&rep, &opts)?;
            Ok((tx, rx))
        });
        let _ = ring::remove(&req);
        let _ = ring::remove(&rep);
        let (tx, rx) = match opened {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("the server could not open the client's rings: {e}");
                let _ = sock.send_frame_wait(format!("NO{reason}").as_bytes(), hs);
                return Err(Error::protocol(peer, reason));
            }
        };
        sock.send_frame_wait(b"OK", hs)?;
        Ok(ShmConnection {
            tx: Half::shared(tx),
            rx: Half::shared(rx),
            cred: Some(cred),
            peer,
            max: MAX_FRAME,
        })
    }

    /// Removes the rings that clients killed while connecting left under this server's name
    /// (see the [module docs](self)).
    fn sweep(&self) {
        let prefix = format!("{}.link-", self.base.as_str().trim_start_matches('/'));
        let Ok(dir) = std::fs::read_dir("/dev/shm") else {
            return;
        };
        let me = crate::trust::euid();
        for e in dir.flatten() {
            let file = e.file_name();
            let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            // The entry itself (never a symlink's target), of our own user: checked before the
            // pid, so another user's files cost one `stat` each.
            if !e.metadata().is_ok_and(|m| m.is_file() && m.uid() == me) || !dead_client(rest) {
                continue;
            }
            let name = format!("/{}", file.to_string_lossy());
            if Shm::unlink(&name).is_ok() {
                registry::unregister(&record_name(&name));
            }
        }
    }

    fn parse_hello(&self, f: &[u8]) -> Result<(String, String), String> {
        let mut rest = f
            .strip_prefix(MAGIC)
            .ok_or("not an ipcx ring link handshake")?;
        let mut names = Vec::with_capacity(2);
        for suffix in ["-q", "-r"] {
            let (len, tail) = rest.split_at_checked(2).ok_or("handshake cut short")?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let (name, tail) = tail.split_at_checked(len).ok_or("handshake cut short")?;
            rest = tail;
            let name = std::str::from_utf8(name).map_err(|_| "ring name is not UTF-8")?;
            let prefix = format!("{}.link-", self.base);
            if !name.starts_with(&prefix) || !name.ends_with(suffix) {
                return Err(format!(
                    "ring {name:?} does not belong to shm:{}",
                    self.base
                ));
            }
            PosixName::new(name).map_err(|e| e.to_string())?;
            names.push(name.to_owned());
        }
        if !rest.is_empty() {
            return Err("trailing bytes in the handshake".into());
        }
        let rep = names.pop().unwrap_or_default();
        let req = names.pop().unwrap_or_default();
        Ok((req, rep))
    }
}

impl Listener for ShmListener {
    fn accept_once(&self, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        Ok(Box::new(self.accept_connection(wait)?))
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        Endpoint::new("shm", Address::PosixName(self.base.clone()))
    }
}
