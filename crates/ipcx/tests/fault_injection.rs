//! Fault injection: peers killed with SIGKILL at random moments, on every message transport
//! (fifo, mq, sysv-mq, unix stream, unix-dgram, unix-seqpacket, tcp, shm ring), on push/pull
//! and on RPC. The survivor must never hang past its timeout, never deliver a torn or
//! duplicated message, and lose nothing the mechanism promises to deliver.
//!
//! Every message is self-checking (`util::fault`): sender id, sequence number, length, a
//! payload derived from them and a checksum; sizes go from 28 bytes to 256 KiB (below and above
//! PIPE_BUF and a page, and frames that span many writes), within each transport's limit.
//!
//! Each transport runs both directions, `trials` kills each:
//! * **sender killed**: the test process holds one receiver for the whole run; a sequence of
//!   short-lived victim senders connect and send until killed after a random delay (one in
//!   eight before it even connected, the rest after; with a ring, some while they fill a
//!   loan). Where the transport takes several senders at once, a steady sender that is never
//!   killed sends alongside: every message it was told was sent must arrive, whole and once.
//!   `lost` counts a missing message of any sender followed by a later one of the same sender,
//!   and the steady sender's messages that never arrived (a killed sender's own unsent
//!   messages are not losses).
//! * **receiver killed**: a sequence of victim receivers, each killed after a random delay
//!   while the test process sends to it; every send must end (delivered, `PeerGone` or its
//!   timeout) within its timeout. The victims check what they get and print it: torn and
//!   duplicated messages are counted across victims, and `lost` counts gaps within what one
//!   victim received.
//!
//! Push/pull: workers killed mid-task (the distributor must hand their tasks to another
//! worker: every task gets exactly one result), and distributors killed under a live worker.
//! RPC (unix, tcp, shm): clients killed mid-call (the server must go on answering), and servers
//! killed under a live client (each call ends with its result, `PeerGone` or its timeout).
//!
//! Each test prints `fault <transport>: trials=N hangs=H torn=T duplicated=D lost=L` and the
//! seed on stderr (`cargo test -p ipcx --test fault_injection -- --nocapture` shows it), and
//! asserts that all four counts are zero.
//!
//! # Long runs
//! `IPCX_FAULT_TRIALS=N` sets the kills per direction (default 200);
//! `IPCX_FAULT_SEED=S` replays the delays and sizes of a printed seed (kill timing itself
//! depends on the scheduler). For example:
//! ```text
//! IPCX_FAULT_TRIALS=5000 cargo test --release -p ipcx --test fault_injection -- --nocapture --test-threads=1
//! ```
mod util;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ipcx::channel::{Address, Endpoint, Error, MessageReceiver, MessageSender};
use ipcx::pattern::pushpull::{Distributor, Worker};
use ipcx::rpc::{RpcClient, RpcError, Service};
use ipcx::wait::Wait;
use util::fault::{self, Checked, Place, Rng, Sequences, Tally};

/// Extra time a blocking call may take past its timeout before it counts as a hang (a debug
/// build on a loaded machine).
const SLACK: Duration = Duration::from_secs(5);
/// The survivor's receive timeout.
const RECV_TIMEOUT: Duration = Duration::from_millis(500);
/// The survivor's send timeout when its receiver is killed (short: a queue whose receiver
/// died fills up, and the send then waits this long).
const SEND_TIMEOUT: Duration = Duration::from_millis(20);
/// Kill delays after the victim connected, in microseconds.
const MAX_DELAY_US: u64 = 5000;
/// The id of the survivor's own messages when it is the sender.
const SURVIVOR_ID: u32 = 0xB0;
/// The id of results and replies.
const REPLY_ID: u32 = 0xE0;

