//! Pieces shared by the RPC tests (`tests/rpc*.rs`): addresses, the `calc` service's methods,
//! connect helpers, check sequences run against several servers, and (with `tls`) a test CA.

use std::time::{Duration, Instant};

use ipcx::pattern::reqrep::{Client, ConnectError, Hello, Refusal};
use ipcx::rpc::{CallContext, RpcClient, RpcError, Service};

/// The bound on every wait in the RPC tests.
pub const LONG: Duration = Duration::from_secs(20);

/// A unique abstract Unix socket address: `unix:@ipcx-t…-<tag>`.
pub fn unix_addr(tag: &str) -> String {
    format!("unix:@{}", super::unique(tag))
}

/// A unique shared-memory address: `shm:/ipcx-t…-<tag>`.
pub fn shm_addr(tag: &str) -> String {
    format!("shm:{}", super::posix_name(tag))
}

/// The `add` method of the `calc` service.
pub fn add(a: (i32, i32)) -> Result<i32, String> {
    Ok(a.0 + a.1)
}

/// The `div` method of the `calc` service: a typed error for a zero divisor.
pub fn div(a: (i32, i32)) -> Result<i32, String> {
    if a.1 == 0 {
        Err("division by zero".to_string())
    } else {
        Ok(a.0 / a.1)
    }
}

/// The `whoami` method: the caller's verified (pid, uid), if the transport has them.
pub fn whoami(ctx: &CallContext, _: ()) -> Result<Option<(i32, u32)>, String> {
    Ok(ctx.credentials.map(|c| (c.pid, c.uid)))
}

/// The `echo_after` method of the thread-based servers: `tag` after `ms` milliseconds.
pub fn echo_after((ms, tag): (u64, u32)) -> Result<u32, String> {
    std::thread::sleep(Duration::from_millis(ms));
    Ok(tag)
}

