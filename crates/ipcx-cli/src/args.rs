//! Flags that several commands share (below both `cli` and the commands).

use std::time::Duration;

use clap::Args;

use crate::parse::{parse_duration, parse_mode, parse_size};

/// Flags shared by `send` and `recv`.
#[derive(Debug, Args)]
pub struct EndpointFlags {
    /// Bound each wait (e.g. 500ms, 5s); on expiry exit with status 3.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Byte streams (fifo, unix, tcp): copy bytes verbatim, no framing.
    #[arg(long)]
    pub raw: bool,
    /// POSIX mq: send priority.
    #[arg(long, default_value_t = 0)]
    pub priority: u32,
    /// System V mq: message type (send), or msgrcv selector (recv: 0 any, >0 that type, <0
    /// lowest type up to |N|).
    #[arg(long = "type", allow_hyphen_values = true)]
    pub mtype: Option<i64>,
    /// Mode for objects this command creates (octal).
    #[arg(long, value_parser = parse_mode, default_value = "600")]
    pub mode: u32,
    /// send: create the queue or FIFO when it is missing.
    #[arg(long)]
    pub create: bool,
    /// Largest framed message accepted (bytes).
    #[arg(long, default_value_t = ipcx::framing::DEFAULT_MAX_FRAME_LEN)]
    pub max_frame: usize,
    /// Whose objects and peers are trusted.
    #[command(flatten)]
    pub trust: TrustFlags,
    /// recv on unix, unix-seqpacket, tcp: the most bytes of partial messages buffered across
    /// all senders together (e.g. 64m); the sender whose message would pass it is dropped.
    #[arg(long, value_parser = parse_size, default_value = "64m", value_name = "SIZE")]
    pub max_buffered: u64,
    /// recv on unix, unix-seqpacket, tcp: the most senders served at once; past it, new
    /// senders wait (in the listen backlog) until one leaves.
    #[arg(long, default_value_t = ipcx::channel::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,
    /// recv on unix, tcp: drop a sender that stops in the middle of a message for this long
    /// (e.g. 30s; 0 never). A sender quiet between messages is never dropped.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DUR")]
    pub idle_timeout: Duration,
}

impl EndpointFlags {
    /// The library options these flags describe.
    pub fn options(&self) -> ipcx::channel::Options {
        let mut o = ipcx::channel::Options::new()
            .mode(self.mode)
            .create(self.create)
            .priority(self.priority)
            .max_frame_len(self.max_frame)
            .max_buffered(usize::try_from(self.max_buffered).unwrap_or(usize::MAX))
            .max_connections(self.max_connections)
            .idle_timeout((!self.idle_timeout.is_zero()).then_some(self.idle_timeout));
        if let Some(t) = self.mtype {
            o = o.mtype(t);
        }
        if let Some(t) = self.timeout {
            o = o.connect_timeout(t);
        }
        o.trust(self.trust.trust())
    }
}

/// The same-user rule's flags, shared by every command that opens existing objects.
#[derive(Debug, Args)]
pub struct TrustFlags {
    /// Also trust objects and peers of this user id (repeatable). By default only our own
    /// user's are: an object another user created, or an abstract-socket peer of another
    /// user, is refused.
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uid: Vec<u32>,
    /// Trust objects and peers of every user.
    #[arg(long)]
    pub allow_any_uid: bool,
}

impl TrustFlags {
    /// The policy these flags describe.
    pub fn trust(&self) -> ipcx::trust::Trust {
        let mut trust = if self.allow_any_uid {
            ipcx::trust::Trust::any_user()
        } else {
            ipcx::trust::Trust::own_user()
        };
        for &uid in &self.allow_uid {
            trust = trust.allow_uid(uid);
        }
        trust
    }
}

/// The arguments of a command made of actions (`ipcx sem create ...`, `ipcx shm read ...`):
/// the action, a subcommand.
#[derive(Debug, Args)]
pub struct Actions<A: clap::Subcommand> {
    /// The action.
    #[command(subcommand)]
    pub action: A,
}
