//! The one place where ipcx's Rust errors become Python exceptions.
//!
//! The exception classes live in `ipcx/_errors.py` (several of them derive from two bases, as
//! `class Timeout(Error, TimeoutError)`, which a Rust-defined exception cannot); this module
//! sorts every Rust error into one of them ([`Kind`]) and raises it with the Rust error's
//! message.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use ipcx::channel::Error as ChannelError;
use ipcx::rpc::RpcError;

/// The exception classes of `ipcx._errors`, by the name Python knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `ipcx.Error`: anything not named below.
    Error,
    /// `ipcx.Timeout` (also `TimeoutError`).
    Timeout,
    /// `ipcx.NotFound` (also `FileNotFoundError`).
    NotFound,
    /// `ipcx.AlreadyExists` (also `FileExistsError`).
    AlreadyExists,
    /// `ipcx.PermissionDenied` (also `PermissionError`).
    PermissionDenied,
    /// `ipcx.PeerGone` (also `ConnectionError`).
    PeerGone,
    /// `ipcx.TooLarge` (also `ValueError`).
    TooLarge,
    /// `ipcx.InvalidName` (also `ValueError`).
    InvalidName,
    /// `ipcx.RemoteError`: an RPC handler failed.
    RemoteError,
    /// `ipcx.NoSuchMethod`: the RPC server has no such method.
    NoSuchMethod,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Error => "Error",
            Kind::Timeout => "Timeout",
            Kind::NotFound => "NotFound",
            Kind::AlreadyExists => "AlreadyExists",
            Kind::PermissionDenied => "PermissionDenied",
            Kind::PeerGone => "PeerGone",
            Kind::TooLarge => "TooLarge",
            Kind::InvalidName => "InvalidName",
            Kind::RemoteError => "RemoteError",
            Kind::NoSuchMethod => "NoSuchMethod",
        }
    }
}

/// The exception of `kind` with `message`.
pub(crate) fn exception(kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| {
        let class = py
            .import("ipcx._errors")
            .and_then(|m| m.getattr(kind.class_name()));
        match class {
            Ok(class) => PyErr::from_type(class.cast_into().expect("a class"), message),
            Err(e) => PyRuntimeError::new_err(format!("{message} (and ipcx._errors failed: {e})")),
        }
    })
}

/// A Rust error that can be raised in Python.
pub(crate) trait ToPy {
    /// The exception class it maps to.
    fn kind(&self) -> Kind;
}

/// Raises `e` as its exception class with its message.
pub(crate) fn raise<E: ToPy + std::fmt::Display>(e: E) -> PyErr {
    exception(e.kind(), e.to_string())
}

impl ToPy for ChannelError {
    fn kind(&self) -> Kind {
        use ipcx::channel::Error as E;
        match self {
            E::InvalidName(_) | E::InvalidAddress { .. } => Kind::InvalidName,
            E::NotFound { .. } => Kind::NotFound,
            E::AlreadyExists { .. } => Kind::AlreadyExists,
            E::PermissionDenied { .. } | E::ForeignOwner(_) => Kind::PermissionDenied,
            E::TooLarge { .. } | E::FrameTooLarge { .. } => Kind::TooLarge,
            E::Timeout | E::WouldBlock | E::Full { .. } => Kind::Timeout,
            E::PeerGone { .. } | E::Closed { .. } | E::TruncatedFrame { .. } => Kind::PeerGone,
            E::Socket(s) => socket_kind(s),
            E::Queue(q) => queue_kind(q),
            E::Ring(r) => r.kind(),
            E::Io { source, .. } => io_kind(source),
            _ => Kind::Error,
        }
    }
}

fn socket_kind(e: &ipcx::socket::SocketError) -> Kind {
    use ipcx::socket::SocketError as S;
    match e {
        S::AddrInUse { .. } => Kind::AlreadyExists,
        S::NotFound { .. } => Kind::NotFound,
        S::PermissionDenied { .. } => Kind::PermissionDenied,
        S::InvalidAddress { .. } => Kind::InvalidName,
        S::TooLarge { .. } => Kind::TooLarge,
        S::Timeout | S::WouldBlock => Kind::Timeout,
        S::PeerGone { .. } => Kind::PeerGone,
        _ => Kind::Error,
    }
}

fn queue_kind(e: &ipcx::mq::OpenError) -> Kind {
    use ipcx::mq::OpenError as Q;
    match e {
        Q::InvalidName(_) => Kind::InvalidName,
        Q::NotFound { .. } => Kind::NotFound,
        Q::AlreadyExists { .. } => Kind::AlreadyExists,
        Q::PermissionDenied { .. } => Kind::PermissionDenied,
        _ => Kind::Error,
    }
}

fn io_kind(e: &std::io::Error) -> Kind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => Kind::NotFound,
        K::AlreadyExists => Kind::AlreadyExists,
        K::PermissionDenied => Kind::PermissionDenied,
        K::TimedOut | K::WouldBlock => Kind::Timeout,
        K::BrokenPipe | K::ConnectionReset | K::ConnectionRefused | K::ConnectionAborted => {
            Kind::PeerGone
        }
        _ => Kind::Error,
    }
}

impl ToPy for ipcx::ring::RingError {
    fn kind(&self) -> Kind {
        use ipcx::ring::RingError as R;
        match self {
            R::InvalidName(_) => Kind::InvalidName,
            R::NotFound { .. } => Kind::NotFound,
            R::AlreadyExists { .. } | R::PublisherExists { .. } => Kind::AlreadyExists,
            R::PermissionDenied { .. } | R::ForeignOwner(_) => Kind::PermissionDenied,
            R::TooLarge { .. } => Kind::TooLarge,
            R::Full | R::Empty | R::Timeout => Kind::Timeout,
            R::PeerGone { .. } => Kind::PeerGone,
            R::Io { source, .. } => io_kind(source),
            _ => Kind::Error,
        }
    }
}

impl ToPy for RpcError {
    fn kind(&self) -> Kind {
        match self {
            RpcError::Remote { .. } | RpcError::HandlerPanicked { .. } => Kind::RemoteError,
            RpcError::UnknownMethod { .. } => Kind::NoSuchMethod,
            RpcError::Timeout { .. } => Kind::Timeout,
            RpcError::PeerGone { .. } => Kind::PeerGone,
            RpcError::Denied { .. } => Kind::PermissionDenied,
            RpcError::TooLarge { .. } => Kind::TooLarge,
            RpcError::Transport(e) => e.kind(),
            _ => Kind::Error,
        }
    }
}
