//! Async (tokio) RPC between processes, what is particular to the async server and client
//! (the calls every server and client pair makes over every transport are in
//! `rpc_matrix.rs`): async handlers beside sync ones, concurrent calls on one connection
//! answered out of order, deadlines seen by async handlers, calls past their deadline not
//! started, handler panics, version mismatch, a client killed mid-call cancelling its
//! handler, graceful shutdown, and the shared-memory bridge; native async TLS both ways with
//! client certificates required and refused; the async client over shared memory with more
//! requests than the ring holds; a result too large for a client; stray replies (a second one
//! for a call, one for an id nobody asked for) ignored by the async client.
#![cfg(feature = "tokio")]
mod util;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipcx::channel::Endpoint;
#[cfg(feature = "tls")]
use ipcx::channel::TlsConfig;
use ipcx::pattern::reqrep::{Connection, ServerOptions, Status};
use ipcx::rpc::{AsyncRpcClient, AsyncService, CallContext, RpcClient, RpcError};
use ipcx::wait::Wait;
use util::rpc::{LONG, connect, connect_async, runtime, unix_addr};

async fn explode(_: ()) -> Result<(), String> {
    tokio::task::yield_now().await;
    panic!("async handler exploded")
}

/// The service the server roles run: sync and async handlers side by side.
fn calc() -> AsyncService {
    let arrived = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let runs = Arc::new(AtomicUsize::new(0));
    let holding = Arc::new(AtomicBool::new(false));
    let (r1, r2, h1, h2) = (runs.clone(), runs, holding.clone(), holding);
    util::rpc::calc_add()
        .method("boom", |_: ()| -> Result<(), String> {
            panic!("sync handler exploded")
        })
        .method_async("add_async", |a: (i32, i32), _ctx: CallContext| async move {
            Ok::<_, String>(a.0 + a.1)
        })
        .method_async("div", |a: (i32, i32), _ctx: CallContext| async move {
            util::rpc::div(a)
        })
        .method_async("boom_async", |a: (), _ctx: CallContext| explode(a))
        .method_async(
            "boom_early",
            |_: (), _ctx: CallContext| -> std::future::Ready<Result<(), String>> {
                panic!("exploded before returning its future")
            },
        )
        .method_async(
            "echo_after",
            |(ms, tag): (u64, u32), _ctx: CallContext| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, String>(tag)
            },
        )
        // Returns once `want` calls have arrived in all: only concurrent calls get there.
        .method_async("rendezvous", move |want: usize, _ctx: CallContext| {
            let arrived = arrived.clone();
            async move {
                arrived.send_modify(|n| *n += 1);
                let mut rx = arrived.subscribe();
                let _ = rx.wait_for(|n| *n >= want).await;
                Ok::<_, String>(want)
            }
        })
        .method_async("echo_len", |v: Vec<u8>, _ctx: CallContext| async move {
            tokio::task::yield_now().await;
            Ok::<_, String>((v.len(), v.first().copied(), v.last().copied()))
        })
        .method_async("deadline", |_: (), ctx: CallContext| async move {
            Ok::<_, String>(ctx.remaining().map(|d| d.as_millis() as u64))
        })
        .method_async("whoami", |_: (), ctx: CallContext| async move {
            Ok::<_, String>(ctx.credentials.map(|c| (c.pid, c.uid)))
        })
        .method_ctx("hold_sync", move |_ctx: &CallContext, ms: u64| {
            h1.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(ms));
            h1.store(false, Ordering::SeqCst);
            Ok::<_, String>(ms)
        })
        .method_async("holding", move |_: (), _ctx: CallContext| {
            let h = h2.load(Ordering::SeqCst);
            async move { Ok::<_, String>(h) }
        })
        .method_ctx("counted", move |_ctx: &CallContext, _: ()| {
            r1.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(())
        })
        .method_async("count", move |_: (), _ctx: CallContext| {
            let n = r2.load(Ordering::SeqCst);
            async move { Ok::<_, String>(n) }
        })
}

/// Writes the served address where the parent reads it (whole, through a rename).
fn publish(path: &str, addr: &str) {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, addr).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn published(path: &Path) -> String {
    assert!(util::wait_until(LONG, || path.exists()), "no address");
    std::fs::read_to_string(path).unwrap()
}