/// Kills per direction: `IPCX_FAULT_TRIALS`, default 200.
fn trials() -> u64 {
    std::env::var("IPCX_FAULT_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[test]
fn child_role() {
    util::role_main(&[
        ("send_victim", role_send_victim),
        ("steady_send", role_steady_send),
        ("recv_victim", role_recv_victim),
        ("pp_worker", role_pp_worker),
        ("pp_distributor", role_pp_distributor),
        ("rpc_client", role_rpc_client),
        ("rpc_server", role_rpc_server),
    ]);
}

/// The checks the suite relies on catch what they must: a torn, spliced, shifted or
/// truncated message, a duplicate and a gap.
#[test]
fn self_checking_messages_catch_torn_duplicated_and_lost_ones() {
    let a = fault::make(1, 7, 70_000);
    let b = fault::make(2, 7, 70_000);
    assert_eq!(fault::check(&a), Ok(Checked::Data { id: 1, seq: 7 }));
    let mut spliced = a[..30_000].to_vec();
    spliced.extend_from_slice(&b[30_000..]);
    assert!(fault::check(&spliced).is_err(), "a splice of two messages");
    assert!(fault::check(&a[..69_999]).is_err(), "a truncated message");
    let mut shifted = a.clone();
    shifted.copy_within(5000..60_000, 5001);
    assert!(fault::check(&shifted).is_err(), "a shifted tail");
    let mut flipped = a.clone();
    flipped[40_000] ^= 1;
    assert!(fault::check(&flipped).is_err(), "one bit");
    let mut other_len = fault::make(1, 7, 4096);
    other_len[16..20].copy_from_slice(&4097u32.to_be_bytes());
    assert!(fault::check(&other_len).is_err(), "a wrong length");
    assert_eq!(
        fault::check(&fault::make_end(3, 99)),
        Ok(Checked::End { id: 3, count: 99 })
    );

    let mut t = Tally::default();
    let mut seqs = Sequences::default();
    for seq in [0, 1, 1, 2, 5, 3, 6] {
        seqs.see(9, seq, &mut t);
    }
    assert_eq!((t.duplicated, t.lost, t.delivered), (2, 2, 5));
    assert_eq!(seqs.next_of(9), 7);
}

// ---------------------------------------------------------------------------------------------
// Child roles

/// Connects a sender to `ep`, retrying while the receiver (or the ring's publisher place) is
/// not free yet.
fn connect(ep: &Endpoint) -> Box<dyn MessageSender> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ep.sender(&fault::sender_options()) {
            Ok(tx) => return tx,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{ep}: cannot open a sender: {e}"),
        }
    }
}

/// A victim sender: connects, says so, then sends numbered messages of random sizes until it
/// is killed. On a ring it writes each message into a loan, a page at a time.
fn role_send_victim(args: &[String]) {
    fault::exit_when_stdin_closes(None);
    let ep = Endpoint::parse(&args[0]).unwrap();
    let id: u32 = args[1].parse().unwrap();
    let mut rng = Rng::new(args[2].parse().unwrap());
    if let ("shm", Address::PosixName(name)) = (ep.scheme(), ep.address()) {
        return ring_send_victim(name.as_str(), id, &mut rng);
    }
    let mut tx = connect(&ep);
    let sizes = fault::sizes(fault::max_len(&ep, tx.max_message_len()));
    fault::say("connected");
    for seq in 0.. {
        let m = fault::make(id, seq, *rng.pick(&sizes));
        if let Err(e) = tx.send_timeout(&m, Duration::from_secs(20)) {
            eprintln!("victim {id}: send {seq}: {e}");
            return;
        }
    }
}

fn ring_send_victim(name: &str, id: u32, rng: &mut Rng) {
    use ipcx::ring::{Options, Publisher};
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut publ = loop {
        match Publisher::open(name, &Options::new()) {
            Ok(p) => break p,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("ring {name}: {e}"),
        }
    };
    let sizes = fault::sizes(Some(publ.max_message_len()));
    fault::say("connected");
    for seq in 0.. {
        let len = *rng.pick(&sizes);
        let mut loan = match publ.loan_wait(len, Wait::timeout(Duration::from_secs(20))) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("victim {id}: loan {seq}: {e}");
                return;
            }
        };
        fault::fill_chunked(&mut loan, id, seq, 4096, &mut std::thread::yield_now);
        if let Err(e) = loan.send() {
            eprintln!("victim {id}: send {seq}: {e}");
            return;
        }
    }
}

/// The steady sender: sends until its stdin closes, then sends its closing message and prints
/// `sent N`. Any failed send ends it with `error ...` and status 3.
fn role_steady_send(args: &[String]) {
    static STOP: AtomicBool = AtomicBool::new(false);
    fault::exit_when_stdin_closes(Some(Box::new(|| STOP.store(true, Ordering::SeqCst))));
    let ep = Endpoint::parse(&args[0]).unwrap();
    let id: u32 = args[1].parse().unwrap();
    let mut rng = Rng::new(args[2].parse().unwrap());
    let mut tx = connect(&ep);
    let sizes = fault::sizes(fault::max_len(&ep, tx.max_message_len()));
    fault::say("connected");
    let mut seq = 0;
    while !STOP.load(Ordering::SeqCst) {
        let m = fault::make(id, seq, *rng.pick(&sizes));
        if let Err(e) = tx.send_timeout(&m, Duration::from_secs(20)) {
            fault::say(&format!("error after {seq}: {e}"));
            std::process::exit(3);
        }
        seq += 1;
        std::thread::sleep(Duration::from_micros(500));
    }
    if let Err(e) = tx.send_timeout(&fault::make_end(id, seq), Duration::from_secs(20)) {
        fault::say(&format!("error after {seq}: {e}"));
        std::process::exit(3);
    }
    fault::say(&format!("sent {seq}"));
    // Datagrams and ring records are read from the kernel or the segment after we exit:
    // fine; stream peers read what we wrote before the close.
    std::process::exit(0);
}

