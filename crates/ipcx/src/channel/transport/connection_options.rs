//! [`ConnectionOptions`]: what connecting or binding a [`Connection`](super::Connection) needs
//! besides the address.

use crate::trust::Trust;

#[cfg(feature = "tls")]
use super::tls::TlsConfig;

/// What connecting or binding a connection needs besides the address: which users' Unix
/// peers a listener accepts, and the certificates of a `tls:` endpoint. It travels beside the
/// address, never in it; a transport ignores what does not concern it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// Listeners: which users' Unix connections are accepted (default: our own uid only; see
    /// [`crate::trust`]). Another user's connection is closed at accept. TCP and TLS peers
    /// carry no uid and are not checked.
    pub trust: Trust,
    /// `tls:` endpoints: the certificates (feature `tls`). Without them a `tls:` endpoint is
    /// [`Error::InvalidAddress`](crate::channel::Error::InvalidAddress) saying which are
    /// missing.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
}

impl ConnectionOptions {
    /// Default options: our own user's Unix peers only, no certificates.
    pub fn new() -> ConnectionOptions {
        ConnectionOptions::default()
    }

    /// Sets which users' Unix connections a listener accepts.
    pub fn trust(mut self, trust: Trust) -> ConnectionOptions {
        self.trust = trust;
        self
    }

    /// Sets the certificates of `tls:` endpoints.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsConfig) -> ConnectionOptions {
        self.tls = Some(tls);
        self
    }
}
