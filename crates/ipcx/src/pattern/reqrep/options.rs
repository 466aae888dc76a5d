//! How a thread-based server serves ([`ServerOptions`]) and the hooks it runs.

use std::fmt;
use std::sync::Arc;

use super::handshake::{Admission, Authorize};
use super::request::Request;
use super::server_session::Call;
use super::wire::Status;

/// A handler run on the thread that read the request (see [`ServerOptions::handler`]). It
/// answers with [`Request::reply`]; a panic is caught (the connection goes on), but a handler
/// that panics before replying leaves its caller to time out, so catch panics and answer
/// [`Status::Panicked`] where that matters (the typed RPC layer does).
pub type Handler = Arc<dyn Fn(Request) + Send + Sync>;

/// A handler that answers a call lent in place (see [`ServerOptions::call_handler`]): it
/// writes the reply's payload into the buffer (empty on entry) and returns the reply's status;
/// the server sends the reply. A panic is caught and answered [`Status::Panicked`].
pub type CallHandler = Arc<dyn Fn(&Call<'_>, &mut Vec<u8>) -> Status + Send + Sync>;

/// Server settings.
#[derive(Clone)]
pub struct ServerOptions {
    /// The service name clients must ask for.
    pub service: String,
    /// The service version clients must ask for.
    pub version: u32,
    /// Largest request frame accepted (default 16 MiB).
    pub max_request_len: usize,
    /// Requests queued for [`Server::recv`] before connections stop being read (default
    /// 1024; unused with a [`handler`](ServerOptions::handler)).
    ///
    /// [`Server::recv`]: super::Server::recv
    pub queue_len: usize,
    /// Who may connect (default: everyone who can reach the address).
    pub authorize: Option<Authorize>,
    /// Runs each request on the thread that read it, instead of queueing it for
    /// [`Server::recv`] (default: none, queue). See the [module docs](super#serving).
    ///
    /// [`Server::recv`]: super::Server::recv
    pub handler: Option<Handler>,
    /// Like [`handler`](ServerOptions::handler) (and used instead of it when both are set),
    /// but the call is lent to the handler ([`Call`]) and its reply encoded into a buffer the
    /// connection thread reuses: no allocation per call. What [`crate::rpc`] uses.
    pub call_handler: Option<CallHandler>,
    /// With a handler: how many requests of one connection may run at once, that is how
    /// many threads may serve one connection (default 4, at least 1).
    pub threads_per_connection: usize,
    /// Which users may connect over Unix sockets (default: our own uid only; see
    /// [`crate::trust`]): another user's client is refused in the handshake
    /// ([`Refusal::Denied`], saying so). TCP clients carry no uid and are not checked.
    ///
    /// [`Refusal::Denied`]: super::Refusal::Denied
    pub trust: crate::trust::Trust,
    /// The server's certificates, for a `tls:` address (feature `tls`; default: none, and a
    /// `tls:` address is refused saying so). Each client's TLS handshake runs on the thread
    /// (or task) that serves it; a client that fails it is dropped alone.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::channel::transport::tls::TlsConfig>,
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("service", &self.service)
            .field("version", &self.version)
            .field("max_request_len", &self.max_request_len)
            .field("queue_len", &self.queue_len)
            .field("authorize", &self.authorize.is_some())
            .field("handler", &self.handler.is_some())
            .field("call_handler", &self.call_handler.is_some())
            .field("threads_per_connection", &self.threads_per_connection)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl ServerOptions {
    /// Options for `service` version `version`.
    pub fn new(service: &str, version: u32) -> ServerOptions {
        ServerOptions {
            service: service.to_owned(),
            version,
            max_request_len: crate::framing::DEFAULT_MAX_FRAME_LEN,
            queue_len: 1024,
            authorize: None,
            handler: None,
            call_handler: None,
            threads_per_connection: 4,
            trust: crate::trust::Trust::own_user(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ServerOptions {
    /// What the handshake checks a client's hello against.
    pub(crate) fn admission(&self) -> Admission<'_> {
        Admission {
            service: &self.service,
            version: self.version,
            authorize: self.authorize.as_ref(),
            trust: &self.trust,
            max_request_len: self.max_request_len,
        }
    }
}