/// Reports one received message as a line: `m ID SEQ`, `end ID COUNT` or `torn WHY`.
fn say_checked(data: &[u8]) {
    match fault::check(data) {
        Ok(Checked::Data { id, seq }) => fault::say(&format!("m {id} {seq}")),
        Ok(Checked::End { id, count }) => fault::say(&format!("end {id} {count}")),
        Err(e) => fault::say(&format!("torn {e}")),
    }
}

/// A victim receiver: creates the receiver, says `ready`, and reports every message until it
/// is killed. On a ring it checks each message in place, holding the sample meanwhile.
fn role_recv_victim(args: &[String]) {
    fault::exit_when_stdin_closes(None);
    let ep = Endpoint::parse(&args[0]).unwrap();
    if let ("shm", Address::PosixName(name)) = (ep.scheme(), ep.address()) {
        return ring_recv_victim(name.as_str());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rx = loop {
        match ep.receiver(&fault::receiver_options(&ep)) {
            Ok(rx) => break rx,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{ep}: receiver: {e}"),
        }
    };
    fault::say("ready");
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => say_checked(&m.data),
            Err(Error::Timeout) => {}
            Err(e) if e.is_recoverable() => fault::say(&format!("err {e}")),
            Err(e) => {
                fault::say(&format!("fatal {e}"));
                return;
            }
        }
    }
}

/// The ring options the channel's `shm:` receiver uses for [`fault::receiver_options`].
fn ring_options() -> ipcx::ring::Options {
    ipcx::ring::Options::new()
        .max_message(262_144)
        .capacity(8 * (262_144 + 16))
}

fn ring_recv_victim(name: &str) {
    use ipcx::ring::{RingError, Subscriber};
    let mut sub = Subscriber::create(name, &ring_options()).expect("subscriber");
    fault::say("ready");
    loop {
        match sub.recv_wait(Wait::timeout(Duration::from_secs(1))) {
            Ok(s) => {
                // Holding the sample while checking it: a kill now leaves it unreleased.
                say_checked(&s);
                drop(s);
            }
            Err(RingError::Timeout | RingError::PeerGone { .. }) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => {
                fault::say(&format!("fatal {e}"));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Victims and the survivor's bounded calls

/// Runs one call of the survivor, bounded by `timeout`: one that took longer than `timeout`
/// and [`SLACK`] counts as a hang in `tally`.
fn bounded<T>(tally: &mut Tally, timeout: Duration, call: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let r = call();
    if t0.elapsed() > timeout + SLACK {
        tally.hangs += 1;
    }
    r
}

/// Waits for a random moment to kill victim `v`: one time in eight at once (within 3 ms, often
/// before it connected), otherwise after its first line and then up to [`MAX_DELAY_US`].
/// Returns whether that first line was `up` (true when it was not waited for).
fn pause_before_kill(v: &fault::Piped, rng: &mut Rng, up: &str) -> bool {
    let early = rng.below(8) == 0;
    let (said_up, delay) = if early {
        (true, rng.below(3000))
    } else {
        let said = v.line(Duration::from_secs(20));
        (said.as_deref() == Some(up), rng.below(MAX_DELAY_US))
    };
    std::thread::sleep(Duration::from_micros(delay));
    said_up
}

/// Starts victim `role` (which says "ready" once it serves) and connects to it; a victim that
/// never got ready or a failed connection is reported in `tally` and gives `None`.
fn serving_victim<T, E: std::fmt::Display>(
    tally: &mut Tally,
    role: &str,
    args: &[&str],
    connect: impl FnOnce() -> Result<T, E>,
) -> Option<(fault::Piped, T)> {
    let v = fault::spawn_piped(role, args);
    if v.line(Duration::from_secs(20)).as_deref() != Some("ready") {
        tally.report(&format!("a victim {role} never got ready"));
        return None;
    }
    match connect() {
        Ok(c) => Some((v, c)),
        Err(e) => {
            tally.report(&format!("connect: {e}"));
            None
        }
    }
}

/// Kills a victim from a thread of its own after a delay, while the survivor goes on.
struct Killer {
    killed: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    calls_after: u32,
}

impl Killer {
    /// Kills `v`'s process `delay_us` microseconds from now.
    fn start(v: &mut fault::Piped, delay_us: u64) -> Killer {
        let killed = Arc::new(AtomicBool::new(false));
        let k = killed.clone();
        let mut guard = std::mem::replace(&mut v.child, util::ChildGuard(None));
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(delay_us));
            k.store(true, Ordering::SeqCst);
            guard.kill();
        });
        Killer {
            killed,
            thread,
            calls_after: 0,
        }
    }

    /// Whether the victim has been killed.
    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Counts a call the survivor is about to make; true once more than `n` came after the
    /// kill (the survivor should have seen it by then).
    fn past(&mut self, n: u32) -> bool {
        if self.killed() {
            self.calls_after += 1;
        }
        self.calls_after > n
    }

    fn join(self) {
        self.thread.join().expect("killer thread");
    }
}

// ---------------------------------------------------------------------------------------------
// Message transports

/// Whether a transport takes several senders at once (a ring has one publisher).
fn multi_sender(ep: &Endpoint) -> bool {
    ep.scheme() != "shm"
}

/// Sender killed, receiver survives (see the module documentation).
fn senders_killed(name: &str, trials: u64, rng: &mut Rng) -> Tally {
    let place = Place::new(name);
    let ep = place.endpoint.clone();
    let rx = ep
        .receiver(&fault::receiver_options(&ep))
        .unwrap_or_else(|e| panic!("{ep}: receiver: {e}"));
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    let steady_id = 0u32;
    let has_steady = multi_sender(&ep);
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let r = survive_as_receiver(rx, &stop, has_steady.then_some(steady_id));
            let _ = done_tx.send(r);
        });
    }
    let mut steady = has_steady.then(|| {
        let s = fault::spawn_piped(
            "steady_send",
            &[
                &ep.to_string(),
                &steady_id.to_string(),
                &rng.next_u64().to_string(),
            ],
        );
        let line = s.line(Duration::from_secs(20));
        assert_eq!(line.as_deref(), Some("connected"), "{ep}: steady sender");
        s
    });
    let mut spawn_failures = 0;
    for t in 0..trials {
        let id = (t + 1) as u32;
        let v = fault::spawn_piped(
            "send_victim",
            &[
                &ep.to_string(),
                &id.to_string(),
                &rng.next_u64().to_string(),
            ],
        );
        if !pause_before_kill(&v, rng, "connected") {
            spawn_failures += 1;
        }
        v.kill_and_collect();
    }
    let mut tally = Tally::default();
    if spawn_failures > 0 {
        tally.report(&format!("{spawn_failures} victims never connected"));
    }
    let mut steady_sent = None;
    if let Some(s) = steady.as_mut() {
        s.close_stdin();
        match s.line(Duration::from_secs(60)) {
            Some(l) if l.starts_with("sent ") => steady_sent = l[5..].parse::<u64>().ok(),
            other => tally.report(&format!("steady sender: {other:?}")),
        }
    }
    stop.store(true, Ordering::SeqCst);
    match done_rx.recv_timeout(Duration::from_secs(60)) {
        Ok((mut t, seqs)) => {
            if let Some(sent) = steady_sent {
                let got = seqs.next_of(steady_id);
                t.lost += sent.saturating_sub(got);
                if seqs.ends.get(&steady_id) != Some(&sent) {
                    t.report("the steady sender's closing message did not arrive");
                }
            }
            tally.add(&t);
        }
        Err(_) => {
            tally.hangs += 1;
            tally.report("the receiver did not finish within 60 s");
        }
    }
    tally.trials = trials;
    drop(steady);
    tally
}