/// Starts the async server role at `addr` and returns the address it serves.
fn spawn_async_server(
    addr: &str,
    dir: &util::TempDir,
    extra: &[&str],
) -> (util::ChildGuard, String) {
    let file = dir.join("addr");
    let f = file.to_str().unwrap();
    let mut args = vec![addr, f];
    args.extend_from_slice(extra);
    let child = util::spawn_role("async_server", &args);
    let a = published(&file);
    (child, a)
}

#[test]
fn child_role() {
    util::role_main(&[
        ("async_server", |args| {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2).enable_all();
            if args.get(2).map(String::as_str) == Some("one-blocking-thread") {
                b.max_blocking_threads(1);
            }
            b.build().unwrap().block_on(async {
                let s = calc().serve_async(&args[0]).await.unwrap();
                assert_eq!(s.is_native(), !args[0].starts_with("shm:"));
                publish(&args[1], &s.addr().to_string());
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }),
        ("hold_caller", |args| {
            let c = RpcClient::connect(&args[0], "calc", 1, LONG).unwrap();
            let _ = c.call::<_, u64>("hold", &10_000u64, LONG);
        }),
        ("deadline_caller", |args| {
            let c = RpcClient::connect(&args[0], "calc", 1, LONG).unwrap();
            let t = Instant::now();
            let e = c
                .call::<_, u64>("hold", &10_000u64, Duration::from_millis(200))
                .unwrap_err();
            let took = t.elapsed();
            assert!(matches!(e, RpcError::Timeout { .. }), "{e:?}");
            util::rpc::assert_took(took, Duration::from_millis(200));
        }),
        ("shutdown_caller", |args| {
            runtime().block_on(async {
                let c = AsyncRpcClient::connect(&args[0], "calc", 1, LONG)
                    .await
                    .unwrap();
                // Answered although the server is told to stop meanwhile.
                assert_eq!(c.call::<_, u64>("hold", &500u64, LONG).await.unwrap(), 500);
                let e = c.call::<_, i32>("add", &(1, 1), LONG).await.unwrap_err();
                assert!(matches!(e, RpcError::PeerGone { .. }), "{e:?}");
            });
        }),
        ("adder", |args| {
            let c = RpcClient::connect(&args[0], "calc", 1, LONG).unwrap();
            assert_eq!(c.call::<_, i32>("add", &(3, 4), LONG).unwrap(), 7);
            assert_eq!(c.call::<_, i32>("add_async", &(30, 40), LONG).unwrap(), 70);
        }),
        ("tls_async_server", tls_async_server),
        ("tls_async_caller", tls_async_caller),
        ("denied_caller", |args| {
            let e = RpcClient::connect(&args[0], "calc", 1, LONG).unwrap_err();
            assert!(matches!(e, RpcError::Denied { .. }), "{e:?}");
        }),
    ]);
}

/// What the in-process server's `hold` handler saw.
#[derive(Default)]
struct Probe {
    started: AtomicBool,
    finished: AtomicBool,
    dropped: AtomicBool,
    remaining_ms: Mutex<Option<u64>>,
}

impl Probe {
    /// Waits (at most [`LONG`]) until `flag`, one of this probe's, is set.
    fn wait_for(&self, flag: &AtomicBool) -> bool {
        util::wait_until(LONG, || flag.load(Ordering::SeqCst))
    }
}

/// Serves [`probed`] in this process at a new Unix address named after `tag`: the probe, the
/// runtime, the running server and its address.
fn serve_probed(
    tag: &str,
) -> (
    Arc<Probe>,
    tokio::runtime::Runtime,
    ipcx::rpc::AsyncRunningService,
    String,
) {
    let probe = Arc::new(Probe::default());
    let rt = runtime();
    let s = rt
        .block_on(probed(&probe).serve_async(&unix_addr(tag)))
        .unwrap();
    let a = s.addr().to_string();
    (probe, rt, s, a)
}

/// Marks the handler's future as dropped before it finished.
struct DropMark(Arc<Probe>, bool);

impl Drop for DropMark {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.store(true, Ordering::SeqCst);
        }
    }
}

