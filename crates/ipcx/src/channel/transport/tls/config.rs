//! [`TlsConfig`]: the certificates of a `tls:` endpoint, and the shortcuts that build rustls
//! configurations ([`client_config`], [`server_config`]) from certificates and keys, in memory
//! or in PEM or DER files ([`load_certificates`], [`load_private_key`]).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig};

use crate::channel::Error;

/// The certificates of a `tls:` endpoint, given beside its address (in
/// [`Options::tls`](crate::channel::Options::tls),
/// [`ConnectionOptions::tls`](super::super::ConnectionOptions::tls) and the pattern and RPC
/// options).
///
/// * The side that **connects** (a sender, a subscriber, a worker, an RPC client) needs a
///   [`client`](TlsConfig::client) configuration: the roots it trusts, and its own
///   certificate if the server asks for one. It checks that the server's certificate is valid
///   for the host of the address (`tls:HOST:PORT`), or for
///   [`server_name`](TlsConfig::server_name) when set.
/// * The side that **binds** (a receiver, a publisher, a distributor, an RPC server) needs a
///   [`server`](TlsConfig::server) configuration: its certificate and key, and the client
///   roots when clients must present certificates.
///
/// One value may hold both (a program that binds one `tls:` endpoint and connects to another).
#[derive(Clone, Default)]
pub struct TlsConfig {
    client: Option<Arc<ClientConfig>>,
    server: Option<Arc<ServerConfig>>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client", &self.client.is_some())
            .field("server", &self.server.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsConfig {
    /// No certificates yet.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// Sets the configuration of the connecting side ([`client_config`], or any rustls
    /// client configuration).
    pub fn client(mut self, config: Arc<ClientConfig>) -> TlsConfig {
        self.client = Some(config);
        self
    }

    /// Sets the configuration of the binding side ([`server_config`], or any rustls server
    /// configuration).
    pub fn server(mut self, config: Arc<ServerConfig>) -> TlsConfig {
        self.server = Some(config);
        self
    }

    /// Checks the server's certificate against `name` instead of the host of the address (a
    /// server reached by IP address whose certificate names its host).
    pub fn server_name(mut self, name: &str) -> TlsConfig {
        self.server_name = Some(name.to_owned());
        self
    }

    /// The client configuration, or the error naming what is missing for `what`.
    pub(crate) fn client_for(&self, what: &str) -> Result<Arc<ClientConfig>, Error> {
        self.client.clone().ok_or_else(|| missing_client(what))
    }

    /// The server configuration, or the error naming what is missing for `what`.
    pub(crate) fn server_for(&self, what: &str) -> Result<Arc<ServerConfig>, Error> {
        self.server.clone().ok_or_else(|| missing_server(what))
    }

    /// The name the server's certificate must be valid for, connecting to `host`.
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>, Error> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned()).map_err(|_| Error::Tls {
            peer: name.to_owned(),
            reason: format!("{name:?} is not a valid DNS name or IP address"),
        })
    }
}

/// The client configuration of `tls`, or the error naming the missing option for `what`.
pub(crate) fn client_of(tls: Option<&TlsConfig>, what: &str) -> Result<Arc<ClientConfig>, Error> {
    tls.ok_or_else(|| missing_client(what))?.client_for(what)
}

/// The server configuration of `tls`, or the error naming the missing option for `what`.
pub(crate) fn server_of(tls: Option<&TlsConfig>, what: &str) -> Result<Arc<ServerConfig>, Error> {
    tls.ok_or_else(|| missing_server(what))?.server_for(what)
}

fn missing_client(what: &str) -> Error {
    Error::InvalidAddress {
        addr: what.to_owned(),
        reason: "connecting over TLS needs the CA certificate that signed the server's: \
                 --ca FILE (ipcx), or a TlsConfig with a client configuration in the options"
            .into(),
    }
}

fn missing_server(what: &str) -> Error {
    Error::InvalidAddress {
        addr: what.to_owned(),
        reason: "serving TLS needs a certificate and its key: --cert FILE --key FILE (ipcx), \
                 or a TlsConfig with a server configuration in the options"
            .into(),
    }
}

pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(super) fn config_error(e: rustls::Error) -> Error {
    Error::Tls {
        peer: "(configuration)".into(),
        reason: format!("invalid TLS configuration: {e}"),
    }
}

fn store(roots: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore, Error> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).map_err(config_error)?;
    }
    Ok(store)
}

/// A client configuration that trusts the certificates in `roots` (CA certificates, DER) and,
/// with `identity` (a certificate chain and its private key), presents a client certificate.
pub fn client_config(
    roots: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, Error> {
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(store(roots)?);
    let cfg = match identity {
        Some((chain, key)) => b.with_client_auth_cert(chain, key).map_err(config_error)?,
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// A server configuration presenting `chain` (the server's certificate first) with its private
/// key; with `client_roots`, clients must present a certificate signed by one of them.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<ServerConfig>, Error> {
    let b = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let b = match client_roots {
        Some(roots) => {
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store(roots)?),
                provider(),
            )
            .build()
            .map_err(|e| Error::Tls {
                peer: "(configuration)".into(),
                reason: format!("invalid client roots: {e}"),
            })?;
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(
        b.with_single_cert(chain, key).map_err(config_error)?,
    ))
}

/// The largest certificate or key file read.
const MAX_FILE: u64 = 1 << 20;

/// Reads a certificate or key file (at most 1 MiB).
fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let io = |source| Error::Io {
        context: format!("reading the {what} {}", path.display()),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(bad_file(path, what, "larger than 1 MiB"));
    }
    Ok(bytes)
}

fn bad_file(path: &Path, what: &str, why: &str) -> Error {
    Error::Tls {
        peer: "(configuration)".into(),
        reason: format!("{} is not a usable {what}: {why}", path.display()),
    }
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Reads the certificates in `path`: PEM (every `CERTIFICATE` block, in order) or one DER
/// certificate.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let what = "certificate file";
    let bytes = read(path, what)?;
    if !is_pem(&bytes) {
        return Ok(vec![CertificateDer::from(bytes)]);
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_file(path, what, &e.to_string()))?;
    if certs.is_empty() {
        return Err(bad_file(path, what, "it holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// Reads the private key in `path`: PEM (PKCS #8, PKCS #1 or SEC1) or PKCS #8 DER.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let what = "private key file";
    let bytes = read(path, what)?;
    if !is_pem(&bytes) {
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes)));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| bad_file(path, what, &e.to_string()))
}
