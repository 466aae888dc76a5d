//! `ipcx call` against services living in other processes: a Rust service over unix, tcp and
//! shm called with a scalar, an array (a tuple) and an object (a struct); its errors (exit 1,
//! the message on stderr), a method it does not have (exit 1, listing the methods it has);
//! `--list` as text and JSON; `--timeout` with a server that never answers and with none;
//! a service over `tls:` with its CA (and refused without it); a service found by its name; a hostile server answering garbage, huge lengths and values
//! JSON cannot hold (a clear error or tagged, escaped output, never a panic).
mod util;

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use util::{run, stderr, stdout};

const ROLE_ENV: &str = "IPCX_CALL_TEST_ROLE";

#[derive(Debug, Serialize, Deserialize)]
struct Point {
    x: i64,
    y: i64,
}

/// The child process: re-runs this test binary with only `child_role` selected. Roles:
/// `calc NAME ADDR` serves the RPC service NAME at ADDR; `hostile MODE NAME` answers at the
/// abstract socket NAME as MODE says.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let parts: Vec<&str> = role.split('\x1f').collect();
    match parts[..] {
        ["calc", name, addr] => serve_calc(name, addr, None),
        ["tlscalc", name, addr, cert, key] => serve_calc(name, addr, Some((cert, key))),
        ["hostile", mode, name] => serve_hostile(mode, name),
        ["old", service, name] => serve_old(service, name),
        _ => panic!("unknown role {role:?}"),
    }
    std::process::exit(0);
}

/// Serves the calculator `name` at `addr`; with `tls`, the paths of its PEM certificate and
/// key.
fn serve_calc(name: &str, addr: &str, tls: Option<(&str, &str)>) {
    let mut service = ipcx::rpc::Service::new(name, 2);
    if let Some((cert, key)) = tls {
        use ipcx::channel::transport::tls;
        let chain = tls::load_certificates(cert.as_ref()).expect("certificate");
        let key = tls::load_private_key(key.as_ref()).expect("key");
        let cfg = tls::server_config(chain, key, None).expect("server config");
        service = service.tls(ipcx::channel::TlsConfig::new().server(cfg));
    }
    let _s = service
        .method("add", |(a, b): (i64, i64)| Ok::<_, String>(a + b))
        .method("neg", |a: i64| Ok::<_, String>(-a))
        .method("div", |(a, b): (i64, i64)| {
            a.checked_div(b)
                .ok_or_else(|| "division by zero\x1b[31m".to_string())
        })
        .method("mirror", |p: Point| {
            Ok::<_, String>(Point { x: p.y, y: p.x })
        })
        .method("nan", |(): ()| Ok::<_, String>(f64::NAN))
        .method("hang", |(): ()| -> Result<(), String> {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        })
        .serve(addr)
        .expect("serve");
    std::thread::sleep(Duration::from_secs(60));
}