/// A service for servers run by the test process itself, to look at what handlers saw.
fn probed(probe: &Arc<Probe>) -> AsyncService {
    let p = probe.clone();
    AsyncService::new("calc", 1)
        .method("add", util::rpc::add)
        .method_async("add_async", |a: (i32, i32), _ctx: CallContext| async move {
            Ok::<_, String>(a.0 + a.1)
        })
        .method_async("hold", move |ms: u64, ctx: CallContext| {
            let p = p.clone();
            async move {
                let mut mark = DropMark(p.clone(), false);
                *p.remaining_ms.lock().unwrap() = ctx.remaining().map(|d| d.as_millis() as u64);
                p.started.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                p.finished.store(true, Ordering::SeqCst);
                mark.1 = true;
                Ok::<_, String>(ms)
            }
        })
}

#[test]
fn async_server_answers_a_sync_client() {
    let dir = util::TempDir::new("rpca-sync-client");
    let (mut server, a) = spawn_async_server(&unix_addr("rpca"), &dir, &[]);
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add_async", &(20, 22), LONG).unwrap(), 42);
    let e = c.call::<_, i32>("div", &(1, 0), LONG).unwrap_err();
    util::rpc::assert_division_by_zero(&e);
    assert_eq!(c.call::<_, i32>("div", &(9, 3), LONG).unwrap(), 3);
    util::rpc::assert_decode_errors(&c, "add_async");
    // The handler sees the caller's deadline.
    let left: Option<u64> = c.call("deadline", &(), Duration::from_secs(3)).unwrap();
    assert!(left.is_some_and(|ms| ms > 0 && ms <= 3000), "{left:?}");
    server.kill();
}

#[test]
fn handler_panics_are_answered_and_the_server_goes_on() {
    let dir = util::TempDir::new("rpca-panic");
    let (mut server, a) = spawn_async_server(&unix_addr("rpca-panic"), &dir, &[]);
    let c = connect(&a);
    for (method, text) in [
        ("boom", "sync handler exploded"),
        ("boom_async", "async handler exploded"),
        ("boom_early", "exploded before returning its future"),
    ] {
        let e = c.call::<_, ()>(method, &(), LONG).unwrap_err();
        assert!(
            matches!(&e, RpcError::HandlerPanicked { message, .. } if message.contains(text)),
            "{method}: {e:?}"
        );
        assert_eq!(c.call::<_, i32>("add_async", &(40, 2), LONG).unwrap(), 42);
    }
    runtime().block_on(async {
        let c = connect_async(&a).await;
        let e = c.call::<_, ()>("boom_async", &(), LONG).await.unwrap_err();
        assert!(matches!(e, RpcError::HandlerPanicked { .. }), "{e:?}");
        assert_eq!(c.call::<_, i32>("add", &(1, 1), LONG).await.unwrap(), 2);
    });
    server.kill();
}

#[test]
fn concurrent_calls_on_one_connection_are_answered_out_of_order() {
    let dir = util::TempDir::new("rpca-concurrent");
    let (mut server, a) = spawn_async_server(&unix_addr("rpca-conc"), &dir, &[]);
    // Eight calls that each wait until all eight have arrived: they only return if the
    // server runs them at the same time (one sync client, one connection, eight threads).
    let c = connect(&a);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || c.call::<_, usize>("rendezvous", &8usize, LONG))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), 8);
    }
    runtime().block_on(async {
        let c = connect_async(&a).await;
        // The same with the async client: eight more calls.
        util::rpc::rendezvous(&c, 8, 16).await;
        // Calls sent in order, the first ones taking longest: replies come back in reverse
        // order and each reaches its own caller.
        let order = util::rpc::replies_in_reverse_order(&c).await;
        assert_eq!(order.len(), 6);
    });
    server.kill();
}

#[test]
fn async_handlers_see_the_deadline_and_are_dropped_past_it() {
    let (probe, rt, s, a) = serve_probed("rpca-deadline");
    let mut child = util::spawn_role("deadline_caller", &[&a]);
    child.expect_success();
    assert!(probe.wait_for(&probe.dropped));
    assert!(probe.started.load(Ordering::SeqCst));
    assert!(!probe.finished.load(Ordering::SeqCst));
    let left = *probe.remaining_ms.lock().unwrap();
    assert!(left.is_some_and(|ms| ms <= 200), "{left:?}");
    rt.block_on(s.shutdown());
}

