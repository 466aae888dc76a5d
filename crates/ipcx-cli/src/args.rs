//! Flags that several commands share (below both `cli` and the commands).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipcx::channel::TlsConfig;
use ipcx::channel::transport::tls;

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
    /// Certificates of tls: endpoints.
    #[command(flatten)]
    pub tls: TlsFlags,
    /// How zenoh: endpoints reach their peers.
    #[command(flatten)]
    pub zenoh: ZenohFlags,
}

impl EndpointFlags {
    /// The library options these flags describe (reading the certificate files given).
    pub fn options(&self) -> anyhow::Result<ipcx::channel::Options> {
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
        if let Some(t) = self.tls.config()? {
            o = o.tls(t);
        }
        o = self.zenoh.apply(o);
        Ok(o.trust(self.trust.trust()))
    }
}

/// How `zenoh:` endpoints reach their peers, shared by every command that opens endpoints
/// (no flags in a build without the `zenoh` feature).
#[derive(Debug, Args)]
pub struct ZenohFlags {
    /// zenoh: connect to this Zenoh peer or router, as in tcp/192.168.1.7:7447 (repeatable);
    /// turns multicast scouting off. Unreachable within --timeout (default 5s): an error.
    #[cfg(feature = "zenoh")]
    #[arg(long = "zenoh-connect", value_name = "LOCATOR")]
    pub connect: Vec<String>,
    /// zenoh: listen for Zenoh peers here, as in tcp/0.0.0.0:7447 (repeatable); turns
    /// multicast scouting off.
    #[cfg(feature = "zenoh")]
    #[arg(long = "zenoh-listen", value_name = "LOCATOR")]
    pub listen: Vec<String>,
    /// zenoh: a Zenoh configuration file (JSON5), applied before --zenoh-connect and
    /// --zenoh-listen.
    #[cfg(feature = "zenoh")]
    #[arg(long = "zenoh-config", value_name = "FILE")]
    pub config_file: Option<std::path::PathBuf>,
}

impl ZenohFlags {
    /// `opts` with the Zenoh session configuration these flags describe (its locators are
    /// checked when the first zenoh: endpoint opens: a malformed one is a usage error).
    pub fn apply(&self, opts: ipcx::channel::Options) -> ipcx::channel::Options {
        #[cfg(feature = "zenoh")]
        {
            let mut c = ipcx::channel::ZenohConfig::new();
            c.connect = self.connect.clone();
            c.listen = self.listen.clone();
            c.config_file = self.config_file.clone();
            opts.zenoh(c)
        }
        #[cfg(not(feature = "zenoh"))]
        opts
    }
}

/// The certificates of `tls:` endpoints (files in PEM, or one DER certificate or PKCS #8 key),
/// shared by every command that opens endpoints.
#[derive(Debug, Args)]
pub struct TlsFlags {
    /// tls: the certificate this side presents (a receiver's, always; a sender's, when the
    /// receiver requires client certificates), with its chain; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// tls: the private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// tls: a sender trusts receivers whose certificate one of these CA certificates signed
    /// (and whose name is the HOST of the address).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// tls: a receiver requires each sender to present a certificate that one of these CA
    /// certificates signed (--cert and --key on the sender).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub client_ca: Option<PathBuf>,
}

impl TlsFlags {
    /// A usage error when `ep` is a `tls:` endpoint and the flags it needs on this side
    /// (`binds`: the receiving side) are missing.
    pub fn check(&self, ep: &ipcx::Endpoint, binds: bool) -> anyhow::Result<()> {
        if ep.scheme() != "tls" {
            return Ok(());
        }
        if binds && self.cert.is_none() {
            return Err(crate::exit::usage(format!(
                "{ep}: a tls: receiver needs its certificate: --cert FILE --key FILE"
            )));
        }
        if !binds && self.ca.is_none() {
            return Err(crate::exit::usage(format!(
                "{ep}: a tls: sender needs the CA certificate that signed the receiver's: --ca FILE"
            )));
        }
        Ok(())
    }

    /// The TLS configuration these flags describe: the receiving side with --cert and --key,
    /// the sending side with --ca; `None` when no flag is given.
    pub fn config(&self) -> anyhow::Result<Option<TlsConfig>> {
        let identity = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((tls::load_certificates(c)?, tls::load_private_key(k)?)),
            _ => None,
        };
        if identity.is_none() && self.ca.is_none() {
            return Ok(None);
        }
        let mut t = TlsConfig::new();
        if let Some((chain, key)) = &identity {
            let client_roots = match &self.client_ca {
                Some(f) => Some(tls::load_certificates(f)?),
                None => None,
            };
            t = t.server(tls::server_config(
                chain.clone(),
                key.clone_key(),
                client_roots.as_deref(),
            )?);
        }
        if let Some(ca) = &self.ca {
            let roots = tls::load_certificates(ca)?;
            t = t.client(tls::client_config(&roots, identity)?);
        }
        Ok(Some(t))
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