/// The surviving receiver's loop: receives until told to stop and then drained (and, with a
/// steady sender, until its closing message arrived), checking every message.
fn survive_as_receiver(
    mut rx: Box<dyn MessageReceiver>,
    stop: &AtomicBool,
    steady: Option<u32>,
) -> (Tally, Sequences) {
    let mut tally = Tally::default();
    let mut seqs = Sequences::default();
    let mut stop_at = None;
    let mut fatal = 0;
    loop {
        if stop.load(Ordering::SeqCst) && stop_at.is_none() {
            stop_at = Some(Instant::now());
        }
        let r = bounded(&mut tally, RECV_TIMEOUT, || rx.recv_timeout(RECV_TIMEOUT));
        let steady_done = steady.is_none_or(|id| seqs.ends.contains_key(&id));
        match r {
            Ok(m) => {
                seqs.record(&m.data, &mut tally);
            }
            Err(Error::Timeout) if stop_at.is_some() && steady_done => break,
            Err(Error::Timeout) => {}
            Err(e) if e.is_recoverable() => tally.report(&e.to_string()),
            Err(e) => {
                tally.report(&format!("fatal: {e}"));
                fatal += 1;
                if fatal > 100 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if stop_at.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
            tally.report("the steady sender's messages stopped arriving: gave up after 10 s");
            break;
        }
    }
    (tally, seqs)
}

/// Receiver killed, sender survives (see the module documentation).
fn receivers_killed(name: &str, trials: u64, rng: &mut Rng) -> Tally {
    let place = Place::new(name);
    let ep = place.endpoint.clone();
    let mut tally = Tally::default();
    let mut seq = 0u64;
    let mut last_delivered: Option<u64> = None;
    let mut sizes = None;
    for _ in 0..trials {
        let mut v = fault::spawn_piped("recv_victim", &[&ep.to_string()]);
        if v.line(Duration::from_secs(20)).as_deref() != Some("ready") {
            tally.report("a victim receiver never got ready");
            v.kill_and_collect();
            continue;
        }
        let mut tx = connect(&ep);
        let sizes =
            sizes.get_or_insert_with(|| fault::sizes(fault::max_len(&ep, tx.max_message_len())));
        let mut killer = Killer::start(&mut v, rng.below(MAX_DELAY_US));
        loop {
            let was_killed = killer.killed();
            // One more send sees the dead receiver (or the room left in a queue).
            if killer.past(1) {
                break;
            }
            let m = fault::make(SURVIVOR_ID, seq, *rng.pick(sizes));
            let r = bounded(&mut tally, SEND_TIMEOUT, || {
                tx.send_timeout(&m, SEND_TIMEOUT)
            });
            match r {
                Ok(()) => seq += 1,
                Err(Error::Timeout) => {}
                Err(e) => {
                    if !was_killed && !killer.killed() {
                        tally.report(&format!("send before the kill: {e}"));
                    }
                    seq += 1;
                    break;
                }
            }
        }
        drop(tx);
        killer.join();
        // The victim's report, in the order it received.
        let mut prev: Option<u64> = None;
        let got: Vec<String> = v.lines.iter().collect();
        for (i, line) in got.iter().enumerate() {
            let mut parts = line.splitn(3, ' ');
            match parts.next() {
                Some("m") => {
                    let _id: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                    let s: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                    if last_delivered.is_some_and(|l| s <= l) {
                        tally.duplicated += 1;
                        continue;
                    }
                    if let Some(p) = prev
                        && s != p + 1
                    {
                        tally.lost += s - p - 1;
                        let around = &got[i.saturating_sub(3)..(i + 3).min(got.len())];
                        tally.torn_example(format!("gap after {p}: next {s}, in {around:?}"));
                    }
                    tally.delivered += 1;
                    prev = Some(s);
                    last_delivered = Some(s);
                }
                Some("torn") => {
                    tally.torn += 1;
                    tally.torn_example(line.clone());
                }
                _ => tally.report(line),
            }
        }
    }
    tally.trials = trials;
    tally
}

/// Both directions on one transport.
fn run_transport(name: &str) {
    let seed = fault::seed();
    let trials = trials();
    eprintln!("fault {name}: seed={seed} (IPCX_FAULT_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    let a = timed(|| senders_killed(name, trials, &mut rng));
    let b = timed(|| receivers_killed(name, trials, &mut rng));
    report(name, ("sender killed", a), ("receiver killed", b), seed);
}

/// Prints the counts of both directions and their sum, and asserts that they are zero.
fn report(name: &str, a: (&str, Tally), b: (&str, Tally), seed: u64) {
    let mut all = a.1.clone();
    all.add(&b.1);
    eprintln!(
        "{}\n{}\n{}\n{}\n{}",
        all.line(name),
        a.1.line(&format!("{name} ({})", a.0)),
        a.1.details(),
        b.1.line(&format!("{name} ({})", b.0)),
        b.1.details(),
    );
    assert!(
        all.hangs == 0 && all.torn == 0 && all.duplicated == 0 && all.lost == 0,
        "{} (seed {seed})",
        all.line(name)
    );
}

/// Runs one direction and notes how long it took.
fn timed(run: impl FnOnce() -> Tally) -> Tally {
    let t0 = Instant::now();
    let mut t = run();
    t.took = t0.elapsed();
    t
}

#[test]
fn fault_fifo() {
    run_transport("fifo");
}

#[test]
fn fault_mq() {
    run_transport("mq");
}

#[test]
fn fault_sysv_mq() {
    run_transport("sysv-mq");
}

#[test]
fn fault_unix_stream() {
    run_transport("unix");
}

#[test]
fn fault_unix_dgram() {
    run_transport("unix-dgram");
}

#[test]
fn fault_unix_seqpacket() {
    run_transport("unix-seqpacket");
}

#[test]
fn fault_tcp() {
    run_transport("tcp");
}

#[test]
fn fault_shm_ring() {
    run_transport("shm");
}

// ---------------------------------------------------------------------------------------------
// Push/pull

/// A worker: results echo the task's number in a message of a random size; each task takes a
/// random time up to 2 ms. A task that does not check is answered with `torn` (the
/// distributor counts it).
fn role_pp_worker(args: &[String]) {
    fault::exit_when_stdin_closes(None);
    let addr = &args[0];
    let mut rng = Rng::new(args[1].parse().unwrap());
    let credits = args[2].parse().unwrap();
    let mut w = Worker::connect(addr, credits, Duration::from_secs(10)).expect("worker connect");
    let sizes = fault::sizes(None);
    fault::say("connected");
    loop {
        let task = match w.recv_timeout(Duration::from_secs(1)) {
            Ok(t) => t,
            Err(ipcx::pattern::Error::Timeout) => continue,
            Err(e) => {
                eprintln!("worker: {e}");
                return;
            }
        };
        let result = match fault::check(&task.data) {
            Ok(Checked::Data { seq, .. }) => fault::make(REPLY_ID, seq, *rng.pick(&sizes)),
            _ => b"torn".to_vec(),
        };
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
        if let Err(e) = w.reply(task.id, &result) {
            eprintln!("worker: {e}");
            return;
        }
    }
}

/// A distributor that submits numbered tasks forever (at most 8 outstanding) and checks the
/// results.
fn role_pp_distributor(args: &[String]) {
    fault::exit_when_stdin_closes(None);
    let pool = Distributor::bind(&args[0]).expect("bind");
    let mut rng = Rng::new(args[1].parse().unwrap());
    let sizes = fault::sizes(None);
    fault::say("ready");
    let mut seq = 0;
    loop {
        while pool.outstanding() < 8 {
            pool.submit(&fault::make(0, seq, *rng.pick(&sizes)))
                .expect("submit");
            seq += 1;
        }
        if let Ok(r) = pool.recv_result_timeout(Duration::from_millis(100)) {
            let _ = fault::check(&r.data);
        }
    }
}

/// Workers killed mid-task; the distributor (this process) must get exactly one whole result
/// per task, with a steady worker left to finish the redelivered ones.
fn pushpull_workers_killed(trials: u64, rng: &mut Rng) -> Tally {
    let addr = format!("unix:@{}", util::unique("fault-pp"));
    let pool = Arc::new(Distributor::bind(&addr).expect("bind"));
    let sizes = fault::sizes(None);
    // Task id -> its number; results are checked against it.
    let submitted: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let (pool, submitted, stop) = (pool.clone(), submitted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut answered = HashSet::new();
            let mut quiet_since = None;
            loop {
                let r = bounded(&mut tally, RECV_TIMEOUT, || {
                    pool.recv_result_timeout(RECV_TIMEOUT)
                });
                match r {
                    Ok(res) => {
                        quiet_since = None;
                        if res.attempt > 1 {
                            tally.report("result of a task handed out again after its worker died");
                        }
                        let want = submitted.lock().unwrap().get(&res.id).copied();
                        if !answered.insert(res.id) {
                            tally.duplicated += 1;
                        }
                        match (want, fault::check(&res.data)) {
                            (Some(n), Ok(Checked::Data { id: REPLY_ID, seq })) if seq == n => {
                                tally.delivered += 1
                            }
                            (w, c) => {
                                tally.torn += 1;
                                tally.torn_example(format!("task {w:?}: result {c:?}"));
                            }
                        }
                    }
                    Err(e) => {
                        if !matches!(e, ipcx::pattern::Error::Timeout) {
                            tally.report(&e.to_string());
                        }
                        if stop.load(Ordering::SeqCst) {
                            let all = submitted.lock().unwrap().len();
                            if answered.len() >= all {
                                break;
                            }
                            let q = *quiet_since.get_or_insert_with(Instant::now);
                            if q.elapsed() > Duration::from_secs(30) {
                                break;
                            }
                        }
                    }
                }
            }
            let all = submitted.lock().unwrap().len();
            tally.lost = all.saturating_sub(answered.len()) as u64;
            tally
        })
    };
    let mut seq = 0u64;
    let mut top_up = |pool: &Distributor, rng: &mut Rng| {
        while pool.outstanding() < 8 {
            let mut map = submitted.lock().unwrap();
            let id = pool
                .submit(&fault::make(0, seq, *rng.pick(&sizes)))
                .expect("submit");
            map.insert(id, seq);
            seq += 1;
        }
    };
    let steady = fault::spawn_piped("pp_worker", &[&addr, &rng.next_u64().to_string(), "2"]);
    assert_eq!(
        steady.line(Duration::from_secs(20)).as_deref(),
        Some("connected")
    );
    for _ in 0..trials {
        top_up(&pool, rng);
        let v = fault::spawn_piped("pp_worker", &[&addr, &rng.next_u64().to_string(), "4"]);
        pause_before_kill(&v, rng, "connected");
        v.kill_and_collect();
    }
    stop.store(true, Ordering::SeqCst);
    let mut tally = collector.join().expect("collector");
    for e in pool.take_worker_errors() {
        tally.report(&e.to_string());
    }
    drop(steady);
    tally.trials = trials;
    tally
}

