//! The receiving half of a message channel built on a transport's [`Connection`]s (TLS):
//! [`ConnectionReceiver`] accepts connection after connection and reads each on a thread of
//! its own, so that a peer that is slow to finish its handshake or its message holds up no
//! other.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Connection, Listener};
use crate::channel::{Error, Message, MessageReceiver, Meta, Options};
use crate::wait::Wait;

/// How often the threads of a receiver look whether it was dropped.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Messages read ahead of [`MessageReceiver::recv_wait`] before the readers stop reading
/// (and their senders wait).
const QUEUE: usize = 64;

/// A [`MessageReceiver`] serving every peer that connects to a [`Listener`], at most
/// `opts.max_connections` at once (past it, new peers wait in the listen backlog). A peer that
/// fails (a handshake refused, a malformed or oversize frame) is dropped alone and reported
/// as [`Error::PeerDropped`]; the receiver goes on serving. Each peer holds at most one
/// partial message (at most `opts.max_frame_len` bytes, growing with the bytes that arrived)
/// on its own thread: `opts.max_buffered` and `opts.idle_timeout` are not applied here.
#[derive(Debug)]
pub(super) struct ConnectionReceiver {
    rx: mpsc::Receiver<Result<Message, Error>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ConnectionReceiver {
    /// Serves the peers arriving on `listener`.
    pub(super) fn new(listener: Box<dyn Listener>, opts: &Options) -> Result<Self, Error> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let (max_conns, max_frame) = (opts.max_connections.max(1), opts.max_frame_len);
        let s = stop.clone();
        let acceptor = std::thread::Builder::new()
            .name("ipcx-recv-accept".into())
            .spawn(move || accept_loop(&*listener, &tx, &s, max_conns, max_frame))
            .map_err(|source| Error::Io {
                context: "spawning a receiver's accept thread".into(),
                source,
            })?;
        Ok(ConnectionReceiver {
            rx,
            stop,
            acceptor: Some(acceptor),
        })
    }
}

impl Drop for ConnectionReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The acceptor owns the listener: joining it frees the address.
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

impl MessageReceiver for ConnectionReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        let got = match wait {
            Wait::Forever => self
                .rx
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Wait::NoWait => self.rx.try_recv().map_err(|e| match e {
                mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
            }),
            Wait::Until(_) => self.rx.recv_timeout(wait.remaining().unwrap_or_default()),
        };
        match got {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) if wait == Wait::NoWait => Err(Error::WouldBlock),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Closed {
                what: "the receiver's accept thread".into(),
            }),
        }
    }
}

fn accept_loop(
    listener: &dyn Listener,
    tx: &mpsc::SyncSender<Result<Message, Error>>,
    stop: &Arc<AtomicBool>,
    max_conns: usize,
    max_frame: usize,
) {
    let live = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        if live.load(Ordering::SeqCst) >= max_conns {
            std::thread::sleep(STOP_CHECK);
            continue;
        }
        match listener.accept_wait(Wait::timeout(STOP_CHECK)) {
            Ok(mut conn) => {
                conn.set_max_frame_len(max_frame);
                let (tx, stop, live) = (tx.clone(), stop.clone(), live.clone());
                live.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("ipcx-recv-peer".into())
                    .spawn(move || {
                        read_peer(conn, &tx, &stop);
                        live.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    std::thread::sleep(STOP_CHECK);
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(e) => {
                // A refused peer (another user's) or no descriptors for now: say so if there
                // is room, and go on.
                let _ = tx.try_send(Err(e));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Reads one peer's messages until it leaves, fails, or the receiver is dropped.
fn read_peer(
    mut conn: Box<dyn Connection>,
    tx: &mpsc::SyncSender<Result<Message, Error>>,
    stop: &AtomicBool,
) {
    let meta = Meta {
        peer: Some(conn.peer_name()),
        ..Meta::default()
    };
    while !stop.load(Ordering::SeqCst) {
        match conn.recv_frame_wait(Wait::timeout(STOP_CHECK)) {
            Ok(Some(data)) => {
                let m = Message {
                    data,
                    meta: meta.clone(),
                };
                if tx.send(Ok(m)).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(Error::PeerGone { .. }) => return,
            Err(e) => {
                let _ = tx.send(Err(Error::PeerDropped {
                    peer: conn.peer_name(),
                    reason: e.to_string(),
                }));
                return;
            }
        }
    }
}