/// Reads one frame (4-byte big-endian length, body).
fn read_frame(s: &mut UnixStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// A server that welcomes each client and answers its first request as `mode` says:
/// `silent` never answers the hello; `huge-frame` answers with a length prefix of 4 GiB;
/// `garbage` with a frame that is no reply; otherwise a reply of status ok whose payload is
/// the MessagePack bytes named by `mode`.
fn serve_hostile(mode: &str, name: &str) {
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = UnixListener::bind_addr(&addr).expect("bind");
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let mode = mode.to_owned();
        std::thread::spawn(move || {
            let Some(_hello) = read_frame(&mut s) else {
                return;
            };
            if mode == "silent" {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
            let _ = s.write_all(&frame(&[0x10, 0x01, 0x00, 0x00, 0x00]));
            let Some(req) = read_frame(&mut s) else {
                return;
            };
            let id = &req[1..9];
            let payload: Vec<u8> = match mode.as_str() {
                "huge-frame" => {
                    let _ = s.write_all(&[0xff, 0xff, 0xff, 0xff, 0x02]);
                    std::thread::sleep(Duration::from_secs(60));
                    return;
                }
                "garbage" => {
                    let _ = s.write_all(&frame(b"\x07garbage"));
                    std::thread::sleep(Duration::from_secs(60));
                    return;
                }
                // An array claiming 4 billion elements.
                "huge-array" => vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
                // 100 000 nested arrays.
                "deep" => std::iter::repeat_n(0x91, 100_000).chain([0xc0]).collect(),
                "invalid" => vec![0xc1],
                // A map with a control sequence in a key and a value, bytes, an ext, a float
                // NaN, and a map with an integer key.
                _ => [
                    &[0x85, 0xa5][..],
                    b"k\x1b[2J",
                    &[0xa4],
                    b"v\x07\xc2\x9b",
                    &[0xa3],
                    b"bin",
                    &[0xc4, 0x03, 0x00, 0x01, 0xff],
                    &[0xa3],
                    b"ext",
                    &[0xd4, 0x05, 0x2a],
                    &[0xa3],
                    b"nan",
                    &[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
                    &[0xa3],
                    b"map",
                    &[0x81, 0x01, 0xa3],
                    b"one",
                ]
                .concat(),
            };
            let mut reply = vec![0x02];
            reply.extend_from_slice(id);
            reply.push(0);
            reply.extend_from_slice(&payload);
            let _ = s.write_all(&frame(&reply));
            std::thread::sleep(Duration::from_secs(60));
        });
    }
}

/// A server as ipcx servers were before the hello naming no service and `ipcx.describe`:
/// listed for discovery as the RPC service `service` at `unix:@NAME` with the method `add`,
/// it refuses a hello naming no service (reason 2, wrong service), answers `ipcx.describe`
/// as an unknown method (status 2) and `add` with 5.
fn serve_old(service: &str, name: &str) {
    let endpoint = format!("unix:@{name}");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = UnixListener::bind_addr(&addr).expect("bind");
    let add = ipcx::discovery::MethodInfo::new("add", &["postcard", "msgpack"]);
    let _listed = ipcx::discovery::Registration::new(
        ipcx::discovery::Kind::Rpc,
        service,
        &endpoint,
        4,
        vec![add],
    );
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let Some(hello) = read_frame(&mut s) else {
            continue;
        };
        // "IPCXRQ", protocol:u16, version:u32, then the name's length:u16.
        if hello[12..14] == [0, 0] {
            let msg = format!("this server provides service {service:?}, not \"\"");
            let mut refused = vec![0x11, 2, 0, 1, 0, 0, 0, 4];
            refused.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            refused.extend_from_slice(msg.as_bytes());
            let _ = s.write_all(&frame(&refused));
            continue;
        }
        let _ = s.write_all(&frame(&[0x10, 0x01, 0x00, 0x00, 0x00]));
        while let Some(req) = read_frame(&mut s) {
            let len = usize::from(u16::from_be_bytes([req[13], req[14]]));
            let method = &req[15..15 + len];
            let mut reply = vec![0x02];
            reply.extend_from_slice(&req[1..9]);
            if method == b"add" {
                reply.extend_from_slice(&[0x00, 0x05]);
            } else {
                reply.push(0x02);
            }
            let _ = s.write_all(&frame(&reply));
        }
    }
}

/// A child process, killed with SIGKILL and reaped on drop.
struct Server(Child);

impl Server {
    fn start(role: &[&str]) -> Server {
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["child_role", "--exact", "--nocapture", "-q"])
            .env(ROLE_ENV, role.join("\x1f"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn the service process");
        Server(child)
    }

    /// The RPC service `name` at `addr`, once it answers `ipcx call --list`.
    fn calc(name: &str, addr: &str) -> Server {
        let s = Server::start(&["calc", name, addr]);
        wait_until(|| run(&["call", "--list", addr]).status.success());
        s
    }

    /// A hostile server at `unix:@NAME`, once it accepts connections.
    fn hostile(mode: &str, name: &str) -> Server {
        let s = Server::start(&["hostile", mode, name]);
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        wait_until(|| UnixStream::connect_addr(&addr).is_ok());
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 30 s) until `ready`.
fn wait_until(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "the server never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ipcx call ARGS`: exit status, stdout and stderr.
fn call(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["call"];
    all.extend_from_slice(args);
    let out: Output = run(&all);
    (out.status.code(), stdout(&out), stderr(&out))
}

/// The stdout of a call that succeeded, parsed: exactly one line of JSON.
#[track_caller]
fn result(args: &[&str]) -> Value {
    let (code, out, err) = call(args);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out:?}: {e}"))
}

fn tcp_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp:{}", l.local_addr().unwrap())
}

#[test]
fn calls_a_rust_service_over_unix_tcp_and_shm() {
    let name = util::unique("calc");
    for addr in [
        format!("unix:@{name}"),
        tcp_addr(),
        format!("shm:/{}", util::unique("calc")),
    ] {
        let _s = Server::calc(&name, &addr);
        let a = addr.as_str();
        // An array: a tuple of two arguments.
        assert_eq!(result(&[a, "add", "[2, 3]"]), json!(5));
        // A scalar: one argument.
        assert_eq!(result(&[a, "neg", "7"]), json!(-7));
        // A negative number is the argument, not a flag.
        assert_eq!(result(&[a, "neg", "-7"]), json!(7));
        // An object: a struct; the result is a struct, a map keyed by field name.
        assert_eq!(
            result(&[a, "mirror", r#"{"x": 1, "y": -2}"#]),
            json!({"x": -2, "y": 1})
        );
        // No argument: null, for a method of `()`. NaN is tagged.
        assert_eq!(result(&[a, "nan"]), json!({"$float": "NaN"}));
        // The service's error: exit 1, its message on stderr, escaped.
        let (code, out, err) = call(&[a, "div", "[1, 0]"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(out.is_empty(), "{out:?}");
        assert!(err.contains("division by zero\\e[31m"), "{err:?}");
        assert!(!err.contains('\x1b'), "{err:?}");
        // A method it does not have: exit 1, naming it and listing those it has.
        let (code, _, err) = call(&[a, "mul", "[2, 3]"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("no method \"mul\"")
                && err.contains(&format!("{name:?}"))
                && err.contains("its methods: add, div, hang, mirror, nan, neg"),
            "{err}"
        );
        // An argument of the wrong type: exit 1, the service's reason.
        let (code, _, err) = call(&[a, "add", "\"two\""]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("could not read the argument of \"add\""),
            "{err}"
        );
    }
}

#[test]
fn calls_a_service_over_tls_with_the_ca_and_needs_it() {
    let dir = util::TempDir::new();
    let ca = util::tls::Ca::new(&dir, "call");
    let (cert, key) = ca.leaf(&dir, "calc", &["localhost"]);
    let name = util::unique("tlscalc");
    let addr = format!("tls:localhost:{}", util::free_port(false));
    let _s = Server::start(&["tlscalc", &name, &addr, &cert, &key]);
    wait_until(|| {
        run(&["call", "--list", &addr, "--ca", &ca.ca])
            .status
            .success()
    });
    assert_eq!(result(&[&addr, "add", "[2, 3]", "--ca", &ca.ca]), json!(5));
    // Without --ca: a usage error naming the flag, before anything is connected.
    let (code, _, err) = call(&[&addr, "add", "[2, 3]"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--ca FILE"), "{err}");
    // A CA that did not sign the service's certificate: refused, exit 1.
    let other = util::tls::Ca::new(&dir, "other");
    let (code, _, err) = call(&[&addr, "add", "[2, 3]", "--ca", &other.ca]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("trusted"), "{err}");
}

#[test]
fn an_argument_that_is_not_json_is_a_usage_error() {
    let (code, _, err) = call(&["unix:@nobody-there", "add", "[2,"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not JSON"), "{err}");
    let (code, _, err) = call(&["unix:@nobody-there", "add", r#"{"$nope": 1}"#]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown tag"), "{err}");
}

#[test]
fn list_prints_the_methods_as_text_and_json() {
    let name = util::unique("list");
    let addr = format!("unix:@{name}");
    let _s = Server::calc(&name, &addr);
    let (code, out, err) = call(&["--list", &addr]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{name} version 2 at {addr}"));
    assert!(lines[1].starts_with("METHOD") && lines[1].ends_with("CODECS"));
    let methods: Vec<&str> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(methods, ["add", "div", "hang", "mirror", "nan", "neg"]);
    assert!(lines[2].ends_with("postcard, msgpack"), "{out}");

    let (code, out, err) = call(&["--list", "--json", &addr]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let mut keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["endpoint", "methods", "name", "version"]);
    assert_eq!(doc["name"], name.as_str());
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["endpoint"], addr.as_str());
    assert_eq!(doc["methods"].as_array().unwrap().len(), 6);
    assert_eq!(
        doc["methods"][0],
        json!({"name": "add", "codecs": ["postcard", "msgpack"]})
    );
}

#[test]
fn a_service_is_found_by_its_name() {
    let name = util::unique("byname");
    let _s = Server::calc(&name, &format!("unix:@{}", util::unique("byname-addr")));
    assert_eq!(result(&[&name, "add", "[40, 2]"]), json!(42));
    let (code, out, err) = call(&["--list", "--json", &name]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["name"], name.as_str());
    assert!(
        doc["endpoint"].as_str().unwrap().starts_with("unix:@"),
        "{doc}"
    );
    // The argument from stdin.
    let mut c = util::ipcx()
        .args(["call", &name, "add", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"[1, 2]\n").unwrap();
    let out = util::wait_output(c, Duration::from_secs(30));
    assert_eq!(stdout(&out), "3\n", "{}", stderr(&out));
    // No live service of that name: exit 1, saying so.
    let (code, _, err) = call(&[&util::unique("absent"), "add", "[1, 2]"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no live service of that name"), "{err}");
}

#[test]
fn timeout_bounds_connecting_and_the_call() {
    // A call that never returns: exit 3.
    let name = util::unique("slow");
    let addr = format!("unix:@{name}");
    let _s = Server::calc(&name, &addr);
    let (code, out, err) = call(&["--timeout", "300ms", &addr, "hang"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(out.is_empty() && err.contains("timed out"), "{err}");
    // A server that never answers the handshake: exit 3.
    let silent = util::unique("silent");
    let _h = Server::hostile("silent", &silent);
    let (code, _, err) = call(&[
        "--timeout",
        "300ms",
        &format!("unix:@{silent}"),
        "add",
        "[1,2]",
    ]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("timed out"), "{err}");
    // Nobody there: exit 1 at once, saying so.
    let (code, _, err) = call(&[
        "--timeout",
        "5s",
        &format!("unix:@{}", util::unique("none")),
        "add",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.is_empty());
    let (code, _, err) = call(&["--timeout", "5s", "tcp:127.0.0.1:1", "add"]);
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn a_hostile_server_gets_a_clear_error_or_escaped_tagged_output() {
    for (mode, says) in [
        ("huge-frame", ""),
        ("garbage", ""),
        ("huge-array", "an array of 4294967295 elements"),
        ("deep", "nested deeper than 128"),
        ("invalid", "0xc1"),
    ] {
        let name = util::unique(mode);
        let _h = Server::hostile(mode, &name);
        let (code, out, err) = call(&["--timeout", "10s", &format!("unix:@{name}"), "m", "1"]);
        assert_eq!(code, Some(1), "{mode}: {err}");
        assert!(out.is_empty(), "{mode}: {out:?}");
        assert!(!err.contains("panicked"), "{mode}: {err}");
        assert!(
            err.starts_with("ipcx: ") && err.contains(says),
            "{mode}: {err}"
        );
    }
    let name = util::unique("weird");
    let _h = Server::hostile("weird", &name);
    let (code, out, err) = call(&[&format!("unix:@{name}"), "m"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.trim_end()
            .chars()
            .any(|c| c.is_control() || c == '\u{9b}'),
        "{out:?}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({
            "k\u{1b}[2J": "v\u{7}\u{9b}",
            "bin": {"$bin": "AAH/"},
            "ext": {"$ext": [5, "Kg=="]},
            "nan": {"$float": "NaN"},
            "map": {"$map": [[1, "one"]]},
        })
    );
    // Keys keep the server's order.
    assert!(
        out.starts_with(r#"{"k\u001b[2J":"v\u0007\u009b","bin":"#),
        "{out}"
    );
}

/// The endpoint `ipcx call --list --json NAME` reaches.
fn endpoint_of(name: &str) -> String {
    let (code, out, err) = call(&["--list", "--json", name]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["endpoint"].as_str().unwrap().to_owned()
}

#[test]
fn of_two_live_services_with_one_name_the_newest_is_called() {
    let name = util::unique("twins");
    let (first, second) = (
        format!("unix:@{}", util::unique("twin-1")),
        format!("unix:@{}", util::unique("twin-2")),
    );
    let _a = Server::calc(&name, &first);
    // Start times are counted in clock ticks: the second starts ticks after the first.
    std::thread::sleep(Duration::from_millis(100));
    let mut b = Server::calc(&name, &second);
    // Discovery may not list the second yet; once it does, it is the one called.
    wait_until(|| endpoint_of(&name) == second);
    assert_eq!(result(&[&name, "add", "[1, 1]"]), json!(2));
    // Killed, its record is stale: the first one is called again.
    let _ = b.0.kill();
    let _ = b.0.wait();
    assert_eq!(endpoint_of(&name), first);
    assert_eq!(result(&[&name, "add", "[1, 1]"]), json!(2));
}

#[test]
fn an_older_server_is_called_by_the_name_it_is_listed_under() {
    let (service, name) = (util::unique("old"), util::unique("old-addr"));
    let addr = format!("unix:@{name}");
    let _s = Server::start(&["old", &service, &name]);
    wait_until(|| {
        let (code, out, _) = call(&["--list", "--json", &service]);
        code == Some(0) && out.contains(&addr)
    });
    // At its endpoint: refused when naming no service, so called by its listed name.
    assert_eq!(result(&[&addr, "add", "[2, 3]"]), json!(5));
    // Without ipcx.describe, --list and an unknown method fall back to its listing.
    let (code, out, err) = call(&["--list", &addr]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(&format!("{service} version 4 at {addr}\n")),
        "{out}"
    );
    let (code, _, err) = call(&[&addr, "mul", "[2, 3]"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no method \"mul\"; its methods: add"), "{err}");
}
