//! Typed RPC: services defined once as a set of named methods, called with serde types,
//! with a deadline on every call.
//!
//! ```no_run
//! use ipcx::rpc::{Service, RpcClient, RpcError};
//! use std::time::Duration;
//! // server process
//! let server = Service::new("calc", 1)
//!     .method("add", |args: (i32, i32)| Ok::<_, String>(args.0 + args.1))
//!     .method("div", |args: (i32, i32)| {
//!         if args.1 == 0 { Err("division by zero".to_string()) } else { Ok(args.0 / args.1) }
//!     })
//!     .serve("unix:@calc")?;
//! // client process
//! let client = RpcClient::connect("unix:@calc", "calc", 1, Duration::from_secs(5))?;
//! let sum: i32 = client.call("add", &(1, 2), Duration::from_secs(1))?;
//! assert_eq!(sum, 3);
//! match client.call::<_, i32>("div", &(1, 0), Duration::from_secs(1)) {
//!     Err(RpcError::Remote { message, .. }) => assert_eq!(message, "division by zero"),
//!     other => panic!("{other:?}"),
//! }
//! # drop(server);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * **Wire**: arguments and results are serde values inside
//!   [`reqrep`](crate::pattern::reqrep) frames, encoded in the [`Codec`] the client named in
//!   its hello: postcard by default, MessagePack ([`RpcClient::connect_with`]) for programs in
//!   other languages. Every server answers both, each connection in its own codec, with no
//!   change to the service's code (the repository's `docs/PROTOCOL.md` specifies the wire).
//!   The connection starts with a versioned handshake (protocol version, service name, service
//!   version, codec): a mismatch fails at connect with [`RpcError::VersionMismatch`] (or
//!   [`RpcError::WrongService`], [`RpcError::UnknownCodec`]) saying why.
//! * **Describing**: every server answers the reserved method [`DESCRIBE`] (`ipcx.describe`)
//!   with its name, version and methods ([`RpcClient::describe`] returns a [`Description`]);
//!   [`RpcClient::connect_any`] reaches a server without naming its service, for generic
//!   callers such as `ipcx call`, and [`RpcClient::call_encoded`] calls with arguments they
//!   encoded themselves. Method names starting with [`RESERVED_PREFIX`] (`ipcx.`) are the
//!   protocol's.
//! * **Deadlines**: every call has one. Past it the call fails with [`RpcError::Timeout`]; the
//!   server does not start a call whose deadline passed, and handlers registered with
//!   [`Service::method_ctx`] see it ([`CallContext::deadline`], [`CallContext::expired`]) and
//!   can stop early.
//! * **Robust server**: each call runs under `catch_unwind`: a panicking handler answers
//!   [`RpcError::HandlerPanicked`] and the server goes on; malformed frames and oversize
//!   requests end only the offending connection; a client that vanishes mid-call costs the
//!   server nothing but the work of that call, and handlers can notice it
//!   ([`CallContext::caller_gone`], [`CallContext::cancelled`]) and stop early.
//! * **Authorisation**: [`Service::authorize`] sees each connecting peer's kernel-verified
//!   uid/gid/pid (Unix sockets) and may refuse it ([`RpcError::Denied`]).
//! * **Transports**: Unix sockets (`unix:PATH`, `unix:@NAME`), TCP (`tcp:HOST:PORT`) and
//!   shared-memory rings (`shm:/NAME`: a pair of rings per connection, set up through a
//!   handshake on an abstract Unix socket that also gives the server the client's
//!   credentials; see [`crate::channel::transport::shm::link`]);
//!   with the `tls` feature, TLS (`tls:HOST:PORT`, certificates given beside the address:
//!   `Service::tls`, `RpcClient::connect_tls`): the client always verifies the server's
//!   certificate, and the server can require client certificates (see
//!   [`crate::channel::transport::tls`]).
//! * **Async**: with the `tokio` feature, [`AsyncRpcClient`] offers `async fn call` over
//!   every transport without tying up tokio's blocking pool: natively over Unix sockets, TCP
//!   and TLS ([`AsyncRpcClient::connect_tls`], tokio-rustls; reader and writer tasks), and
//!   over shared memory with a reader thread per connection that completes each call's future.
//!   [`AsyncService`] serves async handlers (and sync ones) from inside a tokio runtime:
//!   natively over Unix sockets, TCP and TLS ([`AsyncService::tls`]), through a
//!   bridge thread over shared memory (see [`AsyncService`]). Sync and async clients and
//!   servers all speak the same protocol (and the same TLS policy).
//!   A thread-based server ([`Service::serve`]) also runs fine inside an async program (it
//!   does not block the runtime).
//!
//! This module is the typed layer only: service definitions and how a call reaches its
//! handler (`service`, `async_service`), the typed clients (`client`, `async_client`), the
//! call's context, errors and codec. Connections, frames, the handshake and the deadline on
//! the wire belong to the request/reply engine underneath ([`crate::pattern::reqrep`]).

mod by_name;
mod client;
mod codec;
mod context;
mod describe;
mod error;
mod service;

#[cfg(feature = "tokio")]
mod async_client;
#[cfg(feature = "tokio")]
mod async_service;

pub use crate::channel::Codec;
pub use client::RpcClient;
pub use context::CallContext;
pub use describe::{DESCRIBE, Description, RESERVED_PREFIX};
pub use error::RpcError;
pub use service::{RunningService, Service};

#[cfg(feature = "tokio")]
pub use async_client::AsyncRpcClient;
#[cfg(feature = "tokio")]
pub use async_service::{AsyncRunningService, AsyncService};
