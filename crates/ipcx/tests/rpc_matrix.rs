//! The RPC matrix: {sync, async} server × {sync, async} client × {unix, tcp, shm, tls}, one
//! test per cell. In every cell the server runs in a process of its own and the client in the
//! test process, over a real kernel transport, and the same checks run: a call, a typed error,
//! an unknown method, a deadline, the caller's credentials (where the transport has them),
//! concurrent calls on one connection, a client killed mid-call (the server goes on), and a
//! server killed mid-call (the pending call and the next fail with `PeerGone`, without
//! hanging). A cell that cannot run here says why ([`Cell::cannot_run`]) instead of passing in
//! silence.
//!
//! Behaviour particular to one server, client or transport (decode errors, panics, TLS trust,
//! ring cleanup, graceful shutdown...) is tested in `rpc.rs`, `rpc_async.rs`, `rpc_shm.rs`,
//! `rpc_tls.rs` and `rpc_inline.rs`.
mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use ipcx::rpc::{CallContext, RpcClient, RpcError, Service};
use util::rpc::LONG;

/// Which kind of server or client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Thread-based: [`Service::serve`] / [`RpcClient`].
    Sync,
    /// Tokio: `AsyncService::serve_async` / `AsyncRpcClient`.
    Async,
}

/// The transport a cell runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Unix,
    Tcp,
    Shm,
    Tls,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    server: Side,
    client: Side,
    transport: Transport,
}

const SIDES: [Side; 2] = [Side::Sync, Side::Async];
const TRANSPORTS: [Transport; 4] = [
    Transport::Unix,
    Transport::Tcp,
    Transport::Shm,
    Transport::Tls,
];

impl Cell {
    /// Why this cell cannot run in this build, if it cannot.
    fn cannot_run(self) -> Option<&'static str> {
        let needs_tokio = self.server == Side::Async || self.client == Side::Async;
        if needs_tokio && !cfg!(feature = "tokio") {
            return Some("the async server and client need the `tokio` feature");
        }
        if self.transport == Transport::Tls && !cfg!(feature = "tls") {
            return Some("TLS needs the `tls` feature");
        }
        None
    }

    /// Runs the cell's checks, or says why it cannot run.
    fn run(self) {
        if let Some(why) = self.cannot_run() {
            eprintln!("{self:?}: not run: {why}");
            return;
        }
        let dir = util::TempDir::new("rpcm");
        let bind = bind_addr(self);
        let (mut server, addr) = spawn_server(self, &bind, &dir);
        let certs = dir.path().to_str().unwrap().to_owned();
        match self.client {
            Side::Sync => sync_client_checks(self, &addr, &certs, &mut server),
            Side::Async => async_client_checks(self, &addr, &certs, &mut server),
        }
        if self.transport == Transport::Shm {
            assert_no_rings_left(&bind);
        }
    }
}

fn side(s: &str) -> Side {
    if s == "Async" {
        Side::Async
    } else {
        Side::Sync
    }
}

fn transport(s: &str) -> Transport {
    match s {
        "Unix" => Transport::Unix,
        "Tcp" => Transport::Tcp,
        "Shm" => Transport::Shm,
        _ => Transport::Tls,
    }
}

/// The service every cell's server runs.
fn calc() -> Service {
    util::rpc::calc_add()
        .method("div", util::rpc::div)
        .method_ctx("slow", |ctx: &CallContext, ms: u64| {
            util::rpc::slow(ctx, ms, CallContext::cancelled, "gave up")
        })
        .method_ctx("whoami", util::rpc::whoami)
}

#[test]
fn child_role() {
    util::role_main(&[("server", serve), ("caller", call_and_hang)]);
}

