//! Typed RPC over shared-memory rings (`shm:/NAME`) between processes, what is particular to
//! the rings (the calls every server and client pair makes are in `rpc_matrix.rs`): large
//! calls, credentials, a caller that leaves, hostile handshakes, rings left by dead clients,
//! and nothing left in /dev/shm.
mod util;

use std::time::{Duration, Instant};

use ipcx::channel::Endpoint;
use ipcx::pattern::Error;
use ipcx::pattern::reqrep::{Client, Status};
use ipcx::rpc::{CallContext, RpcClient, RpcError, Service};
use ipcx::socket::{UnixAddr, UnixStream};
use util::rpc::{LONG, connect, shm_addr as addr};

fn calc() -> Service {
    util::rpc::calc_add()
        .method("echo", |b: Vec<u8>| Ok::<_, String>(b))
        .method_ctx("whoami", util::rpc::whoami)
}

/// Segments in /dev/shm whose name starts with the address's name.
fn leftovers(a: &str) -> Vec<String> {
    let base = a.trim_start_matches("shm:/");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(base))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn child_role() {
    util::role_main(&[
        ("server", |args| {
            util::rpc::serve_until_killed(calc(), &args[0])
        }),
        ("half_made", |args| half_made(&args[0])),
        ("connecting", |args| {
            let _ = RpcClient::connect(&args[0], "calc", 1, LONG);
        }),
    ]);
}

#[test]
fn addresses_parse_and_bad_ones_are_refused() {
    assert_eq!(
        Endpoint::parse("shm:/calc").unwrap(),
        Endpoint::new(
            "shm",
            ipcx::channel::Address::PosixName(ipcx::name::PosixName::new("/calc").unwrap())
        )
        .unwrap()
    );
    assert_eq!(
        Endpoint::parse("shm:/calc").unwrap().to_string(),
        "shm:/calc"
    );
    for bad in ["shm:calc", "shm:/a/b", "shm:", "shm:/"] {
        let e = Endpoint::parse(bad).unwrap_err();
        assert!(matches!(e, Error::InvalidAddress { .. }), "{bad}: {e:?}");
    }
    let e = RpcClient::connect(&addr("nobody"), "calc", 1, Duration::from_millis(200)).unwrap_err();
    assert!(
        matches!(e, RpcError::Transport(Error::NotFound { .. })),
        "{e:?}"
    );
}

#[test]
fn calls_over_shared_memory_between_processes() {
    let a = addr("calc");
    let mut server = util::spawn_role("server", &[&a]);
    let c = connect(&a);
    // The rings' names are removed as soon as both ends are attached.
    assert_eq!(leftovers(&a), Vec::<String>::new());
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    let big: Vec<u8> = (0..64 * 1024).map(|i| i as u8).collect();
    assert_eq!(c.call::<_, Vec<u8>>("echo", &big, LONG).unwrap(), big);
    // The server sees the client's kernel-verified credentials (from the handshake socket).
    let who: Option<(i32, u32)> = c.call("whoami", &(), LONG).unwrap();
    assert_eq!(who.map(|w| w.0), Some(std::process::id() as i32));
    // Many calls from several threads on one connection.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    assert_eq!(c.call::<_, i32>("add", &(t, i), LONG).unwrap(), t + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A second client gets its own rings.
    let c2 = connect(&a);
    assert_eq!(c2.call::<_, i32>("add", &(5, 5), LONG).unwrap(), 10);
    // A call larger than the ring link carries fails before sending.
    let huge = vec![0u8; 2 << 20];
    let e = c.call::<_, Vec<u8>>("echo", &huge, LONG).unwrap_err();
    assert!(matches!(e, RpcError::TooLarge { .. }), "{e:?}");
    assert_eq!(c.call::<_, i32>("add", &(2, 2), LONG).unwrap(), 4);
    server.kill();
    drop((c, c2));
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn a_departed_caller_is_noticed_by_its_handler_and_the_server_goes_on() {
    let a = addr("vanish");
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let _s = calc()
        .method_ctx("wait_for_gone", move |ctx: &CallContext, _: ()| {
            let t = Instant::now();
            while !ctx.caller_gone() && t.elapsed() < LONG {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = tx.lock().unwrap().send(ctx.caller_gone());
            Ok::<_, String>(())
        })
        .threads(2)
        .serve(&a)
        .unwrap();
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(3, 4), LONG).unwrap(), 7);
    // A caller that leaves during a call: its handler learns it.
    let c2 = connect(&a);
    let _ = c2.call::<_, ()>("wait_for_gone", &(), Duration::from_millis(200));
    drop(c2);
    assert!(rx.recv_timeout(LONG).unwrap());
    drop(c);
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn hostile_handshakes_are_refused_and_the_server_goes_on() {
    let a = addr("hostile");
    let name = a.trim_start_matches("shm:");
    let _s = calc().serve(&a).unwrap();
    let sock = UnixAddr::parse(&format!("@ipcx-shm-link{name}")).unwrap();
    let hellos: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        b"IPCXSHM1\x00".to_vec(),
        // Names of rings that do not belong to this server.
        {
            let mut h = b"IPCXSHM1".to_vec();
            for n in ["/other-q", "/other-r"] {
                h.extend_from_slice(&(n.len() as u16).to_be_bytes());
                h.extend_from_slice(n.as_bytes());
            }
            h
        },
        // The right prefix, but no such rings.
        {
            let mut h = b"IPCXSHM1".to_vec();
            for s in ["q", "r"] {
                let n = format!("{name}.link-1-1-{s}");
                h.extend_from_slice(&(n.len() as u16).to_be_bytes());
                h.extend_from_slice(n.as_bytes());
            }
            h
        },
    ];
    for h in hellos {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.send_frame_wait(&h, ipcx::wait::Wait::timeout(LONG))
            .unwrap();
        let answer = s
            .recv_frame_wait(ipcx::wait::Wait::timeout(LONG))
            .unwrap()
            .unwrap();
        assert!(answer.starts_with(b"NO"), "{answer:?}");
    }
    // A client that connects and says nothing holds the acceptor for at most the handshake
    // timeout.
    let _silent = UnixStream::connect(&sock).unwrap();
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    // The raw request/reply layer runs over the same link.
    let raw = Client::connect(&a, "calc", 1, LONG).unwrap();
    let r = raw.request("nope", b"", LONG).unwrap();
    assert_eq!(r.status, Status::UnknownMethod);
    drop((c, raw));
    assert_eq!(leftovers(&a), Vec::<String>::new());
}