/// Distributors killed under a live worker (this process): each wait ends, every task it got
/// is whole and handed to it once.
fn pushpull_distributors_killed(trials: u64, rng: &mut Rng) -> Tally {
    let addr = format!("unix:@{}", util::unique("fault-ppd"));
    let sizes = fault::sizes(None);
    let mut tally = Tally::default();
    for _ in 0..trials {
        let seed = rng.next_u64().to_string();
        let Some((mut v, mut w)) =
            serving_victim(&mut tally, "pp_distributor", &[&addr, &seed], || {
                Worker::connect(&addr, 2, Duration::from_secs(5))
            })
        else {
            continue;
        };
        let mut killer = Killer::start(&mut v, rng.below(MAX_DELAY_US));
        let mut seen = HashSet::new();
        loop {
            if killer.past(3) {
                tally.report("the worker kept waiting after its distributor died");
                break;
            }
            let r = bounded(&mut tally, RECV_TIMEOUT, || w.recv_timeout(RECV_TIMEOUT));
            match r {
                Ok(task) => {
                    if !seen.insert(task.id) {
                        tally.duplicated += 1;
                    }
                    match fault::check(&task.data) {
                        Ok(Checked::Data { seq, .. }) => {
                            tally.delivered += 1;
                            let res = fault::make(REPLY_ID, seq, *rng.pick(&sizes));
                            if w.reply(task.id, &res).is_err() {
                                break;
                            }
                        }
                        other => {
                            tally.torn += 1;
                            tally.torn_example(format!("{other:?}"));
                        }
                    }
                }
                Err(ipcx::pattern::Error::Timeout) => {}
                Err(_) => break,
            }
        }
        killer.join();
    }
    tally.trials = trials;
    tally
}

