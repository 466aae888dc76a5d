//! The typed async (tokio) client ([`AsyncRpcClient`]).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::Args;
use super::error::RpcError;
use super::error::{connect_error, reply_result, reply_with};
use crate::channel::Codec;
use crate::pattern::reqrep::Hello;
use crate::pattern::reqrep::async_client::AsyncClient;

/// An async RPC client (tokio): many calls can be outstanding at once on one connection, each
/// reply reaching its own caller; no call ties up a thread of tokio's blocking pool.
///
/// * **Unix sockets** (`unix:PATH`, `unix:@NAME`), **TCP** (`tcp:HOST:PORT`) and **TLS**
///   (`tls:HOST:PORT`, [`AsyncRpcClient::connect_tls`], feature `tls`): the connection is a tokio stream
///   (tokio-rustls for TLS); a reader task routes each reply to its call and a writer task
///   sends whole requests, so dropping a call's future never leaves half a request on the
///   connection.
/// * **Shared memory** (`shm:/NAME`): a ring cannot be polled by tokio, so each connection has
///   a reader thread of its own: it sleeps on the reply ring and completes each call's future
///   as its reply arrives (one hand-off per call, from that thread to the task). Requests are
///   copied into the request ring by the calling task itself when the ring has room (nothing
///   waits); only when it is full does a request go to the connection's writer thread, which
///   waits for room until the call's deadline. Cost: two threads per connection (the writer
///   idle unless the ring fills), and connecting runs once on the blocking pool (the ring
///   handshake blocks briefly). A server that dies is noticed by the reader thread within
///   the ring's liveness tick (about 20 ms): pending and later calls fail with
///   [`RpcError::PeerGone`].
#[derive(Debug, Clone)]
pub struct AsyncRpcClient {
    conn: Arc<AsyncClient>,
    service: Arc<str>,
    codec: Codec,
}

impl AsyncRpcClient {
    /// Connects to `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, `shm:/NAME`; `tls:` with
    /// [`AsyncRpcClient::connect_tls`]) as a
    /// client of `service` version `version`, giving up after `timeout`.
    pub async fn connect(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<AsyncRpcClient, RpcError> {
        Self::connect_with(addr, service, version, timeout, Codec::Postcard).await
    }

    /// Connects as [`AsyncRpcClient::connect`] does, calling in `codec` (see
    /// [`RpcClient::connect_with`](super::RpcClient::connect_with)).
    pub async fn connect_with(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
        codec: Codec,
    ) -> Result<AsyncRpcClient, RpcError> {
        let hello = Hello::new(service, version, codec);
        let conn = AsyncClient::connect(addr, &Default::default(), &hello, timeout)
            .await
            .map_err(|e| connect_error(e, version))?;
        Ok(AsyncRpcClient {
            conn,
            service: service.into(),
            codec,
        })
    }

    /// Connects to `addr` as a client of whatever service it serves, as
    /// [`RpcClient::connect_any`](super::RpcClient::connect_any) does.
    pub async fn connect_any(
        addr: &str,
        timeout: Duration,
        codec: Codec,
        opts: &crate::channel::ConnectionOptions,
    ) -> Result<AsyncRpcClient, RpcError> {
        let hello = Hello::new("", 0, codec);
        let conn = AsyncClient::connect(addr, opts, &hello, timeout)
            .await
            .map_err(|e| connect_error(e, 0))?;
        Ok(AsyncRpcClient {
            conn,
            service: addr.into(),
            codec,
        })
    }

    /// Connects to `addr` (`tls:HOST:PORT`) with the certificates of `tls`, natively on tokio
    /// (feature `tls`): the same checks as [`RpcClient::connect_tls`] with the same
    /// configuration. An untrusted server, or a server that wants a client certificate this
    /// client lacks or does not trust, is [`RpcError::Tls`]. Calls both the async server and
    /// the thread-based one.
    ///
    /// [`RpcClient::connect_tls`]: super::RpcClient::connect_tls
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        addr: &str,
        tls: &crate::channel::TlsConfig,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<AsyncRpcClient, RpcError> {
        let opts = crate::channel::ConnectionOptions::new().tls(tls.clone());
        let hello = Hello::new(service, version, Codec::Postcard);
        let conn = AsyncClient::connect(addr, &opts, &hello, timeout)
            .await
            .map_err(|e| connect_error(e, version))?;
        Ok(AsyncRpcClient {
            conn,
            service: service.into(),
            codec: Codec::Postcard,
        })
    }

    /// Calls `method` with `args`, waiting at most `timeout`.
    pub async fn call<A, R>(&self, method: &str, args: &A, timeout: Duration) -> Result<R, RpcError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let args = Args::encode(self.codec, args)
            .map_err(|e| RpcError::decode(method, "arguments", false, e))?;
        let bytes = args.bytes();
        let conn = &self.conn;
        let reply = conn
            .request(method, bytes, timeout)
            .await
            .map_err(|e| RpcError::from_transport(method, e))?;
        let max = conn.max_payload_len(method);
        reply_result(
            self.codec,
            method,
            &self.service,
            reply.status,
            &reply.payload,
            bytes.len(),
            max,
        )
    }

    /// Calls `method` with arguments already encoded in this client's codec, waiting at most
    /// `timeout`, and returns the result undecoded, as
    /// [`RpcClient::call_encoded`](super::RpcClient::call_encoded) does.
    pub async fn call_encoded(
        &self,
        method: &str,
        args: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let conn = &self.conn;
        let reply = conn
            .request(method, args, timeout)
            .await
            .map_err(|e| RpcError::from_transport(method, e))?;
        let sizes = (args.len(), conn.max_payload_len(method));
        reply_with(
            method,
            &self.service,
            reply.status,
            &reply.payload,
            sizes,
            |p| Ok(p.to_vec()),
        )
    }

    /// The codec this client calls in.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Whether calls avoid tokio's blocking pool. True over every transport (it was false
    /// over shared memory, before that client got its own reader thread).
    pub fn is_native(&self) -> bool {
        true
    }

    /// Whether the connection has ended (the server closed it, died, or sent garbage).
    pub fn is_dead(&self) -> bool {
        self.conn.is_dead()
    }
}
