//! Service discovery between processes: a service in a child process is listed while it runs
//! and not after it is killed (its stale record is cleaned), filters, `connect_by_name`, and
//! hostile directories and records (another user's, a symlink, garbage, a huge file).
mod util;

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::Duration;

use ipcx::discovery::{self, Filter, Kind, Registration};
use ipcx::rpc::{RpcClient, RpcError, Service};
use util::rpc::{LONG, add, unix_addr};

fn calc(name: &str) -> Service {
    Service::new(name, 3)
        .method("add", add)
        .method("mul", |(a, b): (i32, i32)| Ok::<_, String>(a * b))
}

#[test]
fn child_role() {
    util::role_main(&[
        ("serve", |args| {
            util::rpc::serve_until_killed(calc(&args[0]), &args[1])
        }),
        ("list_as_nobody", |args| {
            // args: name, expect "listed" or "unlisted".
            let reg = Registration::new(Kind::PubSub, &args[0], "unix:@x", 0, Vec::new());
            assert_eq!(reg.is_listed(), args[1] == "listed", "{reg:?}");
            let scan = discovery::scan(&Filter::new().name(&args[0]));
            if args[1] == "listed" {
                assert_eq!(scan.services.len(), 1, "{scan:?}");
                std::thread::sleep(Duration::from_secs(60));
            } else {
                assert!(scan.services.is_empty(), "{scan:?}");
                assert!(!scan.notes.is_empty(), "a note says why: {scan:?}");
            }
        }),
    ]);
}