/// The body of a `slow` method: busy for `ms` milliseconds unless `stop` says to give up
/// first, in which case the call fails with `why`.
pub fn slow(
    ctx: &CallContext,
    ms: u64,
    stop: fn(&CallContext) -> bool,
    why: &str,
) -> Result<u64, String> {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        if stop(ctx) {
            return Err(why.to_string());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(ms)
}

/// The `calc` service, version 1, with its `add` method.
pub fn calc_add() -> Service {
    Service::new("calc", 1).method("add", add)
}

/// The body of a server role: serves `service` at `a` until the test kills the process.
pub fn serve_until_killed(service: Service, a: &str) {
    let _s = service.serve(a).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// A `slow` call of 10 s is under way on `c` when `server` is killed: it fails with
/// `PeerGone` without hanging, and so does the next call.
pub fn killed_server_fails_the_calls(c: &RpcClient, server: &mut super::ChildGuard) {
    let c2 = c.clone();
    let call = std::thread::spawn(move || c2.call::<_, u64>("slow", &10_000u64, LONG));
    std::thread::sleep(Duration::from_millis(100));
    server.kill();
    let t = Instant::now();
    let e = call.join().unwrap().unwrap_err();
    assert!(matches!(e, RpcError::PeerGone { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let e = c.call::<_, i32>("add", &(1, 1), LONG).unwrap_err();
    assert!(matches!(e, RpcError::PeerGone { .. }), "{e:?}");
}

/// A client of `service` version 1 at `a`, retried until the server is up.
pub fn connect_to(a: &str, service: &str) -> RpcClient {
    super::wait_for(LONG, || RpcClient::connect(a, service, 1, LONG).ok())
}

/// A client of `calc` version 1 at `a`, retried until the server is up.
pub fn connect(a: &str) -> RpcClient {
    connect_to(a, "calc")
}

/// A `calc` version 1 server at `a` refuses version 2, another service's name and another
/// protocol version, each with the error that says so.
pub fn assert_version_and_service_refusals(a: &str) {
    let e = RpcClient::connect(a, "calc", 2, LONG).unwrap_err();
    match &e {
        RpcError::VersionMismatch {
            client: 2,
            server: 1,
            message,
        } => assert!(message.contains("version 2") && message.contains("version 1")),
        other => panic!("{other:?}"),
    }
    let e = RpcClient::connect(a, "weather", 1, LONG).unwrap_err();
    assert!(matches!(e, RpcError::WrongService { .. }), "{e:?}");
    let hello = Hello {
        protocol: 99,
        service: "calc".into(),
        version: 1,
        codec: 0,
    };
    match Client::connect_hello(a, &hello, LONG) {
        Err(ConnectError::Refused(r)) => {
            assert_eq!(r.reason, Refusal::ProtocolVersion);
            assert_eq!(r.server_protocol, ipcx::pattern::reqrep::PROTOCOL_VERSION);
        }
        other => panic!("{other:?}"),
    }
}

/// Connecting to `a` fails with `NotFound`: nobody serves there.
#[track_caller]
pub fn assert_nobody_serves(a: &str, timeout: Duration) {
    let e = RpcClient::connect(a, "calc", 1, timeout).unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::Transport(ipcx::pattern::Error::NotFound { .. })
        ),
        "{e:?}"
    );
}

/// `e` is the `div` method's typed error for a zero divisor.
#[track_caller]
pub fn assert_division_by_zero(e: &RpcError) {
    assert!(
        matches!(e, RpcError::Remote { message, .. } if message == "division by zero"),
        "{e:?}"
    );
}

/// Arguments the server cannot decode, and a reply the client cannot decode, are told apart.
pub fn assert_decode_errors(c: &RpcClient, method: &str) {
    let e = c.call::<_, i32>(method, &(), LONG).unwrap_err();
    assert!(matches!(e, RpcError::Decode { remote: true, .. }), "{e:?}");
    let e = c.call::<_, String>(method, &(1, 2), LONG).unwrap_err();
    assert!(matches!(e, RpcError::Decode { remote: false, .. }), "{e:?}");
}

/// `took` is at least `at_least` and well within a generous bound.
#[track_caller]
pub fn assert_took(took: Duration, at_least: Duration) {
    assert!(
        took >= at_least && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[cfg(feature = "tokio")]
#[allow(unused_imports)] // not every test binary uses them
pub use self::asynch::*;

#[cfg(feature = "tokio")]
mod asynch {
    use std::time::{Duration, Instant};

    use ipcx::rpc::{AsyncRpcClient, RpcError};

    use super::LONG;

    /// A multi-threaded runtime with two workers.
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// An async client of `calc` version 1 at `a`, retried until the server is up.
    pub async fn connect_async(a: &str) -> AsyncRpcClient {
        let t = Instant::now();
        loop {
            match AsyncRpcClient::connect(a, "calc", 1, LONG).await {
                Ok(c) => return c,
                Err(e) if t.elapsed() > LONG => panic!("{e:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// `n` concurrent `add` calls on one connection, each answered to its caller.
    pub async fn concurrent_adds(c: &AsyncRpcClient, n: i32) {
        let calls: Vec<_> = (0..n)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.call::<_, i32>("add", &(i, 1), LONG).await })
            })
            .collect();
        for (i, h) in calls.into_iter().enumerate() {
            assert_eq!(h.await.unwrap().unwrap(), i as i32 + 1);
        }
    }

    /// `n` concurrent `rendezvous` calls that each wait until `want` calls have arrived: they
    /// only return if all are in flight at once.
    pub async fn rendezvous(c: &AsyncRpcClient, n: usize, want: usize) {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.call::<_, usize>("rendezvous", &want, LONG).await })
            })
            .collect();
        for h in calls {
            assert_eq!(h.await.unwrap().unwrap(), want);
        }
    }

    /// Six `echo_after` calls sent in order, the first ones taking longest: replies come back
    /// in reverse order and each reaches its own caller. Returns the order they came in.
    pub async fn replies_in_reverse_order(c: &AsyncRpcClient) -> Vec<u32> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let n = 6u32;
        for tag in 0..n {
            let (c, tx) = (c.clone(), tx.clone());
            let ms = u64::from(n - tag) * 150;
            tokio::spawn(async move {
                let got = c.call::<_, u32>("echo_after", &(ms, tag), LONG).await;
                let _ = tx.send((tag, got));
            });
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some((tag, got)) = rx.recv().await {
            assert_eq!(got.unwrap(), tag, "a reply reached the wrong caller");
            order.push(tag);
        }
        assert_eq!(order.first(), Some(&(n - 1)), "{order:?}");
        assert_eq!(order.last(), Some(&0), "{order:?}");
        order
    }

    /// Sends a call of `method` that takes long (returning an `R`), waits until a call sent
    /// after it is answered, runs `kill` (which kills the server) and checks that the pending
    /// call fails with `PeerGone`. Returns the time from `kill` to that failure.
    pub async fn pending_call_fails_when_the_server_dies<A, R>(
        c: &AsyncRpcClient,
        method: &'static str,
        args: A,
        kill: impl FnOnce(),
    ) -> Duration
    where
        A: serde::Serialize + Send + Sync + 'static,
        R: serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let c2 = c.clone();
        let pending = tokio::spawn(async move { c2.call::<_, R>(method, &args, LONG).await });
        // The slow call is on its way once a call sent after it is answered.
        assert_eq!(c.call::<_, i32>("add", &(1, 1), LONG).await.unwrap(), 2);
        let t = Instant::now();
        kill();
        let e = tokio::time::timeout(LONG, pending)
            .await
            .expect("the pending call hung")
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, RpcError::PeerGone { .. }), "{e:?}");
        t.elapsed()
    }
}

