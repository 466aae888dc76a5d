//! [`Endpoint`]: one parsed address, for every transport; [`Address`]: the shapes of the part
//! after the scheme, shared by the transports.
//!
//! The parser knows no scheme itself: it splits `SCHEME:REST` and asks the transport
//! registered for `SCHEME` ([`super::transport`]) to parse `REST`.

use std::fmt;
use std::path::PathBuf;

use super::transport::{self, Connection, ConnectionOptions, Listener, Transport};
use super::{Error, MessageReceiver, MessageSender, Options};
use crate::name::{InvalidName, PosixName};
use crate::socket::UnixAddr;
use crate::wait::Wait;

/// A parsed endpoint address: a transport and its [`Address`]. See the
/// [module documentation](super) for the syntax.
#[derive(Clone)]
pub struct Endpoint {
    transport: &'static dyn Transport,
    address: Address,
}

/// The part of an endpoint after the scheme, in one of the shapes the transports share.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// A file system path (`fifo:PATH`).
    Path(PathBuf),
    /// A POSIX IPC name, `/NAME` (`mq:/NAME`, `shm:/NAME`).
    PosixName(PosixName),
    /// A System V IPC key (`sysv-mq:KEY`).
    SysvKey(i32),
    /// A Unix socket address: a path or an abstract `@NAME` (`unix:`, `unix-dgram:`,
    /// `unix-seqpacket:`).
    Unix(UnixAddr),
    /// A host (name or IP address, without brackets) and a port (`tcp:`, `udp:`).
    HostPort {
        /// Host name or IP address (without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A name in a transport's own namespace.
    Name(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Path(p) => write!(f, "{}", p.display()),
            Address::PosixName(n) => write!(f, "{n}"),
            Address::SysvKey(k) => write!(f, "{k}"),
            Address::Unix(a) => write!(f, "{a}"),
            Address::HostPort { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::HostPort { host, port } => write!(f, "{host}:{port}"),
            Address::Name(n) => f.write_str(n),
        }
    }
}

impl From<std::net::SocketAddr> for Address {
    /// The host (an IP address) and port of a socket address.
    fn from(a: std::net::SocketAddr) -> Address {
        Address::HostPort {
            host: a.ip().to_string(),
            port: a.port(),
        }
    }
}

impl Address {
    /// The path, if this is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Address::Path(p) => Some(p),
            _ => None,
        }
    }

    /// The POSIX name, if this is one.
    pub fn posix_name(&self) -> Option<&PosixName> {
        match self {
            Address::PosixName(n) => Some(n),
            _ => None,
        }
    }

    /// The System V key, if this is one.
    pub fn sysv_key(&self) -> Option<i32> {
        match self {
            Address::SysvKey(k) => Some(*k),
            _ => None,
        }
    }

    /// The Unix socket address, if this is one.
    pub fn unix(&self) -> Option<&UnixAddr> {
        match self {
            Address::Unix(a) => Some(a),
            _ => None,
        }
    }

    /// The host and port, if this is one.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        match self {
            Address::HostPort { host, port } => Some((host, *port)),
            _ => None,
        }
    }

    /// Parses a path (`fifo:PATH`): not empty, no NUL byte.
    pub fn parse_path(s: &str) -> Result<Address, String> {
        if s.is_empty() {
            return Err("needs a path, as in fifo:/tmp/jobs".into());
        }
        if s.contains('\0') {
            return Err("the path contains a NUL byte".into());
        }
        Ok(Address::Path(PathBuf::from(s)))
    }

    /// Parses a Unix socket address: a path, or `@NAME` for an abstract name.
    pub fn parse_unix(s: &str) -> Result<Address, String> {
        UnixAddr::parse(s)
            .map(Address::Unix)
            .map_err(|r| r.to_owned())
    }

    /// Parses `HOST:PORT`, with IPv6 hosts in brackets (`[::1]:7000`).
    pub fn parse_host_port(s: &str) -> Result<Address, String> {
        let expected = "expected HOST:PORT, as in 127.0.0.1:7000, localhost:7000 or [::1]:7000";
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("unclosed '[' in IPv6 address; {expected}"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("missing :PORT; {expected}"))?;
            (host, port)
        } else {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("missing :PORT; {expected}"))?;
            if host.contains(':') {
                return Err(format!("IPv6 addresses need brackets; {expected}"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(format!("missing host; {expected}"));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("invalid port {port:?} (0-65535); {expected}"))?;
        Ok(Address::HostPort {
            host: host.to_owned(),
            port,
        })
    }

    /// Parses a POSIX IPC name checked by `check` (as [`PosixName::new`] or
    /// [`PosixName::queue`]).
    pub fn parse_posix_name(
        s: &str,
        check: fn(&str) -> Result<PosixName, InvalidName>,
    ) -> Result<Address, String> {
        check(s).map(Address::PosixName).map_err(|e| e.to_string())
    }

    /// Parses a System V key, decimal or `0x` hex.
    pub fn parse_sysv_key(s: &str) -> Result<Address, String> {
        crate::sysv::Key::parse(s).map(|k| Address::SysvKey(k.raw()))
    }
}