#[test]
fn a_call_past_its_deadline_is_not_started() {
    let dir = util::TempDir::new("rpca-not-started");
    // One blocking thread: a sync call waits for it while another sync call holds it.
    let (mut server, a) = spawn_async_server(
        &unix_addr("rpca-not-started"),
        &dir,
        &["one-blocking-thread"],
    );
    let c = connect(&a);
    let c2 = c.clone();
    let hold = std::thread::spawn(move || c2.call::<_, u64>("hold_sync", &1500u64, LONG));
    assert!(util::wait_until(LONG, || c
        .call::<_, bool>("holding", &(), LONG)
        .unwrap()));
    let e = c
        .call::<_, ()>("counted", &(), Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(e, RpcError::Timeout { .. }), "{e:?}");
    assert_eq!(hold.join().unwrap().unwrap(), 1500);
    // The expired call never ran; a call in time does.
    assert_eq!(c.call::<_, usize>("count", &(), LONG).unwrap(), 0);
    c.call::<_, ()>("counted", &(), LONG).unwrap();
    assert_eq!(c.call::<_, usize>("count", &(), LONG).unwrap(), 1);
    server.kill();
}

#[test]
fn version_mismatch_and_refusals_from_an_async_server() {
    let dir = util::TempDir::new("rpca-version");
    let (mut server, a) = spawn_async_server(&unix_addr("rpca-version"), &dir, &[]);
    connect(&a);
    util::rpc::assert_version_and_service_refusals(&a);
    runtime().block_on(async {
        let e = AsyncRpcClient::connect(&a, "calc", 3, LONG)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                RpcError::VersionMismatch {
                    client: 3,
                    server: 1,
                    ..
                }
            ),
            "{e:?}"
        );
    });
    server.kill();
    // The authorisation hook refuses a client in another process.
    let rt = runtime();
    let s = rt
        .block_on(
            probed(&Arc::default())
                .authorize(|_| false)
                .serve_async(&unix_addr("rpca-deny")),
        )
        .unwrap();
    util::spawn_role("denied_caller", &[&s.addr().to_string()]).expect_success();
    drop(s);
}

#[test]
fn a_client_killed_mid_call_cancels_its_async_handler() {
    let (probe, rt, s, a) = serve_probed("rpca-killed");
    let mut child = util::spawn_role("hold_caller", &[&a]);
    assert!(probe.wait_for(&probe.started));
    child.kill();
    assert!(probe.wait_for(&probe.dropped));
    assert!(!probe.finished.load(Ordering::SeqCst));
    // The server goes on.
    util::spawn_role("adder", &[&a]).expect_success();
    rt.block_on(s.shutdown());
}

#[test]
fn graceful_shutdown_lets_calls_in_progress_finish() {
    let (probe, rt, s, a) = serve_probed("rpca-shutdown");
    let mut child = util::spawn_role("shutdown_caller", &[&a]);
    assert!(probe.wait_for(&probe.started));
    assert!(rt.block_on(s.shutdown_timeout(LONG)));
    assert!(probe.finished.load(Ordering::SeqCst));
    child.expect_success();
    // The address is free: nobody answers there any more.
    util::rpc::assert_nobody_serves(&a, Duration::from_secs(1));
}

#[test]
fn shared_memory_goes_through_the_bridge() {
    let name = util::posix_name("rpca-shm");
    let rt = runtime();
    let s = rt
        .block_on(probed(&Arc::default()).serve_async(&format!("shm:{name}")))
        .unwrap();
    assert!(!s.is_native());
    let a = s.addr().to_string();
    util::spawn_role("adder", &[&a]).expect_success();
    rt.block_on(s.shutdown());
    assert_no_rings_left(&name);
}

