//! Pieces shared by the fault-injection suite (`tests/fault_injection.rs`) and the load test
//! (`tests/load.rs`): self-checking messages, a seeded random source, per-sender sequence
//! tracking, the list of message transports with fresh addresses and guards that remove their
//! objects, and child processes whose stdin and stdout are pipes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ipcx::channel::{Address, Endpoint, Options};

use super::{ChildGuard, TempDir};

// ---------------------------------------------------------------------------------------------
// Self-checking messages

/// First word of a data message.
pub const MAGIC: u32 = 0x4950_4d31; // "IPM1"
/// First word of a sender's closing message, which carries how many messages it sent.
pub const END_MAGIC: u32 = 0x4950_4d45; // "IPME"
/// Header: magic, sender id, sequence number, total length.
const HEADER: usize = 4 + 4 + 8 + 4;
/// The shortest message: the header and the checksum.
pub const MIN_LEN: usize = HEADER + 8;

/// The `i`th payload word of message (`id`, `seq`): every byte depends on the sender, the
/// number and the position, so a splice of two messages or a shifted tail does not check.
fn word(id: u32, seq: u64, i: u64) -> u64 {
    splitmix(((id as u64) << 40) ^ seq.rotate_left(17) ^ i.wrapping_mul(0x9e37_79b9))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A word-wise checksum over `bytes` (FNV-1a over 8-byte words, then the tail).
fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h ^= u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    for b in chunks.remainder() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Writes message (`id`, `seq`) of exactly `buf.len()` bytes (at least [`MIN_LEN`]) into `buf`.
pub fn fill(buf: &mut [u8], id: u32, seq: u64) {
    fill_chunked(buf, id, seq, usize::MAX, &mut || {});
}

/// [`fill`], calling `between` after every `chunk` bytes of payload (a peer killed while
/// filling a ring loan leaves a half-written record behind).
pub fn fill_chunked(buf: &mut [u8], id: u32, seq: u64, chunk: usize, between: &mut dyn FnMut()) {
    let len = buf.len();
    assert!(len >= MIN_LEN, "a message needs at least {MIN_LEN} bytes");
    buf[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    buf[4..8].copy_from_slice(&id.to_be_bytes());
    buf[8..16].copy_from_slice(&seq.to_be_bytes());
    buf[16..20].copy_from_slice(&(len as u32).to_be_bytes());
    let body = len - 8;
    let mut done_since = 0;
    let mut i = 0u64;
    let mut at = HEADER;
    while at < body {
        let w = word(id, seq, i).to_le_bytes();
        let n = (body - at).min(8);
        buf[at..at + n].copy_from_slice(&w[..n]);
        at += n;
        i += 1;
        done_since += n;
        if done_since >= chunk {
            done_since = 0;
            between();
        }
    }
    let sum = checksum(&buf[..body]);
    buf[body..].copy_from_slice(&sum.to_le_bytes());
}

/// Message (`id`, `seq`) of `len` bytes (at least [`MIN_LEN`]).
pub fn make(id: u32, seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len.max(MIN_LEN)];
    fill(&mut v, id, seq);
    v
}

/// A sender's closing message: it sent `count` messages.
pub fn make_end(id: u32, count: u64) -> Vec<u8> {
    let mut v = make(id, count, MIN_LEN);
    v[0..4].copy_from_slice(&END_MAGIC.to_be_bytes());
    v
}

/// What a received message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Data message `seq` of sender `id`, whole.
    Data { id: u32, seq: u64 },
    /// Sender `id` is done after `count` messages.
    End { id: u32, count: u64 },
}

