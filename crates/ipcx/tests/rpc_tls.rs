//! RPC over TLS between processes, with certificates made by rcgen at test time: server
//! authentication, untrusted servers, client certificates required by the server.
#![cfg(feature = "tls")]
mod util;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipcx::channel::TlsConfig;
use ipcx::channel::transport::tls::{self, rustls};
use ipcx::rpc::{RpcClient, RpcError, Service};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use util::rpc::{Ca, LONG};

fn calc() -> Service {
    util::rpc::calc_add()
}

fn read_der(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn child_role() {
    util::role_main(&[("tls_server", |args| {
        // dir [client-ca]: serves with dir/cert.der + dir/key.der, writes dir/addr.
        let dir = Path::new(&args[0]);
        let chain = vec![CertificateDer::from(read_der(&dir.join("cert.der")))];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(read_der(&dir.join("key.der"))));
        let client_roots = args
            .get(1)
            .map(|f| vec![CertificateDer::from(read_der(&dir.join(f)))]);
        let cfg = tls::server_config(chain, key, client_roots.as_deref()).unwrap();
        let s = calc()
            .tls(TlsConfig::new().server(cfg))
            .serve("tls:127.0.0.1:0")
            .unwrap();
        std::fs::write(dir.join("addr.tmp"), s.addr().to_string()).unwrap();
        std::fs::rename(dir.join("addr.tmp"), dir.join("addr")).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    })]);
}

/// Starts a TLS server process; returns it and its address.
fn spawn_server(
    dir: &util::TempDir,
    ca: &Ca,
    client_ca: Option<&Ca>,
) -> (util::ChildGuard, String) {
    let (chain, key) = ca.leaf(&["localhost"]);
    std::fs::write(dir.join("cert.der"), chain[0].as_ref()).unwrap();
    std::fs::write(dir.join("key.der"), key.secret_der()).unwrap();
    let mut args = vec![dir.path().to_str().unwrap().to_owned()];
    if let Some(c) = client_ca {
        std::fs::write(dir.join("client-ca.der"), c.root().as_ref()).unwrap();
        args.push("client-ca.der".into());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = util::spawn_role("tls_server", &a);
    assert!(util::wait_until(LONG, || dir.join("addr").exists()));
    let addr = std::fs::read_to_string(dir.join("addr")).unwrap();
    (child, addr)
}

fn client(ca: &Ca) -> Arc<rustls::ClientConfig> {
    tls::client_config(&[ca.root()], None).unwrap()
}

/// The client side of `cfg`, checking the server's certificate against `name`.
fn to(name: &str, cfg: Arc<rustls::ClientConfig>) -> TlsConfig {
    TlsConfig::new().client(cfg).server_name(name)
}

#[test]
fn a_client_that_does_not_trust_the_server_fails_clearly() {
    let ca = Ca::new("real");
    let other = Ca::new("other");
    let (chain, key) = ca.leaf(&["localhost"]);
    let s = calc()
        .tls(TlsConfig::new().server(tls::server_config(chain, key, None).unwrap()))
        .serve("tls:127.0.0.1:0")
        .unwrap();
    let addr = s.addr().to_string();
    let t = Instant::now();
    let e = RpcClient::connect_tls(&addr, &to("localhost", client(&other)), "calc", 1, LONG)
        .unwrap_err();
    assert!(
        matches!(&e, RpcError::Tls { message } if message.contains("not trusted")),
        "{e:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // The right CA but the wrong name.
    let e = RpcClient::connect_tls(&addr, &to("example.org", client(&ca)), "calc", 1, LONG)
        .unwrap_err();
    assert!(matches!(&e, RpcError::Tls { .. }), "{e:?}");
    // The server is unharmed.
    let c = RpcClient::connect_tls(&addr, &to("localhost", client(&ca)), "calc", 1, LONG).unwrap();
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    // A plain-TCP client gets an error, not a hang.
    let t = Instant::now();
    let plain = addr.replacen("tls:", "tcp:", 1);
    let e = RpcClient::connect(&plain, "calc", 1, Duration::from_secs(3)).unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::Timeout { .. }
                | RpcError::PeerGone { .. }
                | RpcError::Transport(ipcx::pattern::Error::Protocol { .. })
        ),
        "{e:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // A tls: address without certificates is refused, saying which.
    let e = RpcClient::connect(&addr, "calc", 1, LONG).unwrap_err();
    assert!(
        matches!(&e, RpcError::Transport(ipcx::pattern::Error::InvalidAddress { reason, .. })
            if reason.contains("--ca")),
        "{e:?}"
    );
    // The server is still unharmed.
    let c = RpcClient::connect_tls(&addr, &to("localhost", client(&ca)), "calc", 1, LONG).unwrap();
    assert_eq!(c.call::<_, i32>("add", &(2, 2), LONG).unwrap(), 4);
}

#[test]
fn a_server_requiring_client_certificates_refuses_a_client_without_one() {
    let server_ca = Ca::new("server");
    let client_ca = Ca::new("clients");
    let dir = util::TempDir::new("mtls");
    let (_server, addr) = spawn_server(&dir, &server_ca, Some(&client_ca));
    // No client certificate.
    let e = RpcClient::connect_tls(&addr, &to("localhost", client(&server_ca)), "calc", 1, LONG)
        .unwrap_err();
    assert!(
        matches!(&e, RpcError::Tls { message } if message.contains("client certificate")),
        "{e:?}"
    );
    // A client certificate from a CA the server does not trust.
    let stranger = Ca::new("stranger");
    let cfg = tls::client_config(&[server_ca.root()], Some(stranger.leaf(&["client"]))).unwrap();
    let e = RpcClient::connect_tls(&addr, &to("localhost", cfg), "calc", 1, LONG).unwrap_err();
    assert!(matches!(&e, RpcError::Tls { .. }), "{e:?}");
    // A proper client certificate.
    let cfg = tls::client_config(&[server_ca.root()], Some(client_ca.leaf(&["client"]))).unwrap();
    let c = RpcClient::connect_tls(&addr, &to("localhost", cfg), "calc", 1, LONG).unwrap();
    assert_eq!(c.call::<_, i32>("add", &(20, 22), LONG).unwrap(), 42);
}

#[test]
fn a_client_that_stalls_its_handshake_holds_up_nobody() {
    let ca = Ca::new("stall");
    let (chain, key) = ca.leaf(&["localhost"]);
    let s = calc()
        .tls(TlsConfig::new().server(tls::server_config(chain, key, None).unwrap()))
        .serve("tls:127.0.0.1:0")
        .unwrap();
    let addr = s.addr().to_string();
    let port = addr.rsplit(':').next().unwrap();
    // Connections that never say a word, and one that sends half a TLS record.
    let mut silent: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap())
        .collect();
    std::io::Write::write_all(&mut silent[0], &[0x16, 0x03, 0x01, 0x02]).unwrap();
    // A real client is served meanwhile: within half the handshake timeout that a stalled
    // handshake would hold an accept loop for.
    let soon = tls::HANDSHAKE_TIMEOUT / 2;
    let c = RpcClient::connect_tls(&addr, &to("localhost", client(&ca)), "calc", 1, soon).unwrap();
    assert_eq!(c.call::<_, i32>("add", &(5, 6), soon).unwrap(), 11);
    drop(silent);
}