#[test]
fn async_client_over_shared_memory_routes_concurrent_calls() {
    let name = util::posix_name("rpca-shm-client");
    let dir = util::TempDir::new("rpca-shm-client");
    let (mut server, a) = spawn_async_server(&format!("shm:{name}"), &dir, &[]);
    runtime().block_on(async {
        let c = connect_async(&a).await;
        assert!(c.is_native());
        assert_eq!(c.call::<_, i32>("add", &(20, 22), LONG).await.unwrap(), 42);
        // Eight calls that each wait until all eight have arrived: all are in flight at once
        // on the one connection.
        util::rpc::rendezvous(&c, 8, 8).await;
        // Replies in reverse order, each to its own caller.
        util::rpc::replies_in_reverse_order(&c).await;
        // More request bytes at once than the request ring holds: the calls that find it
        // full wait for room on the connection's writer thread, and all are answered.
        let big: Vec<_> = (0..48u8)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move {
                    let v = vec![i; 512 * 1024];
                    c.call::<_, (usize, Option<u8>, Option<u8>)>("echo_len", &v, LONG)
                        .await
                        .map(|r| (i, r))
                })
            })
            .collect();
        for h in big {
            let (i, r) = h.await.unwrap().unwrap();
            assert_eq!(r, (512 * 1024, Some(i), Some(i)));
        }
        // Errors are typed as over the other transports.
        let e = c.call::<_, i32>("nope", &(), LONG).await.unwrap_err();
        assert!(matches!(e, RpcError::UnknownMethod { .. }), "{e:?}");
        let e = c.call::<_, ()>("boom_async", &(), LONG).await.unwrap_err();
        assert!(matches!(e, RpcError::HandlerPanicked { .. }), "{e:?}");
        let t = Instant::now();
        let e = c
            .call::<_, u32>("echo_after", &(10_000u64, 1u32), Duration::from_millis(100))
            .await
            .unwrap_err();
        let took = t.elapsed();
        assert!(matches!(e, RpcError::Timeout { .. }), "{e:?}");
        util::rpc::assert_took(took, Duration::from_millis(100));
        // Oversize arguments are refused before sending.
        let e = c
            .call::<_, (usize, Option<u8>, Option<u8>)>("echo_len", &vec![0u8; 2 << 20], LONG)
            .await
            .unwrap_err();
        assert!(matches!(e, RpcError::TooLarge { .. }), "{e:?}");
        assert_eq!(c.call::<_, i32>("add", &(1, 1), LONG).await.unwrap(), 2);
    });
    server.kill();
    assert_no_rings_left(&name);
}

/// A server that answers each call twice, and answers ids nobody asked for: the async client
/// ignores the stray replies, over a socket (its reader task) and over shared memory (its
/// reader thread), and each call gets its own result.
#[test]
fn stray_replies_are_ignored_by_the_async_client() {
    for a in [unix_addr("rpca-stray"), util::rpc::shm_addr("rpca-stray")] {
        let listener = Endpoint::parse(&a).unwrap().bind().unwrap();
        let a = listener.local_addr().unwrap().to_string();
        std::thread::scope(|s| {
            s.spawn(|| {
                let opts = ServerOptions::new("calc", 1);
                let conn = Connection::accept(&*listener, &opts, Wait::timeout(LONG)).unwrap();
                for _ in 0..3 {
                    let (id, args) = conn
                        .recv_with(Wait::timeout(LONG), |c| (c.id(), c.payload.to_vec()))
                        .unwrap();
                    conn.reply(id + 1000, Status::Ok, b"nobody asked").unwrap();
                    // The argument (a string) is the result.
                    conn.reply(id, Status::Ok, &args).unwrap();
                    // The last one may find the client gone.
                    let _ = conn.reply(id, Status::AppError, b"again");
                }
            });
            runtime().block_on(async {
                let c = AsyncRpcClient::connect(&a, "calc", 1, LONG).await.unwrap();
                for i in 0..3 {
                    let msg = format!("call {i}");
                    let r: String = c.call("echo", &msg, LONG).await.unwrap();
                    assert_eq!(r, msg, "{a}");
                }
            });
        });
    }
}

/// Nothing named after `name` is left in /dev/shm.
fn assert_no_rings_left(name: &str) {
    let base = name.trim_start_matches('/');
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(base))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// ---------------------------------------------------------------------------------------------
// TLS

#[cfg(feature = "tls")]
mod certs {
    use std::path::Path;
    use std::sync::Arc;

    use ipcx::channel::transport::tls::{self, rustls};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    pub use crate::util::rpc::{Ca, Identity};

    /// The client side of `cfg`, checking the server's certificate against `name`.
    pub fn to(name: &str, cfg: Arc<rustls::ClientConfig>) -> ipcx::channel::TlsConfig {
        ipcx::channel::TlsConfig::new()
            .client(cfg)
            .server_name(name)
    }

