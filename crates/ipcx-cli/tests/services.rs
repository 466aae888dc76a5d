//! `ipcx ls --services [--json]` against services living in other processes: a service
//! appears, shows its methods, and disappears when killed with SIGKILL (never shown as alive
//! afterwards); names are escaped in the table; another user sees none of them.
mod util;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{run, stdout, succeeded};

const ROLE_ENV: &str = "IPCX_SERVICES_TEST_ROLE";

/// The service process: re-runs this test binary with only `child_role` selected; it serves
/// the RPC service `name` at `addr` until killed.
#[test]
fn child_role() {
    let Ok(args) = std::env::var(ROLE_ENV) else {
        return;
    };
    let (name, addr) = args.split_once('\x1f').expect("name and address");
    let _s = ipcx::rpc::Service::new(name, 2)
        .method("add", |(a, b): (i64, i64)| Ok::<_, String>(a + b))
        .method("neg", |a: i64| Ok::<_, String>(-a))
        .serve(addr)
        .expect("serve");
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(0);
}

/// A service process, killed with SIGKILL and reaped on drop.
struct Server(Child);

impl Server {
    fn start(name: &str, addr: &str) -> Server {
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["child_role", "--exact", "--nocapture", "-q"])
            .env(ROLE_ENV, format!("{name}\x1f{addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn the service process");
        Server(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `ipcx ls --services --json`, parsed.
fn services_json() -> Vec<Value> {
    let out = succeeded(run(&["ls", "--services", "--json"]));
    let doc: Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    doc.as_array().expect("an array of services").clone()
}

fn named<'a>(doc: &'a [Value], name: &str) -> Vec<&'a Value> {
    doc.iter().filter(|s| s["name"] == name).collect()
}

/// Waits (at most 30 s) until `ls --services --json` lists `name`; panics with what it printed
/// and the state of the service process when it never does.
fn wait_listed(name: &str, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(&["ls", "--services", "--json"]);
        if out.status.success()
            && serde_json::from_str::<Value>(&stdout(&out))
                .is_ok_and(|d| d.as_array().is_some_and(|a| !named(a, name).is_empty()))
        {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{name} is not listed; the service process: {:?}; ls printed {:?} and {:?}",
                server.0.try_wait(),
                stdout(&out),
                util::stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_service_appears_with_its_methods_and_disappears_when_killed() {
    let name = util::unique("calc");
    let addr = format!("unix:@{name}");
    let mut server = Server::start(&name, &addr);
    let pid = server.0.id();
    wait_listed(&name, &mut server);
    let doc = services_json();
    let s = named(&doc, &name);
    assert_eq!(s.len(), 1, "{doc:?}");
    let s = s[0].as_object().unwrap();
    let mut keys: Vec<_> = s.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["alive", "endpoint", "kind", "methods", "name", "pid"]
    );
    assert_eq!(s["kind"], "rpc");
    assert_eq!(s["endpoint"], addr.as_str());
    assert_eq!(s["pid"], pid);
    assert_eq!(s["alive"], true);
    let methods: Vec<_> = s["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["add", "neg"]);
    assert_eq!(
        s["methods"][0]["codecs"],
        serde_json::json!(["postcard", "msgpack"])
    );

    // The table: one row with every column.
    let table = stdout(&succeeded(run(&["ls", "--services"])));
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("METHODS"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name}: {table}"));
    for part in ["rpc", addr.as_str(), &pid.to_string(), "yes", "add, neg"] {
        assert!(row.contains(part), "{part:?} missing from {row:?}");
    }

    server.kill();
    // Not one listing shows it alive after SIGKILL; the stale record is gone after the first.
    for _ in 0..2 {
        let doc = services_json();
        assert!(
            named(&doc, &name).iter().all(|s| s["alive"] == false),
            "{doc:?}"
        );
    }
    assert!(named(&services_json(), &name).is_empty());
    let table = stdout(&succeeded(run(&["ls", "--services"])));
    assert!(!table.contains(&name), "{table}");
}

#[test]
fn names_are_escaped_in_the_table() {
    let name = format!("{}-\x1b[31mred\x07", util::unique("esc"));
    let addr = format!("unix:@{}", util::unique("esc"));
    let mut server = Server::start(&name, &addr);
    wait_listed(&name, &mut server);
    let table = stdout(&succeeded(run(&["ls", "--services"])));
    assert!(
        !table.contains('\x1b') && !table.contains('\x07'),
        "{table:?}"
    );
    assert!(table.contains("\\e[31mred\\x07"), "{table}");
}

#[test]
fn another_user_sees_none_of_them() {
    if !util::is_root() {
        eprintln!("skipped: needs root to run ipcx as nobody");
        return;
    }
    let name = util::unique("private");
    let mut server = Server::start(&name, &format!("unix:@{name}"));
    wait_listed(&name, &mut server);
    let Some(out) = util::run_as_nobody(&["ls", "--services", "--json"]) else {
        return;
    };
    assert!(out.status.success(), "{}", util::stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(named(doc.as_array().unwrap(), &name).is_empty(), "{doc}");
}