#[test]
fn fault_pushpull() {
    let seed = fault::seed();
    let trials = trials();
    eprintln!("fault pushpull: seed={seed} (IPCX_FAULT_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    let a = timed(|| pushpull_workers_killed(trials, &mut rng));
    let b = timed(|| pushpull_distributors_killed(trials, &mut rng));
    report(
        "pushpull",
        ("worker killed", a),
        ("distributor killed", b),
        seed,
    );
}

// ---------------------------------------------------------------------------------------------
// RPC

/// The `fault` service: `echo` checks its argument (counting torn ones in `torn`) and answers
/// message (`REPLY_ID`, its number) of the size asked for.
fn service(torn: Arc<AtomicU64>) -> Service {
    Service::new("fault", 1)
        .method(
            "echo",
            move |(msg, reply_len): (Vec<u8>, u32)| match fault::check(&msg) {
                Ok(Checked::Data { seq, .. }) => Ok(fault::make(REPLY_ID, seq, reply_len as usize)),
                other => {
                    torn.fetch_add(1, Ordering::SeqCst);
                    Err(format!("torn argument: {other:?}"))
                }
            },
        )
        .threads(2)
}

/// One checked call: `Ok(true)` for a whole reply to this very call, `Ok(false)` for a torn
/// or foreign one.
fn call_checked(
    client: &RpcClient,
    seq: u64,
    rng: &mut Rng,
    sizes: &[usize],
    timeout: Duration,
) -> Result<bool, RpcError> {
    let msg = fault::make(SURVIVOR_ID, seq, *rng.pick(sizes));
    let reply_len = *rng.pick(sizes) as u32;
    let r: Vec<u8> = client.call("echo", &(msg, reply_len), timeout)?;
    Ok(matches!(
        fault::check(&r),
        Ok(Checked::Data { id: REPLY_ID, seq: s }) if s == seq
    ) && r.len() == reply_len as usize)
}

fn role_rpc_client(args: &[String]) {
    fault::exit_when_stdin_closes(None);
    let mut rng = Rng::new(args[1].parse().unwrap());
    let client =
        RpcClient::connect(&args[0], "fault", 1, Duration::from_secs(10)).expect("connect");
    let sizes = fault::sizes(None);
    fault::say("connected");
    for seq in 0.. {
        match call_checked(&client, seq, &mut rng, &sizes, Duration::from_secs(20)) {
            Ok(true) => {}
            Ok(false) => fault::say("torn"),
            Err(e) => {
                eprintln!("client: {e}");
                return;
            }
        }
    }
}

fn role_rpc_server(args: &[String]) {
    fault::exit_when_stdin_closes(None);
    let _server = service(Arc::default()).serve(&args[0]).expect("serve");
    fault::say("ready");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Clients killed mid-call; the server (this process) must keep answering: after each kill a
/// probe call of its own must succeed.
fn rpc_clients_killed(addr: &str, trials: u64, rng: &mut Rng) -> Tally {
    let torn = Arc::new(AtomicU64::new(0));
    let server = service(torn.clone()).serve(addr).expect("serve");
    let sizes = fault::sizes(None);
    let probe = RpcClient::connect(addr, "fault", 1, Duration::from_secs(10)).expect("probe");
    let mut tally = Tally::default();
    for t in 0..trials {
        let v = fault::spawn_piped("rpc_client", &[addr, &rng.next_u64().to_string()]);
        pause_before_kill(&v, rng, "connected");
        for line in v.kill_and_collect() {
            if line == "torn" {
                tally.torn += 1;
            }
        }
        let timeout = Duration::from_secs(2);
        match bounded(&mut tally, timeout, || {
            call_checked(&probe, t, rng, &sizes[..4], timeout)
        }) {
            Ok(true) => tally.delivered += 1,
            Ok(false) => tally.torn += 1,
            Err(e) => tally.report(&format!("probe after a kill: {e}")),
        }
    }
    tally.torn += torn.load(Ordering::SeqCst);
    if addr.starts_with("shm:") {
        check_dead_clients_rings(addr);
    }
    drop(server);
    tally.trials = trials;
    tally
}

/// Servers killed under a live client (this process): each call ends with its own whole reply,
/// `PeerGone` or its timeout.
fn rpc_servers_killed(addr: &str, trials: u64, rng: &mut Rng) -> Tally {
    let sizes = fault::sizes(None);
    let mut tally = Tally::default();
    let mut seq = 0;
    for _ in 0..trials {
        let Some((mut v, client)) = serving_victim(&mut tally, "rpc_server", &[addr], || {
            RpcClient::connect(addr, "fault", 1, Duration::from_secs(5))
        }) else {
            continue;
        };
        let mut killer = Killer::start(&mut v, rng.below(MAX_DELAY_US));
        let timeout = Duration::from_secs(1);
        loop {
            if killer.past(3) {
                tally.report("calls kept timing out after the server died");
                break;
            }
            let r = bounded(&mut tally, timeout, || {
                call_checked(&client, seq, rng, &sizes, timeout)
            });
            seq += 1;
            match r {
                Ok(true) => tally.delivered += 1,
                Ok(false) => tally.torn += 1,
                Err(RpcError::Timeout { .. }) => {}
                Err(RpcError::PeerGone { .. }) => break,
                Err(e) => {
                    tally.report(&e.to_string());
                    break;
                }
            }
        }
        killer.join();
    }
    tally.trials = trials;
    tally
}

/// The ring pairs of `shm:/NAME` connections that clients killed during the handshake left in
/// /dev/shm (`/NAME.link-PID-N-q`, `-r` of a dead PID): whole rings, and half-made ones (killed
/// while creating them). The server removes them when it starts and at each connection.
fn dead_clients_rings(addr: &str) -> (usize, usize) {
    let prefix = format!("{}.link-", addr.trim_start_matches("shm:/"));
    let (mut rings, mut half_made) = (0, 0);
    for e in std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if ipcx::registry::pid_alive(pid) {
            continue;
        }
        if ipcx::ring::is_ring(&format!("/{name}")) {
            rings += 1;
        } else {
            half_made += 1;
        }
    }
    (rings, half_made)
}

/// After the kills, one more connection (the server's sweep runs at each one): no ring of a
/// dead client may be left.
fn check_dead_clients_rings(addr: &str) {
    drop(RpcClient::connect(addr, "fault", 1, Duration::from_secs(10)).expect("connect"));
    let (rings, half_made) = dead_clients_rings(addr);
    eprintln!(
        "fault rpc shm: {rings} link rings and {half_made} half-made ones left in /dev/shm \
         by clients killed while connecting"
    );
    assert_eq!(
        (rings, half_made),
        (0, 0),
        "rings of dead clients left in /dev/shm"
    );
}

/// Removes whatever is named after `addr` in /dev/shm if the test fails half-way.
fn link_cleanup(addr: &str) -> util::Cleanup<impl FnMut()> {
    let prefix = format!("{}.", addr.trim_start_matches("shm:/"));
    util::Cleanup(move || {
        for e in std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    })
}

/// Both directions of RPC over `addr`.
fn run_rpc(name: &str, addr: &str) {
    let seed = fault::seed();
    let trials = trials();
    eprintln!("fault {name}: seed={seed} (IPCX_FAULT_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    let a = timed(|| rpc_clients_killed(addr, trials, &mut rng));
    let b = timed(|| rpc_servers_killed(addr, trials, &mut rng));
    report(name, ("client killed", a), ("server killed", b), seed);
}

#[test]
fn fault_rpc_unix() {
    run_rpc("rpc unix", &util::rpc::unix_addr("fault-rpc"));
}

#[test]
fn fault_rpc_tcp() {
    // Servers bind this port again after each kill: a port outside the ephemeral range, so no
    // connection of another test takes it meanwhile.
    let port = util::stable_tcp_port();
    run_rpc("rpc tcp", &format!("tcp:127.0.0.1:{port}"));
}

#[test]
fn fault_rpc_shm() {
    let addr = util::rpc::shm_addr("fault-rpc");
    let _links = link_cleanup(&addr);
    run_rpc("rpc shm", &addr);
}