    /// Writes an identity as `dir/NAME.der` and `dir/NAME-key.der`.
    pub fn write_identity(dir: &Path, name: &str, id: &Identity) {
        std::fs::write(dir.join(format!("{name}.der")), id.0[0].as_ref()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.der")), id.1.secret_der()).unwrap();
    }

    /// Reads what [`write_identity`] wrote, if it did.
    pub fn read_identity(dir: &Path, name: &str) -> Option<Identity> {
        let cert = std::fs::read(dir.join(format!("{name}.der"))).ok()?;
        let key = std::fs::read(dir.join(format!("{name}-key.der"))).ok()?;
        Some((
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        ))
    }

    pub fn read_root(dir: &Path, name: &str) -> Option<CertificateDer<'static>> {
        std::fs::read(dir.join(name)).ok().map(CertificateDer::from)
    }

    /// Reads a server's configuration from `dir` (server.der, server-key.der, and
    /// client-ca.der when clients must present certificates).
    pub fn server_config(dir: &Path) -> Arc<rustls::ServerConfig> {
        let (chain, key) = read_identity(dir, "server").unwrap();
        let client_roots = read_root(dir, "client-ca.der").map(|r| vec![r]);
        tls::server_config(chain, key, client_roots.as_deref()).unwrap()
    }

    /// A client configuration trusting `dir/root.der`, with `dir/client*.der` if there.
    pub fn client_config(dir: &Path, with_identity: bool) -> Arc<rustls::ClientConfig> {
        let root = read_root(dir, "root.der").unwrap();
        let id = if with_identity {
            read_identity(dir, "client")
        } else {
            None
        };
        tls::client_config(&[root], id).unwrap()
    }

    /// Puts a server identity for `localhost` signed by `ca` in `dir`, with `ca`'s root, and
    /// the client CA when given.
    pub fn setup(dir: &Path, ca: &Ca, client_ca: Option<&Ca>) {
        write_identity(dir, "server", &ca.leaf(&["localhost"]));
        std::fs::write(dir.join("root.der"), ca.root().as_ref()).unwrap();
        if let Some(c) = client_ca {
            std::fs::write(dir.join("client-ca.der"), c.root().as_ref()).unwrap();
        }
    }
}

/// Serves `calc()` over TLS natively from the certificates in `args[0]`; writes the address to
/// `args[0]/addr`.
fn tls_async_server(args: &[String]) {
    #[cfg(feature = "tls")]
    runtime().block_on(async {
        let dir = Path::new(&args[0]);
        let s = calc()
            .tls(TlsConfig::new().server(certs::server_config(dir)))
            .serve_async("tls:127.0.0.1:0")
            .await
            .unwrap();
        assert!(s.is_native());
        publish(dir.join("addr").to_str().unwrap(), &s.addr().to_string());
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    #[cfg(not(feature = "tls"))]
    let _ = args;
}

/// The async TLS client in a process of its own: calls the server at `args[0]` with the
/// certificates in `args[1]`. With `args[2] == "cert-required"`, first checks that connecting
/// without a client certificate is refused, then connects with one.
fn tls_async_caller(args: &[String]) {
    #[cfg(feature = "tls")]
    runtime().block_on(async {
        let dir = Path::new(&args[1]);
        if args.get(2).map(String::as_str) == Some("cert-required") {
            let e = AsyncRpcClient::connect_tls(
                &args[0],
                &certs::to("localhost", certs::client_config(dir, false)),
                "calc",
                1,
                LONG,
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&e, RpcError::Tls { message } if message.contains("client certificate")),
                "{e:?}"
            );
        }
        let c = AsyncRpcClient::connect_tls(
            &args[0],
            &certs::to("localhost", certs::client_config(dir, true)),
            "calc",
            1,
            LONG,
        )
        .await
        .unwrap();
        assert_eq!(c.call::<_, i32>("add", &(3, 4), LONG).await.unwrap(), 7);
        let calls: Vec<_> = (0..16u32)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.call::<_, u32>("echo_after", &(5u64, i), LONG).await })
            })
            .collect();
        for (i, h) in calls.into_iter().enumerate() {
            assert_eq!(h.await.unwrap().unwrap(), i as u32);
        }
        let e = c.call::<_, i32>("nope", &(), LONG).await.unwrap_err();
        assert!(matches!(e, RpcError::UnknownMethod { .. }), "{e:?}");
    });
    #[cfg(not(feature = "tls"))]
    let _ = args;
}