impl Endpoint {
    /// Parses an address such as `mq:/jobs`, `unix:@svc` or `tcp:[::1]:7000`: the scheme picks
    /// the transport, which parses the rest.
    pub fn parse(address: &str) -> Result<Endpoint, Error> {
        let bad = |reason: String| Error::InvalidAddress {
            addr: address.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = address.split_once(':') else {
            return Err(bad(format!("no scheme; {}", transport::expected())));
        };
        let Some(transport) = transport::find(scheme) else {
            return Err(bad(format!(
                "unknown scheme {scheme:?}; {}",
                transport::expected()
            )));
        };
        let address = transport
            .parse(rest)
            .map_err(|reason| bad(format!("{scheme}: {reason}")))?;
        Ok(Endpoint { transport, address })
    }

    /// An endpoint of the transport registered for `scheme` at `address`, checked as
    /// [`Endpoint::parse`] checks `SCHEME:ADDRESS`.
    pub fn new(scheme: &str, address: Address) -> Result<Endpoint, Error> {
        Endpoint::parse(&format!("{scheme}:{address}"))
    }

    /// The scheme, as in `mq` for `mq:/jobs`.
    pub fn scheme(&self) -> &'static str {
        self.transport.scheme()
    }

    /// The address after the scheme.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The transport that carries it.
    pub fn transport(&self) -> &'static dyn Transport {
        self.transport
    }

    /// Whether the mechanism keeps message boundaries itself (`false`: ipcx frames a byte
    /// stream).
    pub fn is_framed(&self) -> bool {
        self.transport.is_byte_stream()
    }

    /// Whether this is a byte stream (fifo, unix stream, tcp), where `--raw` copies bytes
    /// verbatim.
    pub fn is_byte_stream(&self) -> bool {
        self.transport.is_byte_stream()
    }

    /// Whether the transport is a publish/subscribe fabric itself (`zenoh:`), where every
    /// receiver gets every message sent.
    pub fn is_pubsub(&self) -> bool {
        self.transport.is_pubsub()
    }

    /// Opens the receiving side: binds, listens or creates the object (removed again when the
    /// receiver is dropped, if the receiver created it).
    pub fn receiver(&self, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        self.transport.receiver(&self.address, opts)
    }

    /// Opens the sending side: connects to, or opens, the object.
    pub fn sender(&self, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        self.transport.sender(&self.address, opts)
    }

    /// Connects a framed, bidirectional [`Connection`] (connection-oriented transports:
    /// `unix:`, `tcp:`, `shm:`), giving up at the deadline. A `tls:` endpoint needs its
    /// certificates: [`Endpoint::connect_with`].
    pub fn connect(&self, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        self.connect_with(wait, &ConnectionOptions::default())
    }

    /// Connects a framed, bidirectional [`Connection`] with what `opts` gives besides the
    /// address (the certificates of a `tls:` endpoint), giving up at the deadline.
    pub fn connect_with(
        &self,
        wait: Wait,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn Connection>, Error> {
        self.transport.connect(&self.address, wait, opts)
    }

    /// Binds a [`Listener`] for connections here with default [`ConnectionOptions`]: a Unix
    /// listener accepts only peers of our own uid. A `tls:` endpoint needs its certificates:
    /// [`Endpoint::bind_with`].
    pub fn bind(&self) -> Result<Box<dyn Listener>, Error> {
        self.bind_with(&ConnectionOptions::default())
    }

    /// Binds a [`Listener`] here with what `opts` gives besides the address: Unix connections
    /// must come from users `opts.trust` permits (another user's connection is closed at
    /// accept: [`Listener::accept_wait`] returns the refusal; accept again to go on; TCP and
    /// TLS peers carry no uid and are not checked), and a `tls:` listener presents the
    /// certificate of `opts.tls`.
    pub fn bind_with(&self, opts: &ConnectionOptions) -> Result<Box<dyn Listener>, Error> {
        self.transport.bind(&self.address, opts)
    }

    /// A writer of raw bytes to a byte-stream endpoint (connects or opens, like
    /// [`Endpoint::sender`], honouring `opts.connect_timeout`).
    pub fn raw_writer(&self, opts: &Options) -> Result<Box<dyn std::io::Write + Send>, Error> {
        self.transport.raw_writer(&self.address, opts)
    }

    /// A reader of raw bytes from a byte-stream endpoint: binds or creates like
    /// [`Endpoint::receiver`] (removing what it created on drop), then yields the bytes of one
    /// writer or connection after another.
    pub fn raw_reader(&self, opts: &Options) -> Result<Box<dyn super::RawReader>, Error> {
        self.transport.raw_reader(&self.address, opts)
    }
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Endpoint) -> bool {
        self.scheme() == other.scheme() && self.address == other.address
    }
}

