//! The async (tokio) client: many calls outstanding on one connection, each reply completing
//! its call's future. Over a tokio stream (Unix socket, TCP, TLS) a reader task routes the
//! replies and a writer task sends whole requests; over a ring link (`shm:`), which tokio
//! cannot poll, a reader thread completes the calls and a writer thread takes the requests
//! that found the ring full. What happens on each event is the client's state machine's
//! ([`super::client_session`]), as for the thread-based client. The typed wrapper is
//! [`crate::rpc::AsyncRpcClient`].

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::client_session::{Calls, ClientSession, Read, Reply, Waiter};
use super::handshake::{self, ConnectError};
use super::transport::{self, BoxRead, BoxWrite};
use super::wire::{DecodeError, Frame, Hello};
use crate::channel::Connection as Link;
use crate::channel::ConnectionOptions;
use crate::framing::{self, FrameDecoder};
use crate::pattern::Error;
use crate::poison::lock;
use crate::wait::Wait;

/// How long the ring reader thread waits at a time before looking whether its client is
/// still there.
const RING_POLL: Duration = Duration::from_millis(250);

/// Where requests go.
#[derive(Debug)]
enum Out {
    /// Length-prefixed frames for the writer task of a tokio stream.
    Stream(mpsc::UnboundedSender<Vec<u8>>),
    /// A ring link: the calling task writes when there is room; otherwise the writer
    /// thread waits for room (frame, and how long it may wait).
    Ring {
        link: Arc<Mutex<Box<dyn Link>>>,
        backlog: std::sync::mpsc::Sender<(Vec<u8>, Wait)>,
    },
}

/// What an async call waits on: the sending end of its future (gone once the call has its
/// reply, or once the connection ended: dropping it ends the future).
#[derive(Debug)]
struct Answer(Option<oneshot::Sender<Reply>>);

impl Waiter for Answer {
    fn is_done(&self) -> bool {
        self.0.is_none()
    }
    fn answer(&mut self, reply: Reply) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(reply);
        }
    }
    fn fail(&mut self) {
        self.0 = None;
    }
}

/// One connection to a server, shared by the calls on it.
#[derive(Debug)]
pub(crate) struct AsyncClient {
    out: Out,
    /// The calls waiting, each with the sending end of its future.
    pending: Mutex<Calls<Answer>>,
    session: ClientSession,
    /// The reader task of a stream (the ring reader thread ends on its own once the
    /// client is gone).
    reader: Option<tokio::task::AbortHandle>,
}

impl Drop for AsyncClient {
    fn drop(&mut self) {
        if let Some(r) = &self.reader {
            r.abort();
        }
    }
}

impl AsyncClient {
    fn new(out: Out, max_frame: usize, addr: &str) -> AsyncClient {
        AsyncClient {
            out,
            pending: Mutex::new(Calls::new()),
            session: ClientSession::new(max_frame, addr),
            reader: None,
        }
    }