#[test]
fn a_second_server_on_the_same_name_is_refused() {
    let a = addr("twice");
    let _s = calc().serve(&a).unwrap();
    assert!(calc().serve(&a).is_err());
}

/// A pid no process has: a child that exited and was reaped.
fn dead_pid() -> u32 {
    loop {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        if !ipcx::registry::pid_alive(pid as i32) {
            return pid;
        }
    }
}

/// What a client killed while creating a ring leaves: a file without a ring header.
fn half_made(name: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(format!("/dev/shm{name}"))
        .unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
}

/// What a client killed after creating a ring leaves: a whole ring.
fn whole_ring(name: &str) {
    let opts = ipcx::ring::Options::new().max_subscribers(1);
    drop(
        ipcx::ring::Publisher::create_new(name, &opts)
            .unwrap()
            .persist(),
    );
}

/// Removes every segment named after `a` (for a test that fails half-way).
fn remove_leftovers(a: &str) -> util::Cleanup<impl FnMut()> {
    let a = a.to_owned();
    util::Cleanup(move || {
        for n in leftovers(&a) {
            let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
        }
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn rings_left_by_dead_clients_are_removed_when_the_server_starts_and_at_the_next_connect() {
    let a = addr("dead");
    let name = a.trim_start_matches("shm:");
    let _clean = remove_leftovers(&a);
    // Rings of a client that died before this server started: one half-made, one whole.
    let dead = dead_pid();
    half_made(&format!("{name}.link-{dead}-0-q"));
    whole_ring(&format!("{name}.link-{dead}-0-r"));
    // A live process's rings (it may be connecting right now), and names that are not a
    // client's rings, stay.
    let me = std::process::id();
    let keep = sorted(vec![
        format!("{}.link-{me}-999999-q", &name[1..]),
        format!("{}.link-{dead}-x-q", &name[1..]),
        format!("{}.link-{dead}-0-q.bak", &name[1..]),
        format!("{}.linked-{dead}-0-q", &name[1..]),
    ]);
    for k in &keep {
        half_made(&format!("/{k}"));
    }
    let _s = calc().serve(&a).unwrap();
    assert_eq!(sorted(leftovers(&a)), keep);
    // A client that dies while connecting to the running server: the next connect removes
    // what it left.
    let dead = dead_pid();
    whole_ring(&format!("{name}.link-{dead}-7-q"));
    half_made(&format!("{name}.link-{dead}-7-r"));
    let c = connect(&a);
    assert_eq!(sorted(leftovers(&a)), keep);
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
}

/// A stand-in server on `a`'s handshake socket: for each client, reads its hello, then runs
/// `answer` on the socket (with the names of the client's rings).
fn fake_server(
    a: &str,
    answer: fn(&mut UnixStream, &[String]),
) -> std::thread::JoinHandle<Vec<String>> {
    let sock = UnixAddr::parse(&format!("@ipcx-shm-link{}", a.trim_start_matches("shm:"))).unwrap();
    let l = ipcx::socket::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let wait = ipcx::wait::Wait::timeout(LONG);
        let (mut s, _) = l.accept_wait(wait).unwrap();
        let hello = s.recv_frame_wait(wait).unwrap().unwrap();
        // MAGIC, then two names each after a 2-byte length.
        let mut rest = &hello[8..];
        let mut names = Vec::new();
        for _ in 0..2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            names.push(String::from_utf8(rest[2..2 + len].to_vec()).unwrap());
            rest = &rest[2 + len..];
        }
        answer(&mut s, &names);
        names
    })
}