/// The server role: a server of kind `args[0]` over transport `args[1]` that binds `args[2]`
/// (TLS identity in the directory `args[3]`) and writes the address it serves to
/// `args[3]/addr`.
fn serve(args: &[String]) {
    let (kind, t, dir) = (side(&args[0]), transport(&args[1]), Path::new(&args[3]));
    let publish = |a: String| {
        std::fs::write(dir.join("addr.tmp"), a).unwrap();
        std::fs::rename(dir.join("addr.tmp"), dir.join("addr")).unwrap();
    };
    match kind {
        Side::Sync => {
            let s = match t {
                #[cfg(feature = "tls")]
                Transport::Tls => calc().tls(tls::server(dir)).serve(&args[2]),
                _ => calc().serve(&args[2]),
            }
            .unwrap();
            publish(s.addr().to_string());
            std::thread::sleep(Duration::from_secs(60));
        }
        #[cfg(feature = "tokio")]
        Side::Async => util::rpc::runtime().block_on(async {
            let svc = ipcx::rpc::AsyncService::from(calc());
            let s = match t {
                #[cfg(feature = "tls")]
                Transport::Tls => svc.tls(tls::server(dir)).serve_async(&args[2]).await,
                _ => svc.serve_async(&args[2]).await,
            }
            .unwrap();
            publish(s.addr().to_string());
            tokio::time::sleep(Duration::from_secs(60)).await;
        }),
        #[cfg(not(feature = "tokio"))]
        Side::Async => unreachable!("{:?}", t),
    }
}

/// The caller role: a client of kind `args[0]` over transport `args[1]` that connects to
/// `args[2]` (the TLS root in the directory `args[3]`) and makes a call that takes long; the
/// test kills it during that call.
fn call_and_hang(args: &[String]) {
    let (kind, t) = (side(&args[0]), transport(&args[1]));
    match kind {
        Side::Sync => {
            let c = sync_connect(t, &args[2], &args[3]);
            let _ = c.call::<_, u64>("slow", &10_000u64, LONG);
        }
        #[cfg(feature = "tokio")]
        Side::Async => util::rpc::runtime().block_on(async {
            let c = async_connect(t, &args[2], &args[3]).await;
            let _ = c.call::<_, u64>("slow", &10_000u64, LONG).await;
        }),
        #[cfg(not(feature = "tokio"))]
        Side::Async => unreachable!(),
    }
}

/// The address a cell's server binds: a fresh name for Unix sockets and rings, port 0 on
/// TCP.
fn bind_addr(cell: Cell) -> String {
    match cell.transport {
        Transport::Unix => util::rpc::unix_addr("rpcm"),
        Transport::Shm => util::rpc::shm_addr("rpcm"),
        Transport::Tcp => "tcp:127.0.0.1:0".into(),
        Transport::Tls => "tls:127.0.0.1:0".into(),
    }
}

/// Starts the cell's server in a process of its own (with a TLS identity in `dir` for TLS)
/// and returns it with the address it serves.
fn spawn_server(cell: Cell, bind: &str, dir: &util::TempDir) -> (util::ChildGuard, String) {
    #[cfg(feature = "tls")]
    if cell.transport == Transport::Tls {
        tls::setup(dir.path());
    }
    let (server, t) = (
        format!("{:?}", cell.server),
        format!("{:?}", cell.transport),
    );
    let child = util::spawn_role("server", &[&server, &t, bind, dir.path().to_str().unwrap()]);
    let file = dir.join("addr");
    assert!(
        util::wait_until(LONG, || file.exists()),
        "{cell:?}: no server"
    );
    (child, std::fs::read_to_string(file).unwrap())
}

/// Starts a client of the cell's kind in a process of its own that calls `slow`, kills it
/// while the call runs.
fn kill_a_caller_mid_call(cell: Cell, addr: &str, certs: &str) {
    let client = format!("{:?}", cell.client);
    let t = format!("{:?}", cell.transport);
    let mut caller = util::spawn_role("caller", &[&client, &t, addr, certs]);
    std::thread::sleep(Duration::from_millis(300));
    caller.kill();
}

/// The caller's credentials as the server sees them: over Unix sockets and rings (whose
/// handshake runs on a Unix socket) its pid; none over TCP and TLS.
fn expected_whoami(cell: Cell) -> Option<i32> {
    match cell.transport {
        Transport::Unix | Transport::Shm => Some(std::process::id() as i32),
        Transport::Tcp | Transport::Tls => None,
    }
}

#[track_caller]
fn assert_unknown_method(e: &RpcError) {
    assert!(
        matches!(e, RpcError::UnknownMethod { service, method } if service == "calc" && method == "nope"),
        "{e:?}"
    );
}

#[track_caller]
fn assert_timeout(e: &RpcError, took: Duration) {
    assert!(matches!(e, RpcError::Timeout { .. }), "{e:?}");
    util::rpc::assert_took(took, Duration::from_millis(100));
}