    /// Connects to `addr` with what `opts` gives besides the address, introducing itself
    /// with `hello`, giving up after `timeout`.
    pub(crate) async fn connect(
        addr: &str,
        opts: &ConnectionOptions,
        hello: &Hello,
        timeout: Duration,
    ) -> Result<Arc<AsyncClient>, ConnectError> {
        if transport::is_ring(addr)? {
            return Self::connect_ring(addr, opts, hello, timeout).await;
        }
        let go = async {
            let (r, w) = transport::connect_stream(addr, opts).await?;
            Self::over_stream(r, w, addr, hello).await
        };
        tokio::time::timeout(timeout, go)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Runs the handshake on a connected stream, then starts its reader and writer tasks.
    async fn over_stream(
        mut r: BoxRead,
        mut w: BoxWrite,
        addr: &str,
        hello: &Hello,
    ) -> Result<Arc<AsyncClient>, ConnectError> {
        let frame = framing::encode_frame(
            &Frame::Hello(hello.clone()).encode(),
            framing::DEFAULT_MAX_FRAME_LEN,
        )
        .map_err(|e| Error::from(crate::socket::SocketError::from(e)))?;
        let sent = async {
            w.write_all(&frame).await?;
            w.flush().await
        }
        .await;
        let mut dec = FrameDecoder::new(framing::DEFAULT_MAX_FRAME_LEN);
        let mut buf = vec![0u8; 64 * 1024];
        // Read even when sending failed: a TLS server that refused this client's
        // certificate may have said why before closing.
        let got = transport::read_frame(&mut r, &mut dec, &mut buf, addr).await;
        let f = match (sent, got) {
            (_, Err(e @ Error::Tls { .. })) => return Err(e.into()),
            (Err(source), _) => {
                return Err(Error::Io {
                    context: format!("sending the hello to {addr}"),
                    source,
                }
                .into());
            }
            (Ok(()), Err(e)) => return Err(e.into()),
            (Ok(()), Ok(None)) => return Err(handshake::closed_in_handshake(addr).into()),
            (Ok(()), Ok(Some(f))) => f,
        };
        let max_frame = handshake::read_welcome(&f, addr)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = Arc::new_cyclic(|weak: &Weak<AsyncClient>| {
            let mut c = AsyncClient::new(Out::Stream(tx), max_frame, addr);
            c.reader = Some(
                tokio::spawn(read_replies(r, dec, buf, weak.clone(), addr.to_owned()))
                    .abort_handle(),
            );
            c
        });
        tokio::spawn(write_requests(w, rx, Arc::downgrade(&conn)));
        Ok(conn)
    }

    /// Connects over a pair of rings: the ring handshake and the hello run once on the
    /// blocking pool, then the reader and writer threads start.
    async fn connect_ring(
        addr: &str,
        opts: &ConnectionOptions,
        hello: &Hello,
        timeout: Duration,
    ) -> Result<Arc<AsyncClient>, ConnectError> {
        let (addr_s, h, opts) = (addr.to_owned(), hello.clone(), opts.clone());
        let (link, reader, max_frame) = tokio::task::spawn_blocking(move || {
            let wait = Wait::timeout(timeout);
            let mut link = transport::connect(&addr_s, wait, &opts)?;
            let max = handshake::greet(&mut *link, &addr_s, &h, wait)?;
            let reader = link.take_reading_half()?;
            Ok::<_, ConnectError>((link, reader, max))
        })
        .await
        .map_err(|e| Error::Io {
            context: "connecting".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
        let max_frame = max_frame.min(crate::channel::transport::shm::MAX_FRAME);
        let link = Arc::new(Mutex::new(link));
        let (btx, brx) = std::sync::mpsc::channel();
        let conn = Arc::new(AsyncClient::new(
            Out::Ring {
                link: link.clone(),
                backlog: btx,
            },
            max_frame,
            addr,
        ));
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|source| Error::Io {
                    context: "starting a thread of the async ring client".into(),
                    source,
                })
        };
        let weak = Arc::downgrade(&conn);
        spawn(
            "ipcx-rpc-ring-read",
            Box::new(move || read_ring(reader, weak)),
        )?;
        let weak = Arc::downgrade(&conn);
        spawn(
            "ipcx-rpc-ring-write",
            Box::new(move || write_ring(link, brx, weak)),
        )?;
        Ok(conn)
    }

    /// The largest request payload the server accepts for `method`.
    pub(crate) fn max_payload_len(&self, method: &str) -> usize {
        self.session.max_payload_len(method)
    }

    /// Whether the connection has ended.
    pub(crate) fn is_dead(&self) -> bool {
        lock(&self.pending).ended().is_some()
    }

    fn set_dead(&self, why: String) {
        lock(&self.pending).close(why);
    }

    fn gone(&self) -> Error {
        self.session.gone(lock(&self.pending).ended())
    }

    /// Hands the reply in frame `f` to its caller (if it still waits); `Err`: `f` is not a
    /// reply.
    fn route(&self, f: &[u8]) -> Result<(), DecodeError> {
        let (id, status, payload) = self.session.on_frame(f)?;
        lock(&self.pending).deliver(id, status, payload);
        Ok(())
    }

    /// Acts on what a read came to (`got`: a frame read, the end, or an error; `bad`: why
    /// the frame was not a reply); `false` when the connection has ended.
    fn after_read(&self, got: Result<bool, Error>, bad: Option<DecodeError>) -> bool {
        match self.session.on_read(got, bad) {
            Read::Frame | Read::Nothing => true,
            Read::Ended(why) => {
                self.set_dead(why);
                false
            }
        }
    }

    /// Sends a request frame; `Err` when the connection is over.
    fn send(&self, frame: Vec<u8>, timeout: Duration) -> Result<(), Error> {
        match &self.out {
            Out::Stream(tx) => tx.send(frame).map_err(|_| self.gone()),
            Out::Ring { link, backlog } => {
                // None: the writer thread waits for room: queue behind it.
                let mut guard = crate::poison::try_lock(link);
                if let Some(l) = guard.as_mut() {
                    match l.send_frame_wait(&frame, Wait::NoWait) {
                        Ok(()) => return Ok(()),
                        Err(Error::Full { .. } | Error::WouldBlock | Error::Timeout) => {}
                        Err(e) => {
                            drop(guard);
                            self.set_dead(self.session.on_failed(&e));
                            return Err(self.gone());
                        }
                    }
                }
                drop(guard);
                backlog
                    .send((frame, Wait::timeout(timeout)))
                    .map_err(|_| self.gone())
            }
        }
    }

    /// Sends a request and waits at most `timeout` for its reply.
    pub(crate) async fn request(
        &self,
        method: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let out = self
            .session
            .start_call(method, payload.len(), Some(timeout))?;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).register(out.id, Answer(Some(tx)), &self.session)?;
        // Removes the entry however the call ends (reply, timeout, or its future dropped).
        let _forget = Forget(self, out.id);
        let parts = [&out.head[..], method.as_bytes(), payload];
        let frame = match &self.out {
            Out::Stream(_) => {
                let len = parts.iter().map(|p| p.len()).sum();
                let prefix = framing::encode_header(len, len)
                    .map_err(|e| Error::from(crate::socket::SocketError::from(e)))?;
                [&prefix[..], &out.head, method.as_bytes(), payload].concat()
            }
            Out::Ring { .. } => parts.concat(),
        };
        self.send(frame, timeout)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(self.gone()),
            Err(_) => Err(Error::Timeout),
        }
    }
}

