//! The `ipc-channel` (servo) row: its bytes channel (`IpcBytesSender` / `IpcBytesReceiver`,
//! Unix seqpacket sockets underneath), bootstrapped with its one-shot server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Instant;

use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

use crate::handoff::setup_deadline;

/// What the peer sends the parent through the one-shot server: the parent's sender (to the
/// peer) and receiver (from the peer).
type Bootstrap = (IpcBytesSender, IpcBytesReceiver);

/// The ipc-channel row. The one-shot server is made in `prepare` (its name is the spec) and
/// kept here until the parent's `open` takes it.
#[derive(Default)]
pub struct IpcChannel {
    servers: Mutex<HashMap<String, IpcOneShotServer<Bootstrap>>>,
}

impl std::fmt::Debug for IpcChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpcChannel").finish_non_exhaustive()
    }
}

impl Mechanism for IpcChannel {
    fn name(&self) -> &str {
        "ipc-channel"
    }
    fn description(&self) -> &str {
        "ipc-channel 0.23 bytes channels (one per direction), bootstrapped by its one-shot server"
    }
    fn prepare(&self, _ctx: &RowContext) -> Result<Prepared, LinkError> {
        let (server, name) = IpcOneShotServer::<Bootstrap>::new()
            .map_err(|e| LinkError::Failed(format!("ipc-channel one-shot server: {e}")))?;
        self.servers
            .lock()
            .expect("not poisoned")
            .insert(name.clone(), server);
        Ok(Prepared::new(name))
    }
    fn open(&self, spec: &str, side: Side, _: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        match side {
            Side::Parent => {
                let server = self
                    .servers
                    .lock()
                    .expect("not poisoned")
                    .remove(spec)
                    .ok_or_else(|| LinkError::Failed("no one-shot server for this row".into()))?;
                Ok(Box::new(IpcParent {
                    server,
                    name: spec.to_owned(),
                }))
            }
            Side::Peer => {
                let err = |e: std::io::Error| LinkError::Failed(format!("bytes_channel: {e}"));
                let (a2b_tx, a2b_rx) = ipc::bytes_channel().map_err(err)?;
                let (b2a_tx, b2a_rx) = ipc::bytes_channel().map_err(err)?;
                Ok(Box::new(IpcPeer {
                    name: spec.to_owned(),
                    give: (a2b_tx, b2a_rx),
                    link: IpcLink {
                        tx: b2a_tx,
                        rx: a2b_rx,
                    },
                }))
            }
        }
    }
}

struct IpcParent {
    server: IpcOneShotServer<Bootstrap>,
    name: String,
}

struct IpcPeer {
    name: String,
    give: Bootstrap,
    link: IpcLink,
}

impl HalfOpen for IpcParent {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        // accept() has no timeout: wait for it on a thread, and unblock it ourselves if the
        // peer never comes.
        let (done_tx, done_rx) = mpsc::channel();
        let server = self.server;
        let waiter = std::thread::spawn(move || {
            let _ = done_tx.send(server.accept());
        });
        let left = setup_deadline(wait).saturating_duration_since(Instant::now());
        let got = match done_rx.recv_timeout(left) {
            Ok(r) => r,
            Err(_) => {
                if let Ok(s) = IpcSender::<Bootstrap>::connect(self.name.clone())
                    && let (Ok((a, _)), Ok((_, b))) = (ipc::bytes_channel(), ipc::bytes_channel())
                {
                    let _ = s.send((a, b));
                }
                let _ = waiter.join();
                return Err(LinkError::Failed(
                    "ipc-channel: the peer never connected to the one-shot server".into(),
                ));
            }
        };
        let _ = waiter.join();
        let (_rx, (tx, rx)) =
            got.map_err(|e| LinkError::Failed(format!("ipc-channel accept: {e:?}")))?;
        Ok(Box::new(IpcLink { tx, rx }))
    }
}

impl HalfOpen for IpcPeer {
    fn connect(self: Box<Self>, _wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let s = IpcSender::<Bootstrap>::connect(self.name)
            .map_err(|e| LinkError::Failed(format!("ipc-channel connect: {e}")))?;
        s.send(self.give)
            .map_err(|e| LinkError::Failed(format!("ipc-channel bootstrap: {e:?}")))?;
        Ok(Box::new(self.link))
    }
}

/// Blocking send and receive: ipc-channel's bytes receiver has no timeout, so a receive ends
/// with a message or with the other side's channel closing (its process exiting).
struct IpcLink {
    tx: IpcBytesSender,
    rx: IpcBytesReceiver,
}

impl Link for IpcLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        self.tx.send(msg).map_err(LinkError::from)
    }
    fn recv(&mut self, buf: &mut Vec<u8>, _wait: Wait) -> Result<(), LinkError> {
        match self.rx.recv() {
            Ok(v) => {
                *buf = v;
                Ok(())
            }
            Err(ipc_channel::IpcError::Disconnected) => {
                Err(LinkError::PeerGone("ipc-channel: the sender closed".into()))
            }
            Err(e) => Err(LinkError::Failed(format!("ipc-channel recv: {e:?}"))),
        }
    }
}
