//! Options for opening either side of an endpoint.

use std::time::Duration;

use super::transport::ConnectionOptions;
#[cfg(feature = "tls")]
use super::transport::tls::TlsConfig;
#[cfg(feature = "zenoh")]
use super::transport::zenoh::ZenohConfig;
use crate::framing::DEFAULT_MAX_FRAME_LEN;
use crate::trust::Trust;

#[cfg(doc)]
use super::Error;

/// Options for opening either side of an endpoint. Options that do not apply to a mechanism
/// are ignored by it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Mode for objects the call creates (default `0o600`).
    pub mode: u32,
    /// Sender: create the queue or FIFO when it is missing (receivers always do).
    pub create: bool,
    /// POSIX mq: the priority messages are sent with (default 0).
    pub priority: u32,
    /// System V mq: the type messages are sent with (default 1), or, for a receiver, msgrcv's
    /// selector: 0 any, `n > 0` that type, `n < 0` the lowest type up to `|n|` (default 0).
    pub mtype: Option<i64>,
    /// Framed endpoints: the longest message accepted (default 16 MiB).
    pub max_frame_len: usize,
    /// POSIX mq creation: capacity in messages (default: the system default).
    pub max_messages: Option<usize>,
    /// POSIX mq creation: largest message (default: the system default).
    pub max_message_size: Option<usize>,
    /// Connection-oriented senders, FIFO writers: how long to wait for the peer to appear
    /// (default: not at all: no listener, or no reader on the FIFO, is [`Error::PeerGone`]).
    pub connect_timeout: Option<Duration>,
    /// Which users' objects and peers are trusted besides our own (default: our own uid only;
    /// see [`crate::trust`]).
    pub trust: Trust,
    /// Receivers serving many peers (fifo, unix, unix-seqpacket, tcp): the most bytes held for
    /// incomplete messages of all peers together (default [`DEFAULT_MAX_BUFFERED`], 64 MiB).
    /// The peer whose partial frame would pass it is dropped ([`Error::PeerDropped`]).
    pub max_buffered: usize,
    /// Receivers serving many peers: the most connections served at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]). At the limit the receiver stops accepting; further
    /// senders wait in the kernel's listen backlog until a connected peer leaves.
    pub max_connections: usize,
    /// Receivers serving many peers: how long a peer may hold a partial frame without sending
    /// more of it before it is dropped (default 30 s; `None`: never). A peer that sends nothing
    /// between frames is never dropped for it.
    pub idle_timeout: Option<Duration>,
    /// `tls:` endpoints: the certificates (feature `tls`): a receiver's own certificate and
    /// key (and the client roots when senders must present certificates), a sender's roots
    /// (and its own certificate). Without them a `tls:` endpoint is
    /// [`Error::InvalidAddress`] saying which are missing.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
    /// `zenoh:` endpoints: how the process's Zenoh session is opened (feature `zenoh`; default:
    /// Zenoh's own, peer mode with multicast scouting). Every `zenoh:` endpoint of a process
    /// shares one session: the first opens it, and one asking for another configuration while
    /// it is open is [`Error::AlreadyExists`].
    #[cfg(feature = "zenoh")]
    pub zenoh: ZenohConfig,
}

/// Default [`Options::max_buffered`]: 64 MiB.
pub const DEFAULT_MAX_BUFFERED: usize = crate::framing::DEFAULT_MAX_BUFFERED;

/// Default [`Options::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default [`Options::idle_timeout`]: 30 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: 0o600,
            create: false,
            priority: 0,
            mtype: None,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_messages: None,
            max_message_size: None,
            connect_timeout: None,
            trust: Trust::own_user(),
            max_buffered: DEFAULT_MAX_BUFFERED,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "zenoh")]
            zenoh: ZenohConfig::default(),
        }
    }
}

impl Options {
    /// Default options.
    pub fn new() -> Options {
        Options::default()
    }
    /// Sets the creation mode.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// Lets a sender create a missing queue or FIFO.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
    /// Sets the POSIX mq send priority.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }
    /// Sets the System V message type (send) or selector (receive).
    pub fn mtype(mut self, mtype: i64) -> Self {
        self.mtype = Some(mtype);
        self
    }
    /// Sets the maximum frame length for framed endpoints.
    pub fn max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }
    /// Sets the POSIX mq capacity used when the queue is created.
    pub fn capacity(mut self, max_messages: usize, max_message_size: usize) -> Self {
        self.max_messages = Some(max_messages);
        self.max_message_size = Some(max_message_size);
        self
    }
    /// Sets the connect / open timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }
    /// Sets which other users' objects and peers are trusted.
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }
    /// Sets the cap on bytes buffered across all peers of one receiver.
    pub fn max_buffered(mut self, max: usize) -> Self {
        self.max_buffered = max;
        self
    }
    /// Sets the most connections one receiver serves at once.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }
    /// Sets how long a peer may hold a partial frame without progress (`None`: forever).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Sets the certificates of `tls:` endpoints.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
    /// What these options give a connection besides its address (trust, certificates).
    pub fn connection(&self) -> ConnectionOptions {
        let c = ConnectionOptions::new().trust(self.trust.clone());
        #[cfg(feature = "tls")]
        let c = ConnectionOptions {
            tls: self.tls.clone(),
            ..c
        };
        c
    }
    /// Sets how `zenoh:` endpoints open the process's Zenoh session.
    #[cfg(feature = "zenoh")]
    pub fn zenoh(mut self, zenoh: ZenohConfig) -> Self {
        self.zenoh = zenoh;
        self
    }
}
