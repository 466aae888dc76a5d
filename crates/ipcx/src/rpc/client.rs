//! The typed thread-based client ([`RpcClient`]).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::Args;
use super::error::RpcError;
use super::error::{connect_error, reply_result, reply_with};
use crate::channel::Codec;
use crate::pattern;
use crate::pattern::reqrep::{Client, ConnectError, Hello, Status};
use crate::wait::Wait;

/// A typed RPC client, cheap to clone and usable from many threads at once (calls are
/// multiplexed on one connection).
#[derive(Debug, Clone)]
pub struct RpcClient {
    inner: Client,
    service: String,
    codec: Codec,
}

impl RpcClient {
    /// Connects to `addr` as a client of `service` version `version`.
    pub fn connect(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<RpcClient, RpcError> {
        Self::connect_with(addr, service, version, timeout, Codec::Postcard)
    }

    /// Connects to `addr` as a client of `service` version `version` calling in `codec`
    /// ([`Codec::MsgPack`]: as a program in another language would; every server accepts
    /// both codecs). A server that does not know `codec` refuses with
    /// [`RpcError::UnknownCodec`].
    pub fn connect_with(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
        codec: Codec,
    ) -> Result<RpcClient, RpcError> {
        let hello = Hello::new(service, version, codec);
        let r = Client::connect_hello(addr, &hello, timeout);
        Self::finish_connect(r, service, version, codec)
    }

    /// Connects to `addr` as a client of whatever service it serves, in any version (a
    /// hello with an empty service name; see the repository's `docs/PROTOCOL.md`), calling
    /// in `codec`: for generic callers such as `ipcx call`, which learn the service's name
    /// and methods with [`RpcClient::describe`]. `opts` carries what the transport needs
    /// besides the address (a `tls:` address's certificates). Errors name the service by
    /// `addr`.
    pub fn connect_any(
        addr: &str,
        timeout: Duration,
        codec: Codec,
        opts: &crate::channel::ConnectionOptions,
    ) -> Result<RpcClient, RpcError> {
        let hello = Hello::new("", 0, codec);
        let r = Client::connect_with(addr, &hello, timeout, opts);
        Self::finish_connect(r, addr, 0, codec)
    }

    /// Connects to `addr` (`tls:HOST:PORT`) with the certificates of `tls`: the server's
    /// certificate must be signed by a root of its client configuration (see
    /// [`crate::channel::transport::tls::client_config`], which also sets a client certificate)
    /// and valid for the host of `addr` (or [`TlsConfig::server_name`]). An untrusted server,
    /// or a server that wants a client certificate this client lacks, is [`RpcError::Tls`].
    ///
    /// [`TlsConfig::server_name`]: crate::channel::TlsConfig::server_name
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        addr: &str,
        tls: &crate::channel::TlsConfig,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<RpcClient, RpcError> {
        let hello = Hello::new(service, version, Codec::Postcard);
        let opts = crate::channel::ConnectionOptions::new().tls(tls.clone());
        let r = Client::connect_with(addr, &hello, timeout, &opts);
        Self::finish_connect(r, service, version, Codec::Postcard)
    }

    fn finish_connect(
        r: Result<Client, ConnectError>,
        service: &str,
        version: u32,
        codec: Codec,
    ) -> Result<RpcClient, RpcError> {
        let inner = r.map_err(|e| connect_error(e, version))?;
        Ok(RpcClient {
            inner,
            service: service.to_owned(),
            codec,
        })
    }

    /// Calls `method` with `args`, waiting at most `timeout` for the result.
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<R, RpcError> {
        self.call_inner(method, args, |c, a, f| {
            c.request_with(method, a, timeout, f)
        })
    }

    /// Calls `method`, waiting as `wait` allows ([`Wait::Forever`]: no deadline).
    pub fn call_wait<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        wait: Wait,
    ) -> Result<R, RpcError> {
        self.call_inner(method, args, |c, a, f| {
            c.request_wait_with(method, a, wait, f)
        })
    }

    /// Calls `method` with arguments already encoded in this client's codec
    /// ([`RpcClient::codec`]), waiting as `wait` allows, and returns the result as the server
    /// encoded it, undecoded: for generic callers that convert values themselves (`ipcx call`
    /// turns JSON into MessagePack and back). The result is at most as large as the reply
    /// the connection accepts (16 MiB).
    pub fn call_encoded(&self, method: &str, args: &[u8], wait: Wait) -> Result<Vec<u8>, RpcError> {
        let max = self.inner.max_payload_len(method);
        let sizes = (args.len(), max);
        let service = &self.service;
        self.inner
            .request_wait_with(method, args, wait, |status, payload| {
                reply_with(method, service, status, payload, sizes, |p| Ok(p.to_vec()))
            })
            .map_err(|e| RpcError::from_transport(method, e))?
    }

    /// Encodes the arguments (on the stack when they are small), sends them with `send` and
    /// decodes the reply where the connection lends it.
    fn call_inner<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        send: impl FnOnce(
            &Client,
            &[u8],
            &mut dyn FnMut(Status, &[u8]) -> Result<R, RpcError>,
        ) -> Result<Result<R, RpcError>, pattern::Error>,
    ) -> Result<R, RpcError> {
        let codec = self.codec;
        let args = Args::encode(codec, args)
            .map_err(|e| RpcError::decode(method, "arguments", false, e))?;
        let bytes = args.bytes();
        let max = self.inner.max_payload_len(method);
        let len = bytes.len();
        let service = &self.service;
        send(&self.inner, bytes, &mut |status, payload| {
            reply_result(codec, method, service, status, payload, len, max)
        })
        .map_err(|e| RpcError::from_transport(method, e))?
    }

    /// The codec this client calls in.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The raw request/reply client underneath.
    pub fn raw(&self) -> &Client {
        &self.inner
    }
}