/// Checks a message made by [`make`] or [`make_end`]: every byte, the length and the checksum.
/// The error says what is wrong (a torn, truncated or spliced message).
pub fn check(m: &[u8]) -> Result<Checked, String> {
    if m.len() < MIN_LEN {
        return Err(format!("{} bytes, shorter than any message", m.len()));
    }
    let be32 = |at: usize| u32::from_be_bytes(m[at..at + 4].try_into().expect("4 bytes"));
    let magic = be32(0);
    let id = be32(4);
    let seq = u64::from_be_bytes(m[8..16].try_into().expect("8 bytes"));
    let len = be32(16) as usize;
    if len != m.len() {
        return Err(format!(
            "{} bytes, but the header of ({id}, {seq}) says {len}",
            m.len()
        ));
    }
    let end = match magic {
        MAGIC => false,
        END_MAGIC => true,
        other => return Err(format!("bad magic {other:#x} ({} bytes)", m.len())),
    };
    let mut want = vec![0u8; len];
    fill(&mut want, id, seq);
    if m[20..] != want[20..] {
        let at = m[20..]
            .iter()
            .zip(&want[20..])
            .position(|(a, b)| a != b)
            .unwrap_or(0)
            + 20;
        return Err(format!(
            "message ({id}, {seq}) of {len} bytes differs from byte {at} on"
        ));
    }
    Ok(if end {
        Checked::End { id, count: seq }
    } else {
        Checked::Data { id, seq }
    })
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/// A small seeded generator (splitmix64): trials print their seed so a failure can be rerun.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix(self.0)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The run's seed: `IPCX_FAULT_SEED` when set (to rerun a failure), else from the clock.
pub fn seed() -> u64 {
    std::env::var("IPCX_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Message sizes: below and above PIPE_BUF and a page, and frames up to 256 KiB that span
/// many writes, limited to what the sender can carry.
pub fn sizes(max: Option<usize>) -> Vec<usize> {
    let all = [
        MIN_LEN, 100, 4095, 4096, 4097, 8192, 40_000, 65_536, 100_003, 262_144,
    ];
    let max = max.unwrap_or(usize::MAX);
    all.into_iter().filter(|n| *n <= max).collect()
}

// ---------------------------------------------------------------------------------------------
// Counting what arrives

/// What a survivor saw over a run. `lost` counts gaps: a message missing before a later one of
/// the same sender arrived, and messages a surviving sender was told were sent but that never
/// arrived.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub trials: u64,
    pub hangs: u64,
    pub torn: u64,
    pub duplicated: u64,
    pub lost: u64,
    pub delivered: u64,
    /// How long the run took.
    pub took: Duration,
    /// Errors the survivor reported (recoverable ones, such as a peer that died inside a
    /// frame), by text, with a count.
    pub reported: HashMap<String, u64>,
    /// The first few torn messages, described.
    pub torn_examples: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.trials += other.trials;
        self.hangs += other.hangs;
        self.torn += other.torn;
        self.duplicated += other.duplicated;
        self.lost += other.lost;
        self.delivered += other.delivered;
        self.took += other.took;
        for (k, v) in &other.reported {
            *self.reported.entry(k.clone()).or_default() += v;
        }
        for t in &other.torn_examples {
            self.torn_example(t.clone());
        }
    }
    pub fn torn_example(&mut self, what: String) {
        if self.torn_examples.len() < 5 {
            self.torn_examples.push(what);
        }
    }
    pub fn report(&mut self, what: &str) {
        // Peer names and byte counts vary: keep the text up to the first digit.
        let mut key = String::new();
        for c in what.chars() {
            if !c.is_ascii_digit() {
                key.push(c);
            } else if !key.ends_with('#') {
                key.push('#');
            }
        }
        *self.reported.entry(key).or_default() += 1;
    }
    /// The line the suites print: `fault <name>: trials=N hangs=H torn=T duplicated=D lost=L`.
    pub fn line(&self, name: &str) -> String {
        format!(
            "fault {name}: trials={} hangs={} torn={} duplicated={} lost={}",
            self.trials, self.hangs, self.torn, self.duplicated, self.lost
        )
    }
    pub fn details(&self) -> String {
        let mut s = format!(
            "  delivered={} took={:.1}s",
            self.delivered,
            self.took.as_secs_f64()
        );
        let mut rep: Vec<_> = self.reported.iter().collect();
        rep.sort();
        for (k, v) in rep {
            s.push_str(&format!("\n  reported {v}x: {k}"));
        }
        for t in &self.torn_examples {
            s.push_str(&format!("\n  torn: {t}"));
        }
        s
    }
}

/// Per-sender sequence tracking: each sender numbers its messages 0, 1, 2...
#[derive(Debug, Default)]
pub struct Sequences {
    next: HashMap<u32, u64>,
    pub ends: HashMap<u32, u64>,
}

impl Sequences {
    /// Records message `seq` of `id`: a number already seen (or older) is a duplicate (or a
    /// reordering), a number past the next one expected means messages in between were lost.
    pub fn see(&mut self, id: u32, seq: u64, tally: &mut Tally) {
        let next = self.next.entry(id).or_insert(0);
        if seq < *next {
            tally.duplicated += 1;
        } else {
            tally.lost += seq - *next;
            *next = seq + 1;
            tally.delivered += 1;
        }
    }
    /// How many messages of `id` arrived in order so far (the next number expected).
    pub fn next_of(&self, id: u32) -> u64 {
        self.next.get(&id).copied().unwrap_or(0)
    }
    /// Counts one checked message.
    pub fn record(&mut self, msg: &[u8], tally: &mut Tally) -> Option<Checked> {
        match check(msg) {
            Ok(c @ Checked::Data { id, seq }) => {
                self.see(id, seq, tally);
                Some(c)
            }
            Ok(c @ Checked::End { id, count }) => {
                self.ends.insert(id, count);
                Some(c)
            }
            Err(e) => {
                tally.torn += 1;
                tally.torn_example(e);
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transports

/// The message transports the suites cover, by name, with a fresh address each.
pub const TRANSPORTS: &[&str] = &[
    "fifo",
    "mq",
    "sysv-mq",
    "unix",
    "unix-dgram",
    "unix-seqpacket",
    "tcp",
    "shm",
];

/// A fresh endpoint for transport `name`, and a guard that removes its object when dropped
/// (the receivers remove what they create, but a killed receiver cannot).
pub struct Place {
    pub endpoint: Endpoint,
    _dir: TempDir,
}

impl Place {
    pub fn new(name: &str) -> Place {
        let dir = TempDir::new("fault");
        let addr = match name {
            "fifo" => format!("fifo:{}", dir.join("fifo").display()),
            "mq" => format!("mq:{}", super::posix_name("fault")),
            "sysv-mq" => format!("sysv-mq:{}", super::sysv_key()),
            "unix" => format!("unix:{}", dir.join("stream.sock").display()),
            "unix-dgram" => format!("unix-dgram:{}", dir.join("dgram.sock").display()),
            "unix-seqpacket" => format!("unix-seqpacket:@{}", super::unique("fault-seq")),
            "tcp" => format!("tcp:127.0.0.1:{}", super::stable_tcp_port()),
            "udp" => format!("udp:127.0.0.1:{}", free_udp_port()),
            "shm" => format!("shm:{}", super::posix_name("fault")),
            other => panic!("unknown transport {other}"),
        };
        Place {
            endpoint: Endpoint::parse(&addr).expect("a valid address"),
            _dir: dir,
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        match (self.endpoint.scheme(), self.endpoint.address()) {
            ("mq", Address::PosixName(name)) => {
                let _ = ipcx::mq::MessageQueue::unlink(name.as_str());
            }
            ("sysv-mq", Address::SysvKey(key)) => {
                if let Ok(q) = ipcx::sysv::msg::MessageQueue::open(ipcx::sysv::Key(*key)) {
                    let _ = q.remove();
                }
            }
            ("shm", Address::PosixName(name)) => {
                let _ = ipcx::ring::remove(name.as_str());
            }
            _ => {}
        }
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// Receiver options for the suites: queues sized for 8 KiB messages (the unprivileged
/// maximum), rings for 256 KiB ones.
pub fn receiver_options(ep: &Endpoint) -> Options {
    match ep.scheme() {
        "mq" => Options::new().capacity(10, 8192),
        "shm" => Options::new().capacity(8, 262_144),
        _ => Options::new(),
    }
}

/// Sender options: a bounded connect, retried by [`connect`].
pub fn sender_options() -> Options {
    Options::new().connect_timeout(Duration::from_secs(5))
}

/// The largest message the suites send on `ep` (queues: 8 KiB, the default limit).
pub fn max_len(ep: &Endpoint, sender_max: Option<usize>) -> Option<usize> {
    let cap = match ep.scheme() {
        "mq" | "sysv-mq" => Some(8192),
        _ => None,
    };
    match (cap, sender_max) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

// ---------------------------------------------------------------------------------------------
// Children with pipes

/// A child role whose stdin is a pipe (closing it tells the child to finish; the child also
/// ends when this process dies) and whose stdout lines arrive on a channel.
pub struct Piped {
    pub child: ChildGuard,
    pub lines: mpsc::Receiver<String>,
}

pub fn spawn_piped(role: &str, args: &[&str]) -> Piped {
    let mut cmd = super::role_command(role, args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn child");
    let out = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || forward_lines(out, tx));
    Piped {
        child: ChildGuard(Some(child)),
        lines,
    }
}

fn forward_lines(out: ChildStdout, tx: mpsc::Sender<String>) {
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            // A line cut short by SIGKILL has no newline: drop it.
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => return,
            Ok(_) => {
                // Only the role's own lines: the test harness prints to stdout too.
                let Some(said) = line.strip_prefix(SAID) else {
                    continue;
                };
                if tx.send(said.trim_end().to_owned()).is_err() {
                    return;
                }
            }
        }
    }
}

impl Piped {
    /// Waits for a line at most `timeout`.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }
    /// Closes the child's stdin (the child finishes).
    pub fn close_stdin(&mut self) {
        drop(self.child.child().stdin.take());
    }
    /// Kills the child (SIGKILL), reaps it and returns every complete line it printed.
    pub fn kill_and_collect(mut self) -> Vec<String> {
        self.child.kill();
        self.lines.iter().collect()
    }
}

/// In a child: ends the process when the parent closes our stdin or dies, or, when `on_eof`
/// is given, runs it instead (on the watcher thread).
pub fn exit_when_stdin_closes(on_eof: Option<Box<dyn FnOnce() + Send>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        match on_eof {
            Some(f) => f(),
            None => std::process::exit(0),
        }
    });
}

/// What starts every line a role says (the test harness prints to the same stdout).
const SAID: &str = "@fault: ";

/// In a child: prints one line to stdout at once (the parent reads it through a pipe).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{SAID}{line}");
    let _ = out.flush();
}