fn sync_connect(t: Transport, addr: &str, certs: &str) -> RpcClient {
    match t {
        #[cfg(feature = "tls")]
        Transport::Tls => {
            RpcClient::connect_tls(addr, &tls::client(Path::new(certs)), "calc", 1, LONG).unwrap()
        }
        _ => {
            let _ = certs;
            RpcClient::connect(addr, "calc", 1, LONG).unwrap()
        }
    }
}

fn sync_client_checks(cell: Cell, addr: &str, certs: &str, server: &mut util::ChildGuard) {
    let c = sync_connect(cell.transport, addr, certs);
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    let e = c.call::<_, i32>("div", &(1, 0), LONG).unwrap_err();
    util::rpc::assert_division_by_zero(&e);
    assert_unknown_method(&c.call::<_, i32>("nope", &(), LONG).unwrap_err());
    let who: Option<(i32, u32)> = c.call("whoami", &(), LONG).unwrap();
    assert_eq!(who.map(|w| w.0), expected_whoami(cell));
    // A deadline: the call fails in time; the connection stays good, and the late reply does
    // not confuse the next calls.
    let t = Instant::now();
    let e = c
        .call::<_, u64>("slow", &10_000u64, Duration::from_millis(100))
        .unwrap_err();
    assert_timeout(&e, t.elapsed());
    assert_eq!(c.call::<_, u64>("slow", &1u64, LONG).unwrap(), 1);
    // Concurrent calls from several threads on one connection.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    assert_eq!(c.call::<_, i32>("add", &(t, i), LONG).unwrap(), t + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A client that goes away mid-call costs the server nothing.
    kill_a_caller_mid_call(cell, addr, certs);
    assert_eq!(c.call::<_, i32>("add", &(3, 4), LONG).unwrap(), 7);
    // A server that goes away fails the pending call and the next.
    util::rpc::killed_server_fails_the_calls(&c, server);
}

#[cfg(feature = "tokio")]
async fn async_connect(t: Transport, addr: &str, certs: &str) -> ipcx::rpc::AsyncRpcClient {
    use ipcx::rpc::AsyncRpcClient;
    match t {
        #[cfg(feature = "tls")]
        Transport::Tls => {
            AsyncRpcClient::connect_tls(addr, &tls::client(Path::new(certs)), "calc", 1, LONG)
                .await
                .unwrap()
        }
        _ => {
            let _ = certs;
            AsyncRpcClient::connect(addr, "calc", 1, LONG)
                .await
                .unwrap()
        }
    }
}

#[cfg(feature = "tokio")]
fn async_client_checks(cell: Cell, addr: &str, certs: &str, server: &mut util::ChildGuard) {
    util::rpc::runtime().block_on(async {
        let c = async_connect(cell.transport, addr, certs).await;
        assert!(c.is_native());
        assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).await.unwrap(), 3);
        let e = c.call::<_, i32>("div", &(1, 0), LONG).await.unwrap_err();
        util::rpc::assert_division_by_zero(&e);
        assert_unknown_method(&c.call::<_, i32>("nope", &(), LONG).await.unwrap_err());
        let who: Option<(i32, u32)> = c.call("whoami", &(), LONG).await.unwrap();
        assert_eq!(who.map(|w| w.0), expected_whoami(cell));
        // A deadline, then a call whose future is dropped: the connection stays good.
        let t = Instant::now();
        let e = c
            .call::<_, u64>("slow", &10_000u64, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_timeout(&e, t.elapsed());
        let slow = c.call::<_, u64>("slow", &300u64, LONG);
        let _ = tokio::time::timeout(Duration::from_millis(20), slow).await;
        assert_eq!(c.call::<_, u64>("slow", &1u64, LONG).await.unwrap(), 1);
        // Concurrent calls on one connection.
        util::rpc::concurrent_adds(&c, 32).await;
        // A client that goes away mid-call costs the server nothing.
        kill_a_caller_mid_call(cell, addr, certs);
        assert_eq!(c.call::<_, i32>("add", &(3, 4), LONG).await.unwrap(), 7);
        // A server that goes away fails the pending call and the next.
        let took = util::rpc::pending_call_fails_when_the_server_dies::<_, u64>(
            &c,
            "slow",
            10_000u64,
            || server.kill(),
        )
        .await;
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(c.is_dead());
        let e = c.call::<_, i32>("add", &(1, 1), LONG).await.unwrap_err();
        assert!(matches!(e, RpcError::PeerGone { .. }), "{e:?}");
    });
}