#[test]
fn a_failed_handshake_leaves_no_rings_and_no_records() {
    // The server refuses; the server hangs up without answering.
    let refuse: fn(&mut UnixStream, &[String]) = |s, names| {
        // While the client waits for the answer, its rings exist and are recorded as its own
        // (`ipcx clean` proves them stale if it is killed now).
        let me = std::process::id() as i32;
        let records = ipcx::registry::records(false);
        for n in names {
            assert!(
                records
                    .iter()
                    .any(|r| r.object == format!("posix-shm:{n}") && r.pid == me),
                "{n} is not recorded"
            );
        }
        s.send_frame_wait(b"NOgo away", ipcx::wait::Wait::timeout(LONG))
            .unwrap();
    };
    let hang_up: fn(&mut UnixStream, &[String]) = |_, _| {};
    // One address per answer: a child that another test forks while the first listener is
    // open holds a copy of it until it execs, which could keep the name bound a moment longer.
    for (tag, answer) in [("refused", refuse), ("hung-up", hang_up)] {
        let a = addr(tag);
        let _clean = remove_leftovers(&a);
        let server = fake_server(&a, answer);
        let e = RpcClient::connect(&a, "calc", 1, LONG).unwrap_err();
        assert!(
            matches!(
                e,
                RpcError::Transport(Error::Protocol { .. }) | RpcError::PeerGone { .. }
            ),
            "{e:?}"
        );
        let names = server.join().unwrap();
        assert_eq!(leftovers(&a), Vec::<String>::new());
        let records = ipcx::registry::records(false);
        for n in &names {
            assert!(
                !records.iter().any(|r| r.object == format!("posix-shm:{n}")),
                "{n} is still recorded"
            );
        }
    }
}

#[test]
fn rings_of_a_client_killed_while_connecting_are_provably_stale_and_the_server_removes_them() {
    let a = addr("killed-connecting");
    let _clean = remove_leftovers(&a);
    // A stand-in for the server that never answers: the client is killed while it waits for
    // the answer, its rings made and named.
    let sock = UnixAddr::parse(&format!("@ipcx-shm-link{}", a.trim_start_matches("shm:"))).unwrap();
    let l = ipcx::socket::UnixListener::bind(&sock).unwrap();
    let mut client = util::spawn_role("connecting", &[&a]);
    let pid = client.pid();
    let wait = ipcx::wait::Wait::timeout(LONG);
    let (mut s, _) = l.accept_wait(wait).unwrap();
    s.recv_frame_wait(wait).unwrap().unwrap();
    client.kill();
    drop((s, l));
    let mut files = sorted(leftovers(&a));
    assert_eq!(files.len(), 2, "{files:?}");
    let (req, rep) = (
        format!("/{}", files.remove(0)),
        format!("/{}", files.remove(0)),
    );
    assert!(req.ends_with("-q") && rep.ends_with("-r"));
    // Its records survive it.
    let records = ipcx::registry::records(false);
    for n in [&req, &rep] {
        assert!(
            records
                .iter()
                .any(|r| r.object == format!("posix-shm:{n}") && r.pid == pid),
            "{n} is not recorded as pid {pid}'s"
        );
    }
    // Killed while creating the request ring, it would have left it without its header.
    {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm{req}"))
            .unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.write_all(&[0u8; 8]).unwrap();
    }
    // `ipcx clean` proves both stale: the half-made one by its record, the whole one by its
    // dead participants.
    let verdicts = ipcx::inventory::judge(&ipcx::inventory::scan(), false);
    for object in [format!("posix-shm:{req}"), format!("shm:{rep}")] {
        let v = verdicts
            .iter()
            .find(|v| v.name == object)
            .unwrap_or_else(|| panic!("{object} not listed"));
        assert!(v.stale, "{object}: {}", v.reason);
    }
    // The server removes both when it starts, and forgets the records.
    let _s = calc().serve(&a).unwrap();
    assert_eq!(leftovers(&a), Vec::<String>::new());
    let records = ipcx::registry::records(false);
    assert!(
        !records
            .iter()
            .any(|r| r.object == format!("posix-shm:{req}")
                || r.object == format!("posix-shm:{rep}")),
        "records left"
    );
}

#[test]
fn another_users_files_under_a_dead_clients_name_are_kept() {
    if !util::is_root() {
        eprintln!("skipped: run as root to make nobody's file (CI does)");
        return;
    }
    let a = addr("foreign");
    let name = a.trim_start_matches("shm:");
    let _clean = remove_leftovers(&a);
    let file = format!("{name}.link-{}-0-q", dead_pid());
    util::spawn_role_as_nobody("half_made", &[&file]).expect_success();
    let _s = calc().serve(&a).unwrap();
    let c = connect(&a);
    assert_eq!(c.call::<_, i32>("add", &(1, 2), LONG).unwrap(), 3);
    // Not ours to remove: `/dev/shm` is sticky, and root must not remove what another user made.
    assert_eq!(leftovers(&a), vec![file[1..].to_owned()]);
}