/// The record files of `pid` in the calling user's directory.
fn record_files(pid: i32) -> Vec<PathBuf> {
    let dir = discovery::dir_for(ipcx::trust::euid());
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{pid}-"))
        })
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_served_service_is_listed_until_it_is_killed() {
    let name = util::unique("calc");
    let a = unix_addr("disc");
    let mut child = util::spawn_role("serve", &[&name, &a]);
    let found = util::wait_for(LONG, || {
        let f = discovery::discover(&Filter::new().name(&name));
        (!f.is_empty()).then_some(f)
    });
    assert_eq!(found.len(), 1, "{found:?}");
    let s = &found[0];
    assert_eq!(
        (s.kind, s.endpoint.as_str(), s.pid, s.version, s.alive),
        (Kind::Rpc, a.as_str(), child.pid(), 3, true)
    );
    let methods: Vec<_> = s.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(methods, ["add", "mul"]);
    assert!(
        s.methods
            .iter()
            .all(|m| m.codecs == ["postcard", "msgpack"])
    );
    // Filters.
    assert_eq!(
        discovery::discover(&Filter::new().name(&name).kind(Kind::Rpc)).len(),
        1
    );
    assert!(discovery::discover(&Filter::new().name(&name).kind(Kind::Mailbox)).is_empty());
    assert!(
        discovery::discover(&Filter::new().kind(Kind::Rpc))
            .iter()
            .any(|s| s.name == name)
    );
    assert!(ipcx::discover(&Filter::new().name(&format!("{name}-other"))).is_empty());
    // By name.
    let c = RpcClient::connect_by_name(&name, LONG).unwrap();
    assert_eq!(c.call::<_, i32>("mul", &(6, 7), LONG).unwrap(), 42);
    assert_eq!(record_files(child.pid()).len(), 1);

    let pid = child.pid();
    child.kill();
    // Never shown as alive; the stale record is reported once (alive: false) and cleaned.
    let scan = discovery::scan(&Filter::new().name(&name).include_dead(true));
    assert!(scan.services.iter().all(|s| !s.alive), "{scan:?}");
    assert!(discovery::discover(&Filter::new().name(&name)).is_empty());
    assert!(record_files(pid).is_empty(), "{:?}", record_files(pid));
    let e = RpcClient::connect_by_name(&name, Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(
            &e,
            RpcError::Transport(ipcx::pattern::Error::NotFound { .. })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("ls --services"), "{e}");
}

#[test]
fn a_dropped_service_is_unlisted() {
    let name = util::unique("dropped");
    let s = calc(&name).serve(&unix_addr("dropped")).unwrap();
    assert_eq!(discovery::discover(&Filter::new().name(&name)).len(), 1);
    drop(s);
    assert!(discovery::discover(&Filter::new().name(&name)).is_empty());
}

#[test]
fn hostile_records_are_skipped_with_a_note() {
    let dir = discovery::dir_for(ipcx::trust::euid());
    // Make sure the directory exists (a registration creates it).
    let _reg = Registration::new(Kind::Ring, &util::unique("ring"), "shm:/x", 0, Vec::new());
    if !_reg.is_listed() {
        eprintln!("skipped: the service directory cannot be used here");
        return;
    }
    let me = std::process::id();
    let garbage = dir.join(format!("{me}-garbage"));
    let huge = dir.join(format!("{me}-huge"));
    let lying = dir.join(format!("{}-lying", me + 1));
    let fifo = dir.join(format!("{me}-fifo"));
    let _cleanup = util::Cleanup({
        let files = [garbage.clone(), huge.clone(), lying.clone(), fifo.clone()];
        move || {
            for f in &files {
                let _ = fs::remove_file(f);
            }
        }
    });
    fs::write(&garbage, b"\x00\xff garbage\n").unwrap();
    let mut big = format!("ipcx-service/1 pid={me} start=1 kind=rpc name=big endpoint=unix:@b");
    while big.len() < (4 << 20) {
        big.push_str(" method=postcard/m");
    }
    fs::write(&huge, big).unwrap();
    // A record claiming another process's pid than its file name says.
    fs::write(
        &lying,
        format!("ipcx-service/1 pid={me} start=1 kind=rpc name=liar endpoint=unix:@l\n"),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let scan = discovery::scan(&Filter::new());
    for f in [&garbage, &huge, &lying, &fifo] {
        let f = f.display().to_string();
        assert!(scan.notes.iter().any(|n| n.contains(&f)), "{f}: {scan:?}");
    }
    assert!(
        !scan
            .services
            .iter()
            .any(|s| s.name == "big" || s.name == "liar")
    );
}

#[test]
fn a_record_of_a_dead_process_is_ignored_and_cleaned() {
    // A pid that no longer runs: a child that has exited and been reaped.
    let pid = std::process::Command::new("true")
        .spawn()
        .and_then(|mut c| c.wait().map(|_| c.id()))
        .unwrap();
    let _reg = Registration::new(Kind::Ring, &util::unique("ring"), "shm:/x", 0, Vec::new());
    let dir = discovery::dir_for(ipcx::trust::euid());
    let stale = dir.join(format!("{pid}-0"));
    let name = util::unique("ghost");
    fs::write(
        &stale,
        format!("ipcx-service/1 pid={pid} start=1 kind=mailbox name={name} endpoint=mq:/g\n"),
    )
    .unwrap();
    assert!(discovery::discover(&Filter::new().name(&name)).is_empty());
    assert!(!stale.exists(), "the stale record is cleaned");
}

/// Runs the nobody side with nobody's service directory set up by `setup` (as root), then
/// removes that directory.
fn as_nobody(setup: impl FnOnce(&PathBuf), expect: &str) {
    let dir = discovery::dir_for(util::NOBODY);
    let _ = fs::remove_file(&dir);
    let _ = fs::remove_dir_all(&dir);
    setup(&dir);
    let name = util::unique("nobody");
    let mut child = util::spawn_role_as_nobody("list_as_nobody", &[&name, expect]);
    if expect == "listed" {
        // Root sees every user's services; its own view does not include nobody's.
        let found = util::wait_for(LONG, || {
            let f = discovery::discover(&Filter::new().name(&name).all_users(true));
            (!f.is_empty()).then_some(f)
        });
        assert_eq!((found[0].uid, found[0].pid), (util::NOBODY, child.pid()));
        assert!(discovery::discover(&Filter::new().name(&name)).is_empty());
        // A record in root's directory claiming nobody's live process is not believed.
        let planted = discovery::dir_for(0).join(format!("{}-planted", child.pid()));
        let _rm = util::Cleanup({
            let p = planted.clone();
            move || {
                let _ = fs::remove_file(&p);
            }
        });
        let claim = format!(
            "ipcx-service/1 pid={} start={} kind=rpc name={name}-claim endpoint=unix:@c\n",
            child.pid(),
            found[0].start_time
        );
        fs::write(&planted, claim).unwrap();
        let scan = discovery::scan(&Filter::new().name(&format!("{name}-claim")));
        assert!(scan.services.is_empty(), "{scan:?}");
        assert!(
            scan.notes
                .iter()
                .any(|n| n.contains("does not run as uid 0")),
            "{scan:?}"
        );
        child.kill();
    } else {
        child.expect_success();
    }
    let _ = fs::remove_file(&dir);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn other_users_and_symlinked_directories() {
    if !util::is_root() {
        eprintln!("skipped: needs root to start a child as nobody");
        return;
    }
    // nobody's directory is a symlink (made by root) to a directory nobody could use.
    let target = std::env::temp_dir().join(util::unique("target"));
    fs::DirBuilder::new().mode(0o777).create(&target).unwrap();
    as_nobody(
        |dir| std::os::unix::fs::symlink(&target, dir).unwrap(),
        "unlisted",
    );
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "nothing written");
    let _ = fs::remove_dir(&target);
    // nobody's directory belongs to another user (root).
    as_nobody(
        |dir| fs::DirBuilder::new().mode(0o700).create(dir).unwrap(),
        "unlisted",
    );
    // Root does not read a directory named for nobody that nobody does not own.
    let dir = discovery::dir_for(util::NOBODY);
    fs::DirBuilder::new().mode(0o755).create(&dir).unwrap();
    fs::write(
        dir.join("1-0"),
        "ipcx-service/1 pid=1 start=1 kind=rpc name=planted endpoint=unix:@p\n",
    )
    .unwrap();
    let scan = discovery::scan(&Filter::new().all_users(true));
    assert!(!scan.services.iter().any(|s| s.name == "planted"));
    assert!(
        scan.notes
            .iter()
            .any(|n| n.contains(&dir.display().to_string()))
    );
    let _ = fs::remove_dir_all(&dir);
    assert!(fs::symlink_metadata(&dir).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound));
    // A proper directory of nobody's own: listed, and seen by root's system-wide view.
    as_nobody(|_| {}, "listed");
}

/// The one live listing at `endpoint`.
fn listed_at(endpoint: &str) -> Vec<discovery::ServiceInfo> {
    discovery::discover(&Filter::new())
        .into_iter()
        .filter(|s| s.endpoint == endpoint)
        .collect()
}

#[test]
fn patterns_and_ring_senders_list_themselves() {
    use ipcx::pattern::{mailbox::Mailbox, pubsub::Publisher, pushpull::Distributor};
    let me = std::process::id() as i32;
    let check = |endpoint: &str, kind: Kind, name: &str| {
        let found = listed_at(endpoint);
        assert_eq!(found.len(), 1, "{endpoint}: {found:?}");
        let s = &found[0];
        assert_eq!((s.kind, s.name.as_str(), s.pid), (kind, name, me), "{s:?}");
        assert!(s.alive && s.methods.is_empty());
    };

    let topic = format!("unix:@{}", util::unique("topic"));
    let publ = Publisher::bind(&topic).unwrap();
    check(&topic, Kind::PubSub, &topic["unix:".len()..]);
    drop(publ);
    assert!(listed_at(&topic).is_empty());

    let (ring, _rm) = util::ring_name("ring-topic");
    let shm = format!("shm:{ring}");
    let publ = Publisher::bind(&shm).unwrap();
    check(&shm, Kind::PubSub, &ring);
    drop(publ);
    assert!(listed_at(&shm).is_empty());

    let work = format!("unix:@{}", util::unique("work"));
    let dist = Distributor::bind(&work).unwrap();
    check(&work, Kind::PushPull, &work["unix:".len()..]);
    drop(dist);
    assert!(listed_at(&work).is_empty());

    let (q, _q_rm) = util::mq_name("box");
    let mq = format!("mq:{q}");
    let mbox = Mailbox::create(&q).unwrap();
    check(&mq, Kind::Mailbox, &q);
    // Another handle that only opened it is not listed again.
    let opened = Mailbox::open(&q).unwrap();
    assert_eq!(listed_at(&mq).len(), 1);
    drop(opened);
    drop(mbox);
    assert!(listed_at(&mq).is_empty());

    let (ring, _rm2) = util::ring_name("ring-send");
    let shm = format!("shm:{ring}");
    let ep = ipcx::Endpoint::parse(&shm).unwrap();
    let sender = ep
        .sender(&ipcx::channel::Options::default().create(true))
        .unwrap();
    check(&shm, Kind::Ring, &ring);
    drop(sender);
    assert!(listed_at(&shm).is_empty());
}

#[test]
fn async_services_are_listed_and_async_clients_connect_by_name() {
    let name = util::unique("async");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for a in [unix_addr("async"), util::rpc::shm_addr("async")] {
            let server = ipcx::rpc::AsyncService::from(calc(&name))
                .serve_async(&a)
                .await
                .unwrap();
            let found = discovery::discover(&Filter::new().name(&name));
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(
                (found[0].kind, found[0].endpoint.as_str()),
                (Kind::Rpc, a.as_str())
            );
            let c = ipcx::rpc::AsyncRpcClient::connect_by_name(&name, LONG)
                .await
                .unwrap();
            assert_eq!(c.call::<_, i32>("add", &(2, 3), LONG).await.unwrap(), 5);
            drop(c);
            server.shutdown().await;
            assert!(discovery::discover(&Filter::new().name(&name)).is_empty());
        }
    });
}