#[cfg(not(feature = "tokio"))]
fn async_client_checks(cell: Cell, _: &str, _: &str, _: &mut util::ChildGuard) {
    unreachable!("{cell:?} needs the tokio feature")
}

/// Nothing named after the ring address `a` is left in /dev/shm.
#[track_caller]
fn assert_no_rings_left(a: &str) {
    let base = a.trim_start_matches("shm:/");
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(base))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[cfg(feature = "tls")]
mod tls {
    use std::path::Path;

    use ipcx::channel::TlsConfig;
    use ipcx::channel::transport::tls;

    use crate::util::rpc::Ca;

    /// Puts a server identity for `localhost` and the root that signed it in `dir`.
    pub fn setup(dir: &Path) {
        let ca = Ca::new("matrix");
        let (chain, key) = ca.leaf(&["localhost"]);
        std::fs::write(dir.join("server.der"), chain[0].as_ref()).unwrap();
        std::fs::write(dir.join("server-key.der"), key.secret_der()).unwrap();
        std::fs::write(dir.join("root.der"), ca.root().as_ref()).unwrap();
    }

    /// The server's certificates, from `dir`.
    pub fn server(dir: &Path) -> TlsConfig {
        let chain = tls::load_certificates(&dir.join("server.der")).unwrap();
        let key = tls::load_private_key(&dir.join("server-key.der")).unwrap();
        TlsConfig::new().server(tls::server_config(chain, key, None).unwrap())
    }

    /// The client's: trusting the root in `dir`, for a server named `localhost`.
    pub fn client(dir: &Path) -> TlsConfig {
        let roots = tls::load_certificates(&dir.join("root.der")).unwrap();
        TlsConfig::new()
            .client(tls::client_config(&roots, None).unwrap())
            .server_name("localhost")
    }
}

/// The matrix has every cell once, and says which ones cannot run in this build and why.
#[test]
fn the_matrix_has_every_cell_once() {
    for &server in &SIDES {
        for &client in &SIDES {
            for &transport in &TRANSPORTS {
                let cell = Cell {
                    server,
                    client,
                    transport,
                };
                let n = CELLS.iter().filter(|&&c| c == cell).count();
                assert_eq!(n, 1, "{cell:?}");
                match cell.cannot_run() {
                    Some(why) => eprintln!("{cell:?}: not run: {why}"),
                    None => eprintln!("{cell:?}: runs"),
                }
            }
        }
    }
    assert_eq!(CELLS.len(), SIDES.len() * SIDES.len() * TRANSPORTS.len());
}

macro_rules! matrix {
    ($($name:ident: $server:ident $client:ident $transport:ident;)*) => {
        const CELLS: &[Cell] = &[$(Cell {
            server: Side::$server,
            client: Side::$client,
            transport: Transport::$transport,
        }),*];
        $(
            #[test]
            fn $name() {
                Cell {
                    server: Side::$server,
                    client: Side::$client,
                    transport: Transport::$transport,
                }
                .run();
            }
        )*
    };
}

matrix! {
    sync_server_sync_client_unix: Sync Sync Unix;
    sync_server_sync_client_tcp: Sync Sync Tcp;
    sync_server_sync_client_shm: Sync Sync Shm;
    sync_server_sync_client_tls: Sync Sync Tls;
    sync_server_async_client_unix: Sync Async Unix;
    sync_server_async_client_tcp: Sync Async Tcp;
    sync_server_async_client_shm: Sync Async Shm;
    sync_server_async_client_tls: Sync Async Tls;
    async_server_sync_client_unix: Async Sync Unix;
    async_server_sync_client_tcp: Async Sync Tcp;
    async_server_sync_client_shm: Async Sync Shm;
    async_server_sync_client_tls: Async Sync Tls;
    async_server_async_client_unix: Async Async Unix;
    async_server_async_client_tcp: Async Async Tcp;
    async_server_async_client_shm: Async Async Shm;
    async_server_async_client_tls: Async Async Tls;
}