impl Eq for Endpoint {}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("scheme", &self.scheme())
            .field("address", &self.address)
            .finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme(), self.address)
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let cases = [
            "fifo:/tmp/x",
            "mq:/jobs",
            "sysv-mq:1234",
            "unix:/tmp/s.sock",
            "unix:@svc",
            "unix-dgram:@d",
            "unix-seqpacket:/tmp/p",
            "tcp:127.0.0.1:7000",
            "tcp:[::1]:7000",
            "udp:localhost:9",
            "shm:/ring",
            #[cfg(feature = "tls")]
            "tls:localhost:7000",
        ];
        for c in cases {
            let ep = Endpoint::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(ep.to_string(), c);
        }
        assert_eq!(
            Endpoint::parse("sysv-mq:0x10").unwrap(),
            Endpoint::new("sysv-mq", Address::SysvKey(16)).unwrap()
        );
        let ep = Endpoint::parse("tcp:[::1]:80").unwrap();
        assert_eq!(ep.scheme(), "tcp");
        assert_eq!(
            ep.address(),
            &Address::HostPort {
                host: "::1".into(),
                port: 80
            }
        );
    }

    #[test]
    fn rejects_bad_addresses_with_reasons() {
        for (bad, needle) in [
            ("nothing", "no scheme"),
            ("bogus:x", "unknown scheme"),
            ("fifo:", "needs a path"),
            ("mq:jobs", "starts with '/'"),
            ("sysv-mq:zz", "System V key"),
            ("tcp:host", "missing :PORT"),
            ("tcp:::1:80", "brackets"),
            ("tcp:[::1]80", "missing :PORT"),
            ("tcp:h:99999", "invalid port"),
            ("udp::80", "missing host"),
            ("unix:", "empty"),
            ("shm:ring", "starts with '/'"),
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