#[cfg(feature = "tls")]
fn spawn_tls_async_server(dir: &util::TempDir) -> (util::ChildGuard, String) {
    let child = util::spawn_role("tls_async_server", &[dir.path().to_str().unwrap()]);
    let a = published(&dir.join("addr"));
    (child, a)
}

#[cfg(feature = "tls")]
#[test]
fn native_tls_server_answers_sync_and_async_clients() {
    use ipcx::channel::transport::tls;
    let ca = certs::Ca::new("server");
    let dir = util::TempDir::new("rpca-tls-native");
    certs::setup(dir.path(), &ca, None);
    let (mut server, a) = spawn_tls_async_server(&dir);
    // The sync TLS client.
    let cfg = tls::client_config(&[ca.root()], None).unwrap();
    let c =
        RpcClient::connect_tls(&a, &certs::to("localhost", cfg.clone()), "calc", 1, LONG).unwrap();
    assert_eq!(c.call::<_, i32>("add", &(3, 4), LONG).unwrap(), 7);
    assert_eq!(c.call::<_, i32>("add_async", &(30, 40), LONG).unwrap(), 70);
    let big = vec![7u8; 600 * 1024];
    let r: (usize, Option<u8>, Option<u8>) = c.call("echo_len", &big, LONG).unwrap();
    assert_eq!(r, (big.len(), Some(7), Some(7)));
    runtime().block_on(async {
        // The native async TLS client, with concurrent calls answered out of order.
        let c =
            AsyncRpcClient::connect_tls(&a, &certs::to("localhost", cfg.clone()), "calc", 1, LONG)
                .await
                .unwrap();
        assert!(c.is_native());
        assert_eq!(c.call::<_, i32>("add", &(20, 22), LONG).await.unwrap(), 42);
        util::rpc::rendezvous(&c, 8, 8).await;
        let r: (usize, Option<u8>, Option<u8>) = c.call("echo_len", &big, LONG).await.unwrap();
        assert_eq!(r, (big.len(), Some(7), Some(7)));
        let e = c.call::<_, i32>("div", &(1, 0), LONG).await.unwrap_err();
        util::rpc::assert_division_by_zero(&e);
        // Version checks and refusals come through TLS as over plain sockets.
        let e =
            AsyncRpcClient::connect_tls(&a, &certs::to("localhost", cfg.clone()), "calc", 2, LONG)
                .await
                .unwrap_err();
        assert!(
            matches!(
                e,
                RpcError::VersionMismatch {
                    client: 2,
                    server: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        // An untrusted server, and the wrong server name, fail clearly.
        let other = certs::Ca::new("other");
        let untrusting = tls::client_config(&[other.root()], None).unwrap();
        let e =
            AsyncRpcClient::connect_tls(&a, &certs::to("localhost", untrusting), "calc", 1, LONG)
                .await
                .unwrap_err();
        assert!(
            matches!(&e, RpcError::Tls { message } if message.contains("not trusted")),
            "{e:?}"
        );
        let e = AsyncRpcClient::connect_tls(
            &a,
            &certs::to("example.org", cfg.clone()),
            "calc",
            1,
            LONG,
        )
        .await
        .unwrap_err();
        assert!(matches!(&e, RpcError::Tls { .. }), "{e:?}");
        // A tls: address without certificates is refused, saying which.
        let e = AsyncRpcClient::connect(&a, "calc", 1, LONG)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("--ca"), "{e:?}");
        // A plain client gets an error, not a hang.
        let t = Instant::now();
        let plain = a.replacen("tls:", "tcp:", 1);
        let e = AsyncRpcClient::connect(&plain, "calc", 1, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "{e:?}");
        // The server is unharmed; a killed server fails the calls of the async client.
        assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).await.unwrap(), 3);
        util::rpc::pending_call_fails_when_the_server_dies::<_, u32>(
            &c,
            "echo_after",
            (10_000u64, 1u32),
            || server.kill(),
        )
        .await;
    });
}

