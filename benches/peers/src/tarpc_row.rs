//! The `tarpc` row: an RPC call with tarpc 0.38 over a Unix stream socket (its serde transport,
//! bincode, tokio), to compare with ipcx's `rpc-unix`.
//!
//! The two rows have the same shape. The peer is the server: its one-method service (`echo`,
//! bytes in, bytes out) hands each call's arguments to the harness thread, which answers it
//! (the result goes back to the service task through a oneshot channel); tarpc's server runs
//! on a one-worker tokio runtime. The parent is the client: one call per round trip, driven by
//! `block_on` on a current-thread runtime (the fastest way to drive a tarpc client from
//! blocking code: no hand-off to a worker thread). The arguments are the harness's message,
//! so the smallest size measures a null call.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Pattern, Prepared, RowContext, Side};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};
use tokio::sync::oneshot;

#[tarpc::service]
trait Echo {
    /// Returns its argument.
    async fn echo(payload: Vec<u8>) -> Vec<u8>;
}

type Call = (Vec<u8>, oneshot::Sender<Vec<u8>>);

#[derive(Clone)]
struct EchoServer(mpsc::SyncSender<Call>);

impl Echo for EchoServer {
    async fn echo(self, _: context::Context, payload: Vec<u8>) -> Vec<u8> {
        let (tx, rx) = oneshot::channel();
        if self.0.send((payload, tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

/// The tarpc row.
#[derive(Debug, Clone, Copy)]
pub struct Tarpc;

fn failed(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError::Failed(format!("{what}: {e}"))
}

fn is_end(msg: &[u8]) -> bool {
    msg.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        == Some(u64::MAX)
}

impl Mechanism for Tarpc {
    fn name(&self) -> &str {
        "tarpc"
    }

    fn description(&self) -> &str {
        "tarpc 0.38 RPC call over a Unix stream socket (serde transport, bincode, tokio)"
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        // tarpc's length-delimited codec takes frames up to 8 MiB.
        if payload > (8 << 20) - 1024 {
            return Err("tarpc's transport takes frames up to 8 MiB".into());
        }
        Ok(())
    }

    fn patterns(&self) -> &[Pattern] {
        &[Pattern::PingPong]
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(ctx.socket_path("tarpc")))
    }

    fn open(&self, spec: &str, side: Side, _: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        match side {
            Side::Parent => Ok(Box::new(ClientHalf {
                path: spec.to_owned(),
            })),
            Side::Peer => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|e| failed("tokio runtime", e))?;
                let (tx, rx) = mpsc::sync_channel(1024);
                let path = spec.to_owned();
                let mut incoming = rt
                    .block_on(tarpc::serde_transport::unix::listen(
                        &path,
                        Bincode::default,
                    ))
                    .map_err(|e| failed(&format!("listening on {path}"), e))?;
                incoming.config_mut().max_frame_length(8 << 20);
                rt.spawn(async move {
                    while let Some(t) = incoming.next().await {
                        let Ok(t) = t else { continue };
                        let serve = EchoServer(tx.clone()).serve();
                        tokio::spawn(BaseChannel::with_defaults(t).execute(serve).for_each(
                            |f| async {
                                tokio::spawn(f);
                            },
                        ));
                    }
                });
                Ok(Box::new(ServerLink {
                    _rt: rt,
                    calls: rx,
                    current: None,
                    path,
                }))
            }
        }
    }
}

struct ClientHalf {
    path: String,
}

impl HalfOpen for ClientHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => Instant::now() + Duration::from_secs(10),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed("tokio runtime", e))?;
        let client = loop {
            let mut connect = tarpc::serde_transport::unix::connect(&self.path, Bincode::default);
            connect.config_mut().max_frame_length(8 << 20);
            match rt.block_on(connect) {
                Ok(t) => {
                    let _guard = rt.enter();
                    break EchoClient::new(client::Config::default(), t).spawn();
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(failed(&format!("connecting to {}", self.path), e)),
            }
        };
        Ok(Box::new(ClientLink {
            rt,
            client,
            request: Vec::new(),
        }))
    }
}

struct ClientLink {
    rt: tokio::runtime::Runtime,
    client: EchoClient,
    request: Vec<u8>,
}

fn call_context() -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + Duration::from_secs(10);
    ctx
}

impl Link for ClientLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        if is_end(msg) {
            // The end of a phase: the server answers it at once (the harness does not).
            let call = self.client.echo(call_context(), msg.to_vec());
            self.rt
                .block_on(call)
                .map_err(|e| LinkError::PeerGone(format!("tarpc call failed: {e}")))?;
            return Ok(());
        }
        self.request.clear();
        self.request.extend_from_slice(msg);
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, _wait: Wait) -> Result<(), LinkError> {
        let call = self
            .client
            .echo(call_context(), std::mem::take(&mut self.request));
        *buf = self
            .rt
            .block_on(call)
            .map_err(|e| LinkError::PeerGone(format!("tarpc call failed: {e}")))?;
        Ok(())
    }
}

struct ServerLink {
    _rt: tokio::runtime::Runtime,
    calls: mpsc::Receiver<Call>,
    current: Option<oneshot::Sender<Vec<u8>>>,
    path: String,
}

impl HalfOpen for ServerLink {
    fn connect(self: Box<Self>, _wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        Ok(self)
    }
}

impl Link for ServerLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        let tx = self
            .current
            .take()
            .ok_or_else(|| LinkError::Failed("a tarpc server only answers calls".into()))?;
        tx.send(msg.to_vec())
            .map_err(|_| LinkError::PeerGone("the tarpc call was cancelled".into()))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let (payload, tx) = match wait.remaining() {
            None => self
                .calls
                .recv()
                .map_err(|_| LinkError::PeerGone(format!("{} closed", self.path)))?,
            Some(left) => self.calls.recv_timeout(left).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => LinkError::Timeout,
                mpsc::RecvTimeoutError::Disconnected => {
                    LinkError::PeerGone(format!("{} closed", self.path))
                }
            })?,
        };
        if is_end(&payload) {
            // Not echoed by the harness: answered here so that the caller is not left waiting.
            let _ = tx.send(Vec::new());
        } else {
            self.current = Some(tx);
        }
        *buf = payload;
        Ok(())
    }
}

impl Drop for ServerLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