/// Forgets a call's entry in the pending table when the call ends.
struct Forget<'a>(&'a AsyncClient, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.0.pending).forget(self.1);
    }
}

async fn write_requests(
    mut w: BoxWrite,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    conn: Weak<AsyncClient>,
) {
    while let Some(frame) = rx.recv().await {
        let mut r = w.write_all(&frame).await;
        // Requests queued meanwhile go out before the flush (which TLS needs).
        if r.is_ok() && rx.is_empty() {
            r = w.flush().await;
        }
        if let Err(e) = r {
            if let Some(c) = conn.upgrade() {
                c.set_dead(c.session.on_failed(&e));
            }
            return;
        }
    }
}

async fn read_replies(
    mut r: BoxRead,
    mut dec: FrameDecoder,
    mut buf: Vec<u8>,
    conn: Weak<AsyncClient>,
    addr: String,
) {
    loop {
        let got = transport::read_frame(&mut r, &mut dec, &mut buf, &addr).await;
        let Some(c) = conn.upgrade() else { return };
        let (got, bad) = match got {
            Ok(Some(f)) => (Ok(true), c.route(&f).err()),
            Ok(None) => (Ok(false), None),
            Err(e) => (Err(e), None),
        };
        if !c.after_read(got, bad) {
            return;
        }
    }
}

/// The ring reader thread: completes each call as its reply arrives, until the server
/// is gone or the client is.
fn read_ring(mut reader: Box<dyn Link>, conn: Weak<AsyncClient>) {
    loop {
        let (mut client, mut bad) = (None, None);
        let got = reader.recv_frame_with(Wait::timeout(RING_POLL), &mut |f| {
            client = conn.upgrade();
            if let Some(c) = &client {
                bad = c.route(f).err();
            }
        });
        let Some(c) = client.or_else(|| conn.upgrade()) else {
            return;
        };
        if !c.after_read(got, bad) {
            return;
        }
    }
}

/// The ring writer thread: sends the requests that found the ring full, each waiting for
/// room until its call's deadline. Ends with the client.
fn write_ring(
    link: Arc<Mutex<Box<dyn Link>>>,
    backlog: std::sync::mpsc::Receiver<(Vec<u8>, Wait)>,
    conn: Weak<AsyncClient>,
) {
    for (frame, wait) in backlog {
        match lock(&link).send_frame_wait(&frame, wait) {
            // Still full at the deadline: that call has timed out meanwhile.
            Ok(()) | Err(Error::Full { .. } | Error::WouldBlock | Error::Timeout) => {}
            Err(e) => {
                if let Some(c) = conn.upgrade() {
                    c.set_dead(c.session.on_failed(&e));
                }
                return;
            }
        }
    }
}