#[cfg(feature = "tls")]
#[allow(unused_imports)] // not every test binary uses them
pub use self::ca::{Ca, Identity, tls_client, tls_fixed, tls_server};

#[cfg(feature = "tls")]
mod ca {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    use ipcx::channel::TlsConfig;
    use ipcx::channel::transport::tls::{self, rustls};

    /// A leaf certificate chain and its key.
    pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

    /// A CA and certificates it signs.
    pub struct Ca {
        issuer: CertifiedIssuer<'static, KeyPair>,
    }

    /// Test keys (fixtures, for tests only) of the CA and the server certificate that every
    /// process of a test run builds alike ([`tls_server`], [`tls_client`]): a child process
    /// then trusts, or presents, the same certificates as its parent, with no file between
    /// them.
    const FIXED_CA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmvunEJERP1I2YaH5
cGNqdlthtWXo/26nNW2b+i1HVz2hRANCAATNGdSezHSpu/mT/wllOeW3wWXJ/ccv
9SsnGr0jen+pvJYoAPuSHYzPSBiy3Ox8SuBTWt0vGpTVJBIf5yRJ7U0C
-----END PRIVATE KEY-----
";
    const FIXED_LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMHQW/IY3AUZwWm+U
e3SedLqGpQxsen7fVKYlskeHFSShRANCAAR0Mc8zjqFb8bZuf0jO1IsLk8xIucyu
bat9zIwvzCl0JiSwMUEsi8qR8oJnkRzuVHS8AHX665NVMQn5LQMzri2c
-----END PRIVATE KEY-----
";

    /// The server side of the fixed test certificates: a certificate for `localhost` and
    /// `127.0.0.1` signed by the fixed CA.
    pub fn tls_server() -> TlsConfig {
        fixed(TlsConfig::new(), true, false)
    }

    /// The client side of the fixed test certificates: trusts the fixed CA.
    pub fn tls_client() -> TlsConfig {
        fixed(TlsConfig::new(), false, true)
    }

    /// Both sides of the fixed test certificates (for a process that binds and connects).
    pub fn tls_fixed() -> TlsConfig {
        fixed(TlsConfig::new(), true, true)
    }

    fn fixed(mut t: TlsConfig, server: bool, client: bool) -> TlsConfig {
        let ca = Ca::fixed();
        if server {
            let (chain, key) = ca.leaf_with(
                &["localhost", "127.0.0.1"],
                KeyPair::from_pem(FIXED_LEAF_KEY).unwrap(),
            );
            t = t.server(tls::server_config(chain, key, None).unwrap());
        }
        if client {
            t = t.client(tls::client_config(&[ca.root()], None).unwrap());
        }
        t
    }

    impl Ca {
        /// A new self-signed CA with `label` in its common name.
        pub fn new(label: &str) -> Ca {
            Ca::with_key(label, KeyPair::generate().unwrap())
        }

        /// The CA of the fixed test key: the same in every process.
        pub fn fixed() -> Ca {
            Ca::with_key("fixed", KeyPair::from_pem(FIXED_CA_KEY).unwrap())
        }

        fn with_key(label: &str, key: KeyPair) -> Ca {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name
                .push(rcgen::DnType::CommonName, format!("ipcx test CA {label}"));
            Ca {
                issuer: CertifiedIssuer::self_signed(p, key).unwrap(),
            }
        }
        pub fn root(&self) -> CertificateDer<'static> {
            self.issuer.der().clone()
        }
        /// A leaf certificate for `names`, with its key.
        pub fn leaf(&self, names: &[&str]) -> Identity {
            self.leaf_with(names, KeyPair::generate().unwrap())
        }

        /// A leaf certificate for `names` with the key `key`.
        pub fn leaf_with(&self, names: &[&str], key: KeyPair) -> Identity {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &self.issuer)
                .unwrap();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            (vec![cert.der().clone()], key)
        }
    }
}