#[cfg(feature = "tls")]
#[test]
fn native_async_tls_client_calls_a_sync_tls_server() {
    use ipcx::channel::transport::tls;
    let ca = certs::Ca::new("server");
    let client_ca = certs::Ca::new("clients");
    let dir = util::TempDir::new("rpca-tls-sync-server");
    certs::setup(dir.path(), &ca, Some(&client_ca));
    certs::write_identity(dir.path(), "client", &client_ca.leaf(&["client"]));
    // The thread-based TLS server requiring client certificates, here; the async client in a
    // process of its own.
    let s = util::rpc::calc_add()
        .method("echo_after", util::rpc::echo_after)
        .tls(TlsConfig::new().server(certs::server_config(dir.path())))
        .serve("tls:127.0.0.1:0")
        .unwrap();
    let a = s.addr().to_string();
    util::spawn_role(
        "tls_async_caller",
        &[&a, dir.path().to_str().unwrap(), "cert-required"],
    )
    .expect_success();
    // A client certificate from a CA the server does not trust.
    let stranger = certs::Ca::new("stranger");
    let cfg = tls::client_config(&[ca.root()], Some(stranger.leaf(&["client"]))).unwrap();
    runtime().block_on(async {
        let e = AsyncRpcClient::connect_tls(&a, &certs::to("localhost", cfg), "calc", 1, LONG)
            .await
            .unwrap_err();
        assert!(matches!(&e, RpcError::Tls { .. }), "{e:?}");
    });
    drop(s);
}

#[cfg(feature = "tls")]
#[test]
fn native_tls_server_requires_client_certificates() {
    use ipcx::channel::transport::tls;
    let ca = certs::Ca::new("server");
    let client_ca = certs::Ca::new("clients");
    let dir = util::TempDir::new("rpca-mtls");
    certs::setup(dir.path(), &ca, Some(&client_ca));
    certs::write_identity(dir.path(), "client", &client_ca.leaf(&["client"]));
    let (mut server, a) = spawn_tls_async_server(&dir);
    // The sync client: refused without a certificate, served with one.
    let e = RpcClient::connect_tls(
        &a,
        &certs::to("localhost", tls::client_config(&[ca.root()], None).unwrap()),
        "calc",
        1,
        LONG,
    )
    .unwrap_err();
    assert!(
        matches!(&e, RpcError::Tls { message } if message.contains("client certificate")),
        "{e:?}"
    );
    let c = RpcClient::connect_tls(
        &a,
        &certs::to("localhost", certs::client_config(dir.path(), true)),
        "calc",
        1,
        LONG,
    )
    .unwrap();
    assert_eq!(c.call::<_, i32>("add", &(20, 22), LONG).unwrap(), 42);
    // The async client in another process: the same.
    util::spawn_role(
        "tls_async_caller",
        &[&a, dir.path().to_str().unwrap(), "cert-required"],
    )
    .expect_success();
    runtime().block_on(async {
        // A certificate from a CA the server does not trust is refused.
        let stranger = certs::Ca::new("stranger");
        let cfg = tls::client_config(&[ca.root()], Some(stranger.leaf(&["client"]))).unwrap();
        let e = AsyncRpcClient::connect_tls(&a, &certs::to("localhost", cfg), "calc", 1, LONG)
            .await
            .unwrap_err();
        assert!(matches!(&e, RpcError::Tls { .. }), "{e:?}");
    });
    // The server went on through all of it.
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    server.kill();
}

#[test]
fn a_result_larger_than_a_client_takes_is_an_application_error() {
    let rt = runtime();
    let s = rt
        .block_on(
            AsyncService::new("calc", 1)
                .method("huge", |_: ()| Ok::<_, String>(vec![7u8; 17 << 20]))
                .method("add", util::rpc::add)
                .serve_async(&unix_addr("rpca-huge")),
        )
        .unwrap();
    let c = connect(&s.addr().to_string());
    let e = c.call::<_, Vec<u8>>("huge", &(), LONG).unwrap_err();
    assert!(
        matches!(&e, RpcError::Remote { message, .. } if message.contains("larger than a client accepts")),
        "{e:?}"
    );
    // The connection goes on.
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    drop(s);
}
