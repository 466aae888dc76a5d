//! Request/reply: many clients, many servers, replies routed to the right caller, many
//! outstanding requests per connection, a deadline on every request.
//!
//! A [`Server`] binds an address ([`Endpoint`](crate::channel::Endpoint)); a [`Client`]
//! connects, introduces itself with a versioned handshake ([`Hello`]), and sends
//! [`Frame::Request`]s, each with an id, a method name, a payload and the time left before its
//! deadline. Replies carry the request's id, so any number of threads can share one client
//! ([`Client`] is `Clone + Send + Sync`) and replies may come back in any order. Past its
//! deadline a request fails with [`Error::Timeout`](crate::pattern::Error::Timeout) on the
//! client; the server sees the deadline ([`Request::deadline`]) and does not start a request
//! whose deadline has passed. A [`ClientPool`] spreads requests over
//! several servers and skips dead ones.
//!
//! The server's [`Authorize`] hook sees each connecting peer's kernel-verified credentials
//! (Unix sockets) and may refuse the connection.
//!
//! The typed RPC layer ([`crate::rpc`]) is built on this module.
//!
//! # Layout
//! One engine: each side of a connection is one state machine without IO, which the
//! thread-based and the async (feature `tokio`) ends both run, over the same protocol:
//! * `wire`: the frames, reply statuses, refusals, and the limits and timeouts both ends
//!   share;
//! * `handshake`: the hello, the server's checks and answer, and how a client reads it (used
//!   by every client and server), with who connected ([`Peer`]) and why a connection was
//!   refused ([`ConnectError`]);
//! * `client_session`: **the client's state machine**: what happens when a call starts (checks,
//!   id, deadline, the request's header), when a frame arrives (whose reply it is; a late,
//!   unknown or second reply is ignored; garbage ends the connection), when a call gives up
//!   (deadline, caller gone) and when the connection ends (every waiting call fails, in one set
//!   of words), with the [`Reply`] a call gets;
//! * `server_session`: **the server's state machine**: the hello (checks, welcome or refusal,
//!   codec), each request (decoded where it lies into a [`Call`], with its deadline; anything
//!   else ends the connection), a panicking handler, the connection's end (calls in progress
//!   learn that nobody waits), and the reply frame (one too large for the client becomes an
//!   error saying so);
//! * `client` ([`Client`], [`ClientPool`]) and `async_client` (the engine under
//!   [`crate::rpc::AsyncRpcClient`]): the thread-based and tokio drivers of a client session:
//!   they move the bytes and wake the callers;
//! * `request` ([`Request`]), `options` ([`ServerOptions`]), `connection` ([`Connection`])
//!   and `server` ([`Server`]): the thread-based drivers of a server session; `async_server`:
//!   the tokio one (native over Unix sockets, TCP and TLS, bridged to [`Server`] over shared
//!   memory), under [`crate::rpc::AsyncService`];
//! * `transport`: the one place that turns addresses into connections and listeners.
//!
//! # Serving
//! A request is answered without passing it between threads wherever that can be avoided,
//! since each hand-off costs a futex wake-up (what that costs next to a round trip: the
//! request/reply section of the benchmark's README):
//! * **Handler mode** ([`ServerOptions::handler`], what [`crate::rpc`] uses): the thread that
//!   reads a connection runs the request itself and writes the reply itself. Before running it,
//!   the thread puts the connection's reading half back; if a request runs for longer than
//!   about 0.2 ms while nobody reads its connection, the server's watcher thread starts another
//!   thread on that connection (up to [`ServerOptions::threads_per_connection`]), which reads
//!   and runs the next request; a thread that finishes a request and finds another thread
//!   reading leaves. So a lone caller is served by one thread with no hand-off, concurrent
//!   calls on one connection still run side by side, and a caller that vanishes during a long
//!   call is noticed (by the thread that took over reading). The watcher ticks only while
//!   requests run and sleeps otherwise. A panicking handler is caught; the connection goes on.
//! * **Queue mode** (no handler): each connection's thread queues requests for whichever
//!   thread calls [`Server::recv`].
//! * **One connection, one thread** ([`Connection`]): a program may accept a connection and
//!   read its requests on its own thread ([`Connection::recv_wait`]), replying from it.
//!
//! On the client, a caller that finds nobody reading replies takes the reading half before
//! sending and reads its own reply (the ring spins briefly, then sleeps); callers that come
//! while another reads register in a table, and whoever reads stores their replies and wakes
//! them. Frames are decoded where the link lends them
//! ([`Connection::recv_frame_with`](crate::channel::Connection::recv_frame_with): in place in the ring).
//!
//! # Wire format
//! Every message is one ipcx frame; [`Frame::decode`] reads one, checking every length
//! against the bytes present (it never panics and never allocates more than the frame).
//! Integers are big-endian.
//! ```text
//! hello     'I' 'P' 'C' 'X' 'R' 'Q' proto:u16 service_version:u32 service_len:u16 service
//!           [codec:u8] (absent: 0, postcard; 1: MessagePack)
//! welcome   0x10 max_frame:u32
//! refused   0x11 reason:u8 server_proto:u16 server_version:u32 msg_len:u16 msg
//! request   0x01 id:u64 deadline_ms:u32 (0: none) method_len:u16 method payload
//! reply     0x02 id:u64 status:u8 payload
//! ```
//! Payloads are opaque here; the typed layer encodes them in the connection's
//! [`Codec`](crate::channel::Codec), which the client names in its hello and the server
//! answers in. The whole protocol, for writing a client in another language, is in the
//! repository's `docs/PROTOCOL.md`.

mod client;
mod client_session;
mod connection;
mod handshake;
mod options;
mod request;
mod server;
mod server_session;
mod transport;
mod wire;

#[cfg(feature = "tokio")]
pub(crate) mod async_client;
#[cfg(feature = "tokio")]
pub(crate) mod async_server;

pub use client::{Client, ClientPool};
pub use client_session::Reply;
pub use connection::Connection;
pub use handshake::{Authorize, ConnectError, Peer, Refused};
pub use options::{CallHandler, Handler, ServerOptions};
pub use request::Request;
pub use server::Server;
pub use server_session::Call;
pub use wire::{DecodeError, Frame, Hello, MAX_NAME_LEN, PROTOCOL_VERSION, Refusal, Status};
