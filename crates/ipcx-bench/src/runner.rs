//! The parent side: plans the rows, starts the peer, runs every row and builds the [`Report`].

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use ipcx::wait::Wait;

use crate::checksum::{Digest, END_SEQ, PayloadGen, seq_of};
use crate::histogram::{Recorder, RttSummary};
use crate::mechanism::{Link, LinkError, Mechanism, RowContext, Side};
use crate::peer::{PeerArgs, SLICE, Stall};
use crate::protocol::{Command, Incoming, Reply, send_line, spawn_reader};
use crate::report::{
    BASELINE, BenchResult, Machine, Pattern, Pinning, Report, RunInfo, Throughput,
};
use crate::{Registry, memcpy_ref, units};

/// How much measuring each row gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// About 30 s for the whole run on a 2-core machine: at most 0.5 s per measurement.
    Quick,
    /// Under 3 minutes for the whole run: at most 3 s per measurement.
    Default,
    /// This many round trips per latency measurement and messages per throughput measurement.
    Iterations(u64),
    /// This long per measurement.
    Time(Duration),
}

impl Budget {
    /// How it is printed in the report.
    pub fn label(&self) -> String {
        match self {
            Budget::Quick => "quick".into(),
            Budget::Default => "default".into(),
            Budget::Iterations(n) => format!("iters {n}"),
            Budget::Time(d) => format!("duration {:.3} s", d.as_secs_f64()),
        }
    }

    /// The measurement budget when `units` measurements and `floors` adjacent floors are
    /// planned. The floors' time comes out of the run's total (quick and default), so adding
    /// them does not lengthen a run.
    fn per_phase(&self, units: usize, floors: usize) -> PhaseBudget {
        let units = units.max(1) as f64;
        let floors_s = self.floor_slice().cost().as_secs_f64() * floors as f64;
        let spread = |total: f64, min: f64, max: f64| {
            // Never less than half the total for the rows themselves.
            let rows = (total - floors_s).max(total / 2.0);
            PhaseBudget::Time(Duration::from_secs_f64((rows / units).clamp(min, max)))
        };
        match *self {
            Budget::Quick => spread(22.0, 0.05, 0.5),
            Budget::Default => spread(140.0, 0.2, 3.0),
            Budget::Iterations(n) => PhaseBudget::Count(n.max(1)),
            Budget::Time(d) => PhaseBudget::Time(d),
        }
    }

    /// The budget of the short `limit` ping-pong measured alongside each row (the floor that
    /// row's ratio divides by, in [`Budget::floor_rounds`] slices): [`FLOOR_TIME`], or the row's own iteration count (at most
    /// [`FLOOR_MAX_ROUND_TRIPS`]) or duration when shorter.
    pub fn floor_phase(&self) -> PhaseBudget {
        match *self {
            Budget::Quick | Budget::Default => PhaseBudget::Time(FLOOR_TIME),
            Budget::Iterations(n) => PhaseBudget::Count(n.clamp(1, FLOOR_MAX_ROUND_TRIPS)),
            Budget::Time(d) => PhaseBudget::Time(d.min(FLOOR_TIME)),
        }
    }

    /// In how many rounds a ping-pong row runs, each after a slice of its floor: several
    /// under a time budget, one under an iteration count (which stays exact).
    pub fn floor_rounds(&self) -> u32 {
        match *self {
            Budget::Quick | Budget::Time(_) => FLOOR_ROUNDS,
            Budget::Default => 2 * FLOOR_ROUNDS,
            Budget::Iterations(_) => 1,
        }
    }

    /// How long the in-process memcpy reference measures each size (after a warm-up of a fifth
    /// of that).
    pub fn memcpy_time(&self) -> Duration {
        match *self {
            Budget::Quick => Duration::from_millis(150),
            Budget::Default => Duration::from_millis(400),
            Budget::Iterations(_) => Duration::from_millis(20),
            Budget::Time(d) => d.clamp(Duration::from_millis(10), Duration::from_millis(500)),
        }
    }

    /// One slice of a row's floor: [`Budget::floor_phase`] spread over its rounds.
    pub fn floor_slice(&self) -> PhaseBudget {
        self.floor_phase().split(self.floor_rounds())
    }
}

/// How long the floor measured next to each row runs (after a warm-up of a tenth of it).
/// Long enough for tens of thousands of cache-line round trips, short next to the tens of
/// seconds a hypervisor keeps the vCPUs in one place.
pub const FLOOR_TIME: Duration = Duration::from_millis(40);

/// The rounds of a ping-pong row and its floor under the quick budget (twice as many under
/// the default one).
pub const FLOOR_ROUNDS: u32 = 8;

/// The most round trips of a floor under [`Budget::Iterations`].
pub const FLOOR_MAX_ROUND_TRIPS: u64 = 50_000;

/// What setting up and closing one floor link costs, on top of its measurement (creating the
/// word, both sides opening it, four control round trips to the peer), for planning.
const FLOOR_SETUP: Duration = Duration::from_millis(2);

/// The budget of one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhaseBudget {
    /// A number of round trips or messages.
    Count(u64),
    /// A duration.
    Time(Duration),
}

impl PhaseBudget {
    /// The warm-up that precedes a latency measurement: a tenth of it.
    pub fn warmup(&self) -> PhaseBudget {
        match *self {
            PhaseBudget::Count(n) => PhaseBudget::Count((n / 10).clamp(1, 10_000)),
            PhaseBudget::Time(d) => PhaseBudget::Time(d / 10),
        }
    }

    fn done(&self, count: u64, elapsed: Duration) -> bool {
        match *self {
            PhaseBudget::Count(n) => count >= n,
            PhaseBudget::Time(d) => elapsed >= d,
        }
    }

    /// One of `n` equal parts of this budget (at least one round trip).
    pub fn split(&self, n: u32) -> PhaseBudget {
        let n = n.max(1);
        match *self {
            PhaseBudget::Count(c) => PhaseBudget::Count(c.div_ceil(u64::from(n)).max(1)),
            PhaseBudget::Time(d) => PhaseBudget::Time(d / n),
        }
    }

    /// An estimate of the wall time, for planning.
    pub fn estimate(&self) -> Duration {
        match *self {
            PhaseBudget::Count(n) => Duration::from_micros(50).saturating_mul(n as u32),
            PhaseBudget::Time(d) => d,
        }
    }

    /// An estimate of the wall time of a floor with this budget: warm-up, measurement and
    /// setting up its link.
    fn cost(&self) -> Duration {
        let run = match *self {
            // A cache-line round trip, with room for the slow phases.
            PhaseBudget::Count(n) => Duration::from_nanos(500).saturating_mul(n as u32),
            PhaseBudget::Time(d) => d,
        };
        run + run / 10 + FLOOR_SETUP
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Row names; empty for every visible row. The `limit` row is always added: it is the
    /// baseline of the ratios.
    pub mechanisms: Vec<String>,
    /// Payload sizes in bytes (each at least 8).
    pub sizes: Vec<usize>,
    /// How much measuring each row gets.
    pub budget: Budget,
    /// CPU pinning of the parent and the peer.
    pub pin: Option<Pinning>,
    /// A phase that makes no progress for this long fails.
    pub stall_timeout: Duration,
    /// Set to stop the run early, as Ctrl-C does (the run also stops on
    /// `ipcx::interrupt::requested()`).
    pub stop: Arc<AtomicBool>,
    /// In how many rounds each ping-pong row with a floor runs, each after a slice of the
    /// floor (`None`: [`Budget::floor_rounds`]).
    pub rounds: Option<u32>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            mechanisms: Vec::new(),
            sizes: units::DEFAULT_SIZES.to_vec(),
            budget: Budget::Default,
            pin: None,
            stall_timeout: Duration::from_secs(10),
            stop: Arc::new(AtomicBool::new(false)),
            rounds: None,
        }
    }
}

/// How the parent starts the peer process.
#[derive(Debug, Clone)]
pub struct PeerLauncher {
    program: PathBuf,
    leading: Vec<String>,
    via_env: bool,
}

impl PeerLauncher {
    /// `PROGRAM LEADING... --control PATH --parent-pid PID ...` (the `ipcx __bench-peer` form).
    pub fn with_args(program: impl Into<PathBuf>, leading: &[&str]) -> PeerLauncher {
        PeerLauncher {
            program: program.into(),
            leading: leading.iter().map(|s| (*s).to_owned()).collect(),
            via_env: false,
        }
    }

    /// `PROGRAM LEADING...` with the peer arguments in the [`PeerArgs::ENV`] environment
    /// variable (for a test binary re-executing itself).
    pub fn with_env(program: impl Into<PathBuf>, leading: &[&str]) -> PeerLauncher {
        PeerLauncher {
            via_env: true,
            ..PeerLauncher::with_args(program, leading)
        }
    }

    /// This executable, run as `SELF SUBCOMMAND ARGS...`.
    pub fn current_exe(subcommand: &str) -> std::io::Result<PeerLauncher> {
        Ok(PeerLauncher::with_args(
            std::env::current_exe()?,
            &[subcommand],
        ))
    }

    fn command(&self, args: &PeerArgs) -> Process {
        let mut c = Process::new(&self.program);
        c.args(&self.leading);
        if self.via_env {
            c.env(PeerArgs::ENV, args.to_env());
        } else {
            c.env_remove(PeerArgs::ENV);
            c.args(args.to_args());
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        c
    }
}

/// Reports progress while the run goes on.
pub trait Progress {
    /// The run has `total` steps.
    fn begin(&mut self, total: u64);
    /// One step starts (`unix 4 KiB ping-pong`).
    fn step(&mut self, label: &str);
    /// The run ended.
    fn finish(&mut self);
}

/// No progress display.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&mut self, _total: u64) {}
    fn step(&mut self, _label: &str) {}
    fn finish(&mut self) {}
}

/// Why a run did not produce a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Ctrl-C (or the stop flag): the peer was stopped and the run's objects removed.
    #[error("interrupted: the peer was stopped and the run's objects removed")]
    Interrupted,
    /// A bad configuration (unknown row, unusable CPU).
    #[error("{0}")]
    Usage(String),
    /// The harness itself failed (the peer cannot start, the temp directory cannot be made).
    #[error("{0}")]
    Harness(String),
}

/// One row and size as planned: run it, or report why not.
#[derive(Debug, Clone)]
pub struct PlannedRow {
    /// The row.
    pub mechanism: Arc<dyn Mechanism>,
    /// Bytes per message.
    pub payload: usize,
    /// Why it will not run.
    pub skip: Option<String>,
    /// The patterns to measure.
    pub patterns: Vec<Pattern>,
}

/// The plan: rows in table order, and the budget of each measurement.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every row and size.
    pub rows: Vec<PlannedRow>,
    /// The budget of each measurement.
    pub phase: PhaseBudget,
    /// The budget of one slice of the `limit` ping-pong measured before each round of a
    /// row's ping-pong (see [`Plan::floors`]).
    pub floor: PhaseBudget,
    /// In how many rounds each ping-pong row with a floor runs (each round after a slice of
    /// the floor; the other patterns run once, in the last round).
    pub rounds: u32,
}

/// The `limit` row and the payload its floors run at: the smallest requested size it carries
/// (64 bytes or fewer when none is).
fn floor_source(rows: &[PlannedRow]) -> Option<(Arc<dyn Mechanism>, usize)> {
    let m = rows
        .iter()
        .find(|r| r.mechanism.name() == BASELINE)?
        .mechanism
        .clone();
    if m.unavailable().is_some() || !m.patterns().contains(&Pattern::PingPong) {
        return None;
    }
    let smallest = rows
        .iter()
        .filter(|r| r.mechanism.name() == BASELINE)
        .map(|r| r.payload)
        .min()?;
    let payload = [smallest, 64, units::MIN_PAYLOAD]
        .into_iter()
        .find(|&p| m.check_payload(p).is_ok())?;
    Some((m, payload))
}

/// Whether `row` gets a floor measured next to it: a ping-pong row that runs, other than the
/// `limit` row itself.
fn wants_floor(row: &PlannedRow) -> bool {
    row.skip.is_none()
        && row.mechanism.name() != BASELINE
        && row.patterns.contains(&Pattern::PingPong)
}

impl Plan {
    /// How many floor slices the run measures: one before each round of each ping-pong row
    /// other than `limit`, when the plan has a usable `limit` row (none otherwise).
    pub fn floors(&self) -> usize {
        if floor_source(&self.rows).is_none() {
            return 0;
        }
        self.rows.iter().filter(|r| wants_floor(r)).count() * self.rounds.max(1) as usize
    }

    /// Measurements that will run.
    pub fn units(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.skip.is_none())
            .map(|r| r.patterns.len())
            .sum()
    }

    /// A rough estimate of the run's wall time.
    pub fn estimate(&self) -> Duration {
        let per = self.phase.estimate();
        let n = self.units() as u32;
        per.saturating_mul(n)
            + per.saturating_mul(n) / 10
            + self.floor.cost().saturating_mul(self.floors() as u32)
    }
}

/// Checks the configuration and decides what runs.
pub fn plan(registry: &Registry, cfg: &BenchConfig) -> Result<Plan, RunError> {
    let rows = registry.resolve(&cfg.mechanisms).map_err(RunError::Usage)?;
    if cfg.sizes.is_empty() {
        return Err(RunError::Usage("no payload sizes given".into()));
    }
    if let Some(&bad) = cfg.sizes.iter().find(|&&s| s < units::MIN_PAYLOAD) {
        return Err(RunError::Usage(format!(
            "payload size {bad} is below {} bytes",
            units::MIN_PAYLOAD
        )));
    }
    if let Some(pin) = cfg.pin {
        check_cpus(pin)?;
    }
    let mut planned = Vec::new();
    for m in rows {
        for &payload in &cfg.sizes {
            let unavailable = m.unavailable();
            let patterns = if unavailable.is_some() {
                vec![Pattern::PingPong, Pattern::Stream]
            } else {
                m.patterns().to_vec()
            };
            let skip = unavailable.or_else(|| m.check_payload(payload).err());
            planned.push(PlannedRow {
                mechanism: m.clone(),
                payload,
                skip,
                patterns,
            });
        }
    }
    let mut plan = Plan {
        rows: planned,
        phase: PhaseBudget::Count(1),
        floor: cfg.budget.floor_slice(),
        rounds: cfg.budget.floor_rounds(),
    };
    if let Some(n) = cfg.rounds {
        plan.rounds = n.max(1);
        plan.floor = cfg.budget.floor_phase().split(plan.rounds);
    }
    plan.phase = cfg.budget.per_phase(plan.units(), plan.floors());
    Ok(plan)
}

/// Checks that both CPUs may be used by this process.
pub fn check_cpus(pin: Pinning) -> Result<(), RunError> {
    let allowed = rustix::thread::sched_getaffinity(None)
        .map_err(|e| RunError::Harness(format!("reading the CPU affinity: {e}")))?;
    let list: Vec<String> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .map(|c| c.to_string())
        .collect();
    for cpu in [pin.parent_cpu, pin.peer_cpu] {
        if cpu >= rustix::thread::CpuSet::MAX_CPU || !allowed.is_set(cpu) {
            return Err(RunError::Usage(format!(
                "CPU {cpu} is not available to this process (it may use CPUs {})",
                list.join(",")
            )));
        }
    }
    Ok(())
}

/// The run's private directory (mode 0700), removed with its contents on drop.
#[derive(Debug)]
struct RunDir(PathBuf);

impl RunDir {
    fn new() -> Result<RunDir, RunError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let p = base.join(format!(
                "ipcx-bench-{}-{:x}{}",
                std::process::id(),
                nanos,
                N.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(RunDir(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(RunError::Harness(format!(
                        "creating a private directory in {}: {e}",
                        base.display()
                    )));
                }
            }
        }
        Err(RunError::Harness("no fresh temp directory name".into()))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why one measurement did not produce figures.
#[derive(Debug)]
enum PhaseError {
    Interrupted,
    Skip(String),
    Failed(String),
    /// The peer is dead or out of step: it must be replaced.
    PeerLost(String),
}

impl From<LinkError> for PhaseError {
    fn from(e: LinkError) -> Self {
        if e.is_skip() {
            PhaseError::Skip(e.to_string())
        } else {
            PhaseError::Failed(e.to_string())
        }
    }
}

/// The running peer process and its control connection.
struct Peer {
    child: Child,
    ctl: UnixStream,
    replies: mpsc::Receiver<Incoming<Reply>>,
    early: Option<Reply>,
}

impl Peer {
    fn spawn(
        launcher: &PeerLauncher,
        dir: &Path,
        cfg: &BenchConfig,
        stop: &dyn Fn() -> bool,
    ) -> Result<Peer, RunError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = dir.join(format!(
            "control-{}.sock",
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let listener = UnixListener::bind(&path)
            .map_err(|e| RunError::Harness(format!("binding {}: {e}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| RunError::Harness(e.to_string()))?;
        let args = PeerArgs {
            control: path.clone(),
            parent_pid: std::process::id() as i32,
            cpu: cfg.pin.map(|p| p.peer_cpu),
            stall_ms: cfg.stall_timeout.as_millis() as u64,
        };
        let mut child = launcher.command(&args).spawn().map_err(|e| {
            RunError::Harness(format!(
                "starting the peer process {}: {e}",
                launcher.program.display()
            ))
        })?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let ctl = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(kill_with(child, format!("accepting the peer: {e}"))),
            }
            if stop() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Interrupted);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(RunError::Harness(format!(
                    "the peer process exited at start ({status})"
                )));
            }
            if Instant::now() >= deadline {
                return Err(kill_with(child, "the peer process never connected".into()));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let _ = std::fs::remove_file(&path);
        let _ = ctl.set_nonblocking(false);
        let reader = ctl
            .try_clone()
            .map_err(|e| RunError::Harness(e.to_string()))?;
        let replies = spawn_reader::<Reply>(reader, |_| true, || {})
            .map_err(|e| RunError::Harness(e.to_string()))?;
        let mut peer = Peer {
            child,
            ctl,
            replies,
            early: None,
        };
        match peer.wait_reply(Duration::from_secs(10), stop) {
            Ok(Reply::Hello { .. }) => Ok(peer),
            Ok(other) => Err(RunError::Harness(format!(
                "the peer said {other:?} instead of hello"
            ))),
            Err(PhaseError::Interrupted) => Err(RunError::Interrupted),
            Err(e) => Err(RunError::Harness(format!("the peer did not start: {e:?}"))),
        }
    }

    fn send(&mut self, cmd: &Command) -> Result<(), PhaseError> {
        send_line(&mut self.ctl, cmd)
            .map_err(|e| PhaseError::PeerLost(format!("the peer's control connection: {e}")))
    }

    /// A reply if one is waiting.
    fn poll_reply(&mut self) -> Result<Option<Reply>, PhaseError> {
        if let Some(r) = self.early.take() {
            return Ok(Some(r));
        }
        match self.replies.try_recv() {
            Ok(Incoming::Msg(r)) => Ok(Some(r)),
            Ok(Incoming::Closed(why)) => Err(PhaseError::PeerLost(why)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(PhaseError::PeerLost(
                "the peer's control connection closed".into(),
            )),
        }
    }

    fn wait_reply(
        &mut self,
        timeout: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Result<Reply, PhaseError> {
        if let Some(r) = self.early.take() {
            return Ok(r);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.replies.recv_timeout(SLICE) {
                Ok(Incoming::Msg(r)) => return Ok(r),
                Ok(Incoming::Closed(why)) => return Err(PhaseError::PeerLost(why)),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PhaseError::PeerLost(
                        "the peer's control connection closed".into(),
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if stop() {
                        return Err(PhaseError::Interrupted);
                    }
                    if !self.alive() {
                        return Err(PhaseError::PeerLost("the peer process exited".into()));
                    }
                    if Instant::now() >= deadline {
                        return Err(PhaseError::PeerLost(format!(
                            "the peer did not answer within {:.0} s",
                            timeout.as_secs_f64()
                        )));
                    }
                }
            }
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the peer to exit, waits up to `grace`, then kills it.
    fn shutdown(&mut self, grace: Duration) {
        let _ = send_line(&mut self.ctl, &Command::Exit);
        let _ = self.ctl.shutdown(std::net::Shutdown::Both);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            // SIGTERM first: the peer drops its links (removing what it created) and exits.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.alive() {
            self.shutdown(Duration::from_secs(2));
        } else {
            let _ = self.child.wait();
        }
    }
}

fn kill_with(mut child: Child, msg: String) -> RunError {
    let _ = child.kill();
    let _ = child.wait();
    RunError::Harness(msg)
}

/// Watches over one measurement: Ctrl-C, a failing or dead peer, a stall.
struct Watch<'a> {
    peer: &'a mut Peer,
    stop: &'a dyn Fn() -> bool,
    stall: Stall,
    count: u64,
    /// Whether the peer already answered this phase (no resync needed after an error).
    answered: bool,
}

impl Watch<'_> {
    fn check(&mut self) -> Result<(), PhaseError> {
        if (self.stop)() {
            return Err(PhaseError::Interrupted);
        }
        let reply = self.peer.poll_reply()?;
        if reply.is_some() {
            self.answered = true;
        }
        match reply {
            Some(Reply::Failed { reason, skip }) => {
                return Err(if skip {
                    PhaseError::Skip(reason)
                } else {
                    PhaseError::Failed(format!("peer: {reason}"))
                });
            }
            Some(other) => {
                return Err(PhaseError::PeerLost(format!(
                    "the peer answered {other:?} in the middle of a measurement"
                )));
            }
            None => {}
        }
        if !self.peer.alive() {
            return Err(PhaseError::PeerLost("the peer process exited".into()));
        }
        if self.stall.stalled(self.count, Instant::now()) {
            return Err(PhaseError::Failed(
                "no progress within the stall timeout: the mechanism stopped moving messages"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A link error; for a vanished peer, its own explanation when it sent one.
    fn link_error(&mut self, e: LinkError) -> PhaseError {
        if let LinkError::PeerGone(_) = e {
            // Give a dying peer a moment to be reaped, then say what happened.
            let deadline = Instant::now() + Duration::from_millis(200);
            while self.peer.alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !self.peer.alive() {
                return PhaseError::PeerLost(format!(
                    "the peer process died during the measurement ({e})"
                ));
            }
        }
        if let LinkError::PeerGone(_) = e
            && let Ok(Reply::Failed { reason, skip }) =
                self.peer.wait_reply(Duration::from_millis(500), self.stop)
        {
            self.answered = true;
            return if skip {
                PhaseError::Skip(reason)
            } else {
                PhaseError::Failed(format!("peer: {reason}"))
            };
        }
        e.into()
    }

    /// Runs one link operation until it succeeds, renewing the deadline by a [`SLICE`] each
    /// time it runs out (after checking the peer is still there and no stop was asked for).
    fn retry(
        &mut self,
        deadline: &mut Instant,
        mut op: impl FnMut(Wait) -> Result<(), LinkError>,
    ) -> Result<(), PhaseError> {
        loop {
            match op(Wait::Until(*deadline)) {
                Ok(()) => {
                    self.count += 1;
                    return Ok(());
                }
                Err(LinkError::Timeout) => {
                    self.check()?;
                    *deadline = Instant::now() + SLICE;
                }
                Err(e) => return Err(self.link_error(e)),
            }
        }
    }

    fn send(
        &mut self,
        link: &mut dyn Link,
        msg: &[u8],
        deadline: &mut Instant,
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.send(msg, wait))
    }

    /// [`Watch::send`] for message `seq` of `template`, written where the link wants it.
    fn send_generated(
        &mut self,
        link: &mut dyn Link,
        template: &mut PayloadGen,
        seq: u64,
        deadline: &mut Instant,
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.send_generated(template, seq, wait))
    }

    /// [`Watch::recv`] through [`Link::recv_with`]: `read` sees the message where it lies.
    fn recv_with(
        &mut self,
        link: &mut dyn Link,
        scratch: &mut Vec<u8>,
        deadline: &mut Instant,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.recv_with(scratch, wait, read))
    }

    fn recv(
        &mut self,
        link: &mut dyn Link,
        buf: &mut Vec<u8>,
        deadline: &mut Instant,
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.recv(buf, wait))
    }

    /// Waits for the peer's `Done` at the end of a phase.
    fn done(&mut self, timeout: Duration) -> Result<Digest, PhaseError> {
        let reply = self.peer.wait_reply(timeout, self.stop)?;
        self.answered = true;
        match reply {
            Reply::Done { digest } => Ok(digest),
            Reply::Failed { reason, skip: true } => Err(PhaseError::Skip(reason)),
            Reply::Failed { reason, .. } => Err(PhaseError::Failed(format!("peer: {reason}"))),
            other => Err(PhaseError::PeerLost(format!(
                "the peer answered {other:?} instead of done"
            ))),
        }
    }
}

/// Round trips: warm-up, then the measurement, recorded in `rec` (which may hold the round
/// trips of earlier rounds of the same row); the peer's checksum of everything it echoed is
/// verified. Returns the summary of everything `rec` holds then.
fn ping_pong(
    link: &mut dyn Link,
    w: &mut Watch<'_>,
    payload: usize,
    budget: PhaseBudget,
    rec: &mut Recorder,
) -> Result<RttSummary, PhaseError> {
    w.peer.send(&Command::Echo)?;
    let mut g = PayloadGen::new(payload);
    let mut sent = Digest::new();
    let before = rec.len();
    let mut buf = Vec::with_capacity(payload);
    let mut seq: u64 = 0;
    for (measure, b) in [(false, budget.warmup()), (true, budget)] {
        let start = Instant::now();
        let mut i: u64 = 0;
        let mut elapsed = Duration::ZERO;
        while !b.done(i, elapsed) {
            let t0 = Instant::now();
            let mut deadline = t0 + SLICE;
            w.send_generated(link, &mut g, seq, &mut deadline)?;
            // The echo is checked where the link hands it over (in place for a ring).
            let mut back = (0, None);
            w.recv_with(link, &mut buf, &mut deadline, &mut |m| {
                back = (m.len(), seq_of(m))
            })?;
            let t1 = Instant::now();
            if back != (payload, Some(seq)) {
                return Err(PhaseError::Failed(format!(
                    "round trip {seq} came back as {} bytes with sequence number {:?}",
                    back.0, back.1
                )));
            }
            if measure {
                rec.record(t1 - t0);
            }
            sent.add(g.sum(seq));
            seq += 1;
            i += 1;
            elapsed = t1 - start;
            if i.is_multiple_of(64) && (w.stop)() {
                return Err(PhaseError::Interrupted);
            }
        }
    }
    let mut deadline = Instant::now() + SLICE;
    w.send(link, g.message(END_SEQ), &mut deadline)?;
    let got = w.done(Duration::from_secs(10).max(w.stall.limit()))?;
    sent.verify(&got)
        .map_err(|e| PhaseError::Failed(format!("ping-pong: {e}")))?;
    rec.summary()
        .filter(|_| rec.len() > before)
        .ok_or_else(|| PhaseError::Failed("no round trip measured".into()))
}

/// One-way streaming; windowed with credits when the mechanism needs flow control.
fn stream(
    link: &mut dyn Link,
    w: &mut Watch<'_>,
    payload: usize,
    budget: PhaseBudget,
    flow_control: bool,
) -> Result<Throughput, PhaseError> {
    let window: u64 = if flow_control {
        ((64 << 10) / payload.max(1024)).clamp(2, 64) as u64
    } else {
        0
    };
    let credit_every = if window > 0 { (window / 2).max(1) } else { 0 };
    w.peer.send(&Command::Sink { credit_every })?;
    let mut g = PayloadGen::new(payload);
    let mut sent = Digest::new();
    let mut credit = Vec::new();
    let mut seq: u64 = 0;
    let mut acked: u64 = 0;
    let t0 = Instant::now();
    let mut deadline = t0 + SLICE;
    let mut elapsed = Duration::ZERO;
    while !budget.done(seq, elapsed) {
        while window > 0 && seq - acked >= window {
            w.recv(link, &mut credit, &mut deadline)?;
            match seq_of(&credit) {
                Some(c) if c <= seq && c >= acked => acked = c,
                other => {
                    return Err(PhaseError::Failed(format!(
                        "bad credit {other:?} after {seq} messages"
                    )));
                }
            }
        }
        w.send_generated(link, &mut g, seq, &mut deadline)?;
        sent.add(g.sum(seq));
        seq += 1;
        if seq.is_multiple_of(16) || payload >= 64 << 10 {
            elapsed = t0.elapsed();
            if (w.stop)() {
                return Err(PhaseError::Interrupted);
            }
        }
    }
    w.send(link, g.message(END_SEQ), &mut deadline)?;
    let got = w.done(Duration::from_secs(10).max(w.stall.limit()))?;
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    sent.verify(&got)
        .map_err(|e| PhaseError::Failed(format!("stream: {e}")))?;
    Ok(Throughput {
        msgs_per_s: seq as f64 / secs,
        bytes_per_s: (seq * payload as u64) as f64 / secs,
        messages: Some(seq),
    })
}

/// Runs the plan: starts the peer, measures every row, and returns the report.
pub fn run(
    registry: &Registry,
    cfg: &BenchConfig,
    launcher: &PeerLauncher,
    progress: &mut dyn Progress,
) -> Result<Report, RunError> {
    let plan = plan(registry, cfg)?;
    run_plan(&plan, cfg, launcher, progress)
}

/// Runs a plan made by [`plan`].
///
/// Blocks the `signal` row's real-time signal ([`crate::signal_row::bench_signal`]) in the
/// calling thread first, and leaves it blocked: call it before this process starts threads of
/// its own, or the `signal` row is skipped.
pub fn run_plan(
    plan: &Plan,
    cfg: &BenchConfig,
    launcher: &PeerLauncher,
    progress: &mut dyn Progress,
) -> Result<Report, RunError> {
    let started = Instant::now();
    // Before this thread starts any other (the peer's reader, the progress bar): the signal
    // row's signal must be blocked in every thread (see `signal_row`).
    crate::signal_row::block_signals()
        .map_err(|e| RunError::Harness(format!("blocking the signal row's signal: {e}")))?;
    let stop_flag = cfg.stop.clone();
    let stop = move || stop_flag.load(Ordering::SeqCst) || ipcx::interrupt::requested();
    // Pinned for this run only: the guard restores the caller's CPU mask when the run ends
    // (a program may run several plans, as the peers comparison does).
    let _pinned = match cfg.pin {
        Some(pin) => Some(
            crate::ring_rows::PinGuard::pin(pin.parent_cpu).map_err(|e| {
                RunError::Harness(format!(
                    "pinning the parent to CPU {}: {e:?}",
                    pin.parent_cpu
                ))
            })?,
        ),
        None => None,
    };
    let dir = RunDir::new()?;
    let total: u64 = plan.rows.iter().map(|r| r.patterns.len() as u64).sum();
    progress.begin(total + cfg.sizes.len() as u64);
    let mut peer: Option<Peer> = None;
    let mut results = Vec::new();
    let mut row_no = 0u64;
    let floor_src = floor_source(&plan.rows);
    for row in &plan.rows {
        let name = row.mechanism.name().to_owned();
        if let Some(why) = &row.skip {
            for &p in &row.patterns {
                progress.step(&format!(
                    "{name} {} {p} (skipped)",
                    units::format_size(row.payload as u64)
                ));
                results.push(BenchResult::skipped(&name, p, row.payload, why.clone()));
            }
            continue;
        }
        if stop() {
            progress.finish();
            return Err(RunError::Interrupted);
        }
        if peer.is_none() {
            peer = Some(Peer::spawn(launcher, dir.path(), cfg, &stop)?);
        }
        // The row's ping-pong runs in rounds, each right after a slice of the floor with the
        // same peer process; both pool their round trips. The host moves the vCPUs every few
        // seconds, so a floor measured once, before the row, may come from another placement
        // than the row itself; interleaved, the floor and the row see the same mix.
        let floor_of_row = floor_src.as_ref().filter(|_| wants_floor(row));
        let rounds = if floor_of_row.is_some() {
            plan.rounds.max(1)
        } else {
            1
        };
        let mut floor_pool = Recorder::new();
        let mut row_pool = Recorder::new();
        let mut row_results = Vec::new();
        let mut lost = RowEnd::Fine;
        for round in 0..rounds {
            if let Some((limit, payload)) = floor_of_row {
                row_no += 1;
                let p = peer.as_mut().expect("peer started");
                let end = measure_floor(
                    limit,
                    *payload,
                    dir.path(),
                    row_no,
                    p,
                    plan.floor,
                    cfg,
                    &stop,
                    &mut floor_pool,
                );
                match end {
                    RowEnd::Fine => {}
                    RowEnd::PeerLost => {
                        if let Some(mut old) = peer.take() {
                            old.shutdown(Duration::from_millis(500));
                        }
                        peer = Some(Peer::spawn(launcher, dir.path(), cfg, &stop)?);
                    }
                    RowEnd::Interrupted => {
                        if let Some(mut old) = peer.take() {
                            old.shutdown(Duration::from_secs(2));
                        }
                        progress.finish();
                        return Err(RunError::Interrupted);
                    }
                }
            }
            let p = peer.as_mut().expect("peer started");
            row_no += 1;
            let ctx = RowContext {
                payload: row.payload,
                dir: dir.path().to_owned(),
                tag: format!("ipcx-bench-{}-{row_no}", std::process::id()),
            };
            let last = round + 1 == rounds;
            if last {
                // The last round measures every pattern (the other ones at full length).
                let (res, end) = run_row(
                    row,
                    &ctx,
                    p,
                    plan.phase.split(rounds),
                    plan.phase,
                    cfg,
                    &stop,
                    progress,
                    &mut row_pool,
                );
                row_results = res;
                lost = end;
                break;
            }
            let ping = PlannedRow {
                patterns: vec![Pattern::PingPong],
                ..row.clone()
            };
            let (res, end) = run_row(
                &ping,
                &ctx,
                p,
                plan.phase.split(rounds),
                plan.phase,
                cfg,
                &stop,
                &mut NoProgress,
                &mut row_pool,
            );
            let fine = res.iter().all(|r| r.rtt_ns.is_some());
            if !fine || !matches!(end, RowEnd::Fine) {
                // The row did not run through: its outcome stands for every pattern.
                let why = res
                    .iter()
                    .find_map(|r| r.skipped.clone().or_else(|| r.error.clone()))
                    .unwrap_or_else(|| "interrupted".into());
                let skipped = res.iter().any(|r| r.skipped.is_some());
                for &pattern in &row.patterns {
                    progress.step(&format!(
                        "{name} {} {pattern}",
                        units::format_size(row.payload as u64)
                    ));
                    row_results.push(if skipped {
                        BenchResult::skipped(&name, pattern, row.payload, why.clone())
                    } else {
                        BenchResult::failed(&name, pattern, row.payload, why.clone())
                    });
                }
                lost = end;
                break;
            }
        }
        let floor = floor_pool.summary();
        attach_floor(&mut row_results, floor.as_ref());
        results.extend(row_results);
        match lost {
            RowEnd::Fine => {}
            RowEnd::PeerLost => {
                // Replace the peer for the next rows.
                if let Some(mut old) = peer.take() {
                    old.shutdown(Duration::from_millis(500));
                }
            }
            RowEnd::Interrupted => {
                if let Some(mut old) = peer.take() {
                    old.shutdown(Duration::from_secs(2));
                }
                progress.finish();
                return Err(RunError::Interrupted);
            }
        }
    }
    if let Some(mut p) = peer.take() {
        p.shutdown(Duration::from_secs(2));
    }
    drop(dir);
    // The copy reference, in this (pinned) process with the peer gone.
    let mut memcpy = Vec::new();
    for &payload in &cfg.sizes {
        if stop() {
            progress.finish();
            return Err(RunError::Interrupted);
        }
        progress.step(&format!(
            "memcpy reference {}",
            units::format_size(payload as u64)
        ));
        memcpy.push(memcpy_ref::measure(
            payload,
            memcpy_ref::area_for(payload),
            cfg.budget.memcpy_time(),
        ));
    }
    progress.finish();
    let mut report = Report {
        ipcx_version: ipcx_version(),
        machine: Machine::detect(cfg.pin),
        run: RunInfo {
            budget: cfg.budget.label(),
            sizes: cfg.sizes.iter().map(|&s| s as u64).collect(),
            baseline: BASELINE.into(),
            baseline_p50_ns: None,
            ratios_omitted: None,
            elapsed_s: Some(started.elapsed().as_secs_f64()),
        },
        results,
        memcpy,
    };
    report.compute_ratios();
    Ok(report)
}

/// Measures one slice of the floor next to a row: a short ping-pong of the `limit` row
/// `limit` at `payload` with the run's peer, as any row is measured (its own word, opened and
/// closed), its round trips recorded in `pool`.
#[allow(clippy::too_many_arguments)]
fn measure_floor(
    limit: &Arc<dyn Mechanism>,
    payload: usize,
    dir: &Path,
    row_no: u64,
    peer: &mut Peer,
    budget: PhaseBudget,
    cfg: &BenchConfig,
    stop: &dyn Fn() -> bool,
    pool: &mut Recorder,
) -> RowEnd {
    let row = PlannedRow {
        mechanism: limit.clone(),
        payload,
        skip: None,
        patterns: vec![Pattern::PingPong],
    };
    let ctx = RowContext {
        payload,
        dir: dir.to_owned(),
        tag: format!("ipcx-bench-{}-{row_no}", std::process::id()),
    };
    let (_, end) = run_row(
        &row,
        &ctx,
        peer,
        budget,
        budget,
        cfg,
        stop,
        &mut NoProgress,
        pool,
    );
    end
}

/// Records the floor measured next to a row in its measured ping-pong results; the `limit`
/// row's own results are their own floor.
fn attach_floor(results: &mut [BenchResult], floor: Option<&RttSummary>) {
    for r in results
        .iter_mut()
        .filter(|r| r.pattern == Pattern::PingPong)
    {
        let Some(rtt) = &r.rtt_ns else { continue };
        let f = if r.mechanism == BASELINE {
            Some((rtt.p50, rtt.p999))
        } else {
            floor.map(|f| (f.p50, f.p999))
        };
        if let Some((p50, p999)) = f {
            r.floor_p50_ns = Some(p50);
            r.floor_p99_9_ns = Some(p999);
        }
    }
}

/// The version of the ipcx library this harness was built with.
pub fn ipcx_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

enum RowEnd {
    Fine,
    PeerLost,
    Interrupted,
}

/// Runs one row and size: open both sides, measure each pattern, close. The ping-pong runs
/// for `ping`, the other patterns for `budget`; the ping-pong's round trips are recorded in
/// `pool`, and its result summarises all of `pool` (the rounds of a row so far).
#[allow(clippy::too_many_arguments)]
fn run_row(
    row: &PlannedRow,
    ctx: &RowContext,
    peer: &mut Peer,
    ping: PhaseBudget,
    budget: PhaseBudget,
    cfg: &BenchConfig,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn Progress,
    pool: &mut Recorder,
) -> (Vec<BenchResult>, RowEnd) {
    let m = &row.mechanism;
    let name = m.name().to_owned();
    let size = units::format_size(row.payload as u64);
    let all = |f: &dyn Fn(Pattern) -> BenchResult| -> Vec<BenchResult> {
        row.patterns.iter().map(|&p| f(p)).collect()
    };
    let outcome = |e: PhaseError| -> (Vec<BenchResult>, RowEnd) {
        match e {
            PhaseError::Interrupted => (Vec::new(), RowEnd::Interrupted),
            PhaseError::Skip(why) => (
                all(&|p| BenchResult::skipped(&name, p, row.payload, why.clone())),
                RowEnd::Fine,
            ),
            PhaseError::Failed(why) => (
                all(&|p| BenchResult::failed(&name, p, row.payload, why.clone())),
                RowEnd::Fine,
            ),
            PhaseError::PeerLost(why) => (
                all(&|p| BenchResult::failed(&name, p, row.payload, why.clone())),
                RowEnd::PeerLost,
            ),
        }
    };
    let skip_steps = |progress: &mut dyn Progress| {
        for p in &row.patterns {
            progress.step(&format!("{name} {size} {p}"));
        }
    };

    // Set up: the parent's objects, both receiving halves, then both sending halves.
    let prepared = match m.prepare(ctx) {
        Ok(p) => p,
        Err(e) => {
            skip_steps(progress);
            return outcome(e.into());
        }
    };
    let half = match m.open(&prepared.spec, Side::Parent, row.payload) {
        Ok(h) => h,
        Err(e) => {
            skip_steps(progress);
            return outcome(e.into());
        }
    };
    let setup = (|| -> Result<(), PhaseError> {
        peer.send(&Command::Open {
            mechanism: name.clone(),
            spec: prepared.spec.clone(),
            payload: row.payload,
        })?;
        match peer.wait_reply(Duration::from_secs(20), stop)? {
            Reply::Opened => Ok(()),
            Reply::Failed { reason, skip: true } => Err(PhaseError::Skip(reason)),
            Reply::Failed { reason, .. } => Err(PhaseError::Failed(format!("peer: {reason}"))),
            other => Err(PhaseError::PeerLost(format!("unexpected {other:?}"))),
        }
    })();
    if let Err(e) = setup {
        skip_steps(progress);
        return outcome(e);
    }
    let connect_timeout = Duration::from_secs(10);
    let connected = (|| -> Result<Box<dyn Link>, PhaseError> {
        peer.send(&Command::Connect {
            timeout_ms: connect_timeout.as_millis() as u64,
        })?;
        let link = half.connect(Wait::timeout(connect_timeout));
        let reply = peer.wait_reply(connect_timeout + Duration::from_secs(5), stop);
        let link = link.map_err(PhaseError::from)?;
        match reply? {
            Reply::Connected => Ok(link),
            Reply::Failed { reason, skip: true } => Err(PhaseError::Skip(reason)),
            Reply::Failed { reason, .. } => Err(PhaseError::Failed(format!("peer: {reason}"))),
            other => Err(PhaseError::PeerLost(format!("unexpected {other:?}"))),
        }
    })();
    let mut link = match connected {
        Ok(l) => l,
        Err(e) => {
            skip_steps(progress);
            let _ = close(peer, stop);
            return outcome(e);
        }
    };
    if let Some(max) = link.max_payload().filter(|&max| max < row.payload) {
        skip_steps(progress);
        drop(link);
        let _ = close(peer, stop);
        return outcome(PhaseError::Skip(format!(
            "{name} carries at most {max} bytes per message here"
        )));
    }

    let mut results = Vec::new();
    let mut end = RowEnd::Fine;
    let mut earlier: Option<PhaseError> = None;
    for &pattern in &row.patterns {
        progress.step(&format!("{name} {size} {pattern}"));
        if let Some(e) = &earlier {
            let r = match e {
                PhaseError::Skip(why) => {
                    BenchResult::skipped(&name, pattern, row.payload, why.clone())
                }
                PhaseError::Failed(why) | PhaseError::PeerLost(why) => BenchResult::failed(
                    &name,
                    pattern,
                    row.payload,
                    format!("not run: an earlier measurement of this row failed ({why})"),
                ),
                PhaseError::Interrupted => unreachable!("interruptions end the row"),
            };
            results.push(r);
            continue;
        }
        let mut w = Watch {
            peer,
            stop,
            stall: Stall::new(cfg.stall_timeout),
            count: 0,
            answered: false,
        };
        let res = match pattern {
            Pattern::PingPong => {
                ping_pong(link.as_mut(), &mut w, row.payload, ping, pool).map(|s| {
                    let mut r = BenchResult::new(&name, pattern, row.payload);
                    r.rtt_ns = Some(s);
                    r.verified = Some(true);
                    r
                })
            }
            Pattern::Stream => stream(
                link.as_mut(),
                &mut w,
                row.payload,
                budget,
                m.needs_flow_control(),
            )
            .map(|t| {
                let mut r = BenchResult::new(&name, pattern, row.payload);
                r.throughput = Some(t);
                r.verified = Some(true);
                r
            }),
        };
        let answered = w.answered;
        match res {
            Ok(r) => results.push(r),
            Err(PhaseError::Interrupted) => {
                return (results, RowEnd::Interrupted);
            }
            Err(e) => {
                // Bring the peer back in step: stop its loop and wait for its answer.
                if answered {
                } else if !matches!(e, PhaseError::PeerLost(_)) {
                    let resync = peer
                        .send(&Command::Abort)
                        .and_then(|()| peer.wait_reply(Duration::from_secs(5), stop));
                    match resync {
                        Ok(_) => {}
                        Err(PhaseError::Interrupted) => return (results, RowEnd::Interrupted),
                        Err(_) => end = RowEnd::PeerLost,
                    }
                } else {
                    end = RowEnd::PeerLost;
                }
                let r = match &e {
                    PhaseError::Skip(why) => {
                        BenchResult::skipped(&name, pattern, row.payload, why.clone())
                    }
                    PhaseError::Failed(why) | PhaseError::PeerLost(why) => {
                        BenchResult::failed(&name, pattern, row.payload, why.clone())
                    }
                    PhaseError::Interrupted => unreachable!(),
                };
                results.push(r);
                earlier = Some(e);
                if matches!(end, RowEnd::PeerLost) {
                    // The remaining patterns cannot run without the peer.
                    continue;
                }
            }
        }
    }
    drop(link);
    if matches!(end, RowEnd::Fine) {
        match close(peer, stop) {
            Ok(()) => {}
            Err(PhaseError::Interrupted) => end = RowEnd::Interrupted,
            Err(_) => end = RowEnd::PeerLost,
        }
    }
    drop(prepared);
    (results, end)
}

fn close(peer: &mut Peer, stop: &dyn Fn() -> bool) -> Result<(), PhaseError> {
    peer.send(&Command::Close)?;
    loop {
        match peer.wait_reply(Duration::from_secs(10), stop)? {
            Reply::Closed => return Ok(()),
            // A late answer to an earlier command: skip it.
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mechanisms: &[&str], sizes: &[usize], budget: Budget) -> BenchConfig {
        BenchConfig {
            mechanisms: mechanisms.iter().map(|s| (*s).to_owned()).collect(),
            sizes: sizes.to_vec(),
            budget,
            ..BenchConfig::default()
        }
    }

    #[test]
    fn a_floor_is_planned_before_each_ping_pong_row_but_the_limit_row() {
        let reg = Registry::standard();
        let p = plan(&reg, &cfg(&["ring", "unix"], &[64, 4096], Budget::Quick)).unwrap();
        // limit 64 B is its own floor, limit 4 KiB is skipped: ring and unix at both sizes,
        // a slice before each round.
        assert_eq!(p.rounds, FLOOR_ROUNDS);
        assert_eq!(p.floors(), 4 * FLOOR_ROUNDS as usize);
        assert_eq!(p.floor, PhaseBudget::Time(FLOOR_TIME / FLOOR_ROUNDS));
        let (m, payload) = floor_source(&p.rows).unwrap();
        assert_eq!((m.name(), payload), (BASELINE, 64));

        // A size the limit row cannot carry: the floors still run, at a size it can.
        let p = plan(&reg, &cfg(&["unix"], &[4096], Budget::Iterations(100))).unwrap();
        assert_eq!((p.rounds, p.floors()), (1, 1));
        assert_eq!(p.floor, PhaseBudget::Count(100));
        assert_eq!(floor_source(&p.rows).unwrap().1, 64);

        // A registry without a limit row (the peers' ipcx-vs-raw rounds): no floors.
        let mut only = Registry::new();
        only.add(crate::selftest::SelfTest);
        let p = plan(&only, &cfg(&["selftest"], &[64], Budget::Iterations(10))).unwrap();
        assert_eq!(p.floors(), 0);
    }

    #[test]
    fn floors_are_short_and_come_out_of_the_run_total() {
        assert_eq!(Budget::Iterations(20).floor_phase(), PhaseBudget::Count(20));
        assert_eq!(
            Budget::Iterations(10_000_000).floor_phase(),
            PhaseBudget::Count(FLOOR_MAX_ROUND_TRIPS)
        );
        assert_eq!(
            Budget::Time(Duration::from_millis(5)).floor_phase(),
            PhaseBudget::Time(Duration::from_millis(5))
        );
        assert_eq!(
            Budget::Time(Duration::from_secs(2)).floor_phase(),
            PhaseBudget::Time(FLOOR_TIME)
        );
        let secs = |b: PhaseBudget| match b {
            PhaseBudget::Time(d) => d.as_secs_f64(),
            PhaseBudget::Count(_) => unreachable!(),
        };
        // 60 measurements and 40 floor slices: the quick run's 22 s less the floors.
        let without = secs(Budget::Quick.per_phase(60, 0));
        let with = secs(Budget::Quick.per_phase(60, 40));
        assert!((without - 22.0 / 60.0).abs() < 1e-9, "{without}");
        let floors = Budget::Quick.floor_slice().cost().as_secs_f64() * 40.0;
        assert!((with - (22.0 - floors) / 60.0).abs() < 1e-9, "{with}");
        // Never below half the total, whatever the number of floors.
        let many = secs(Budget::Quick.per_phase(60, 100_000));
        assert!((many - 11.0 / 60.0).abs() < 1e-9, "{many}");
        assert_eq!(
            Budget::Iterations(7).per_phase(60, 40),
            PhaseBudget::Count(7)
        );
        // Slices: a time budget is split evenly, a count rounded up (never to zero).
        assert_eq!(Budget::Default.floor_rounds(), 2 * FLOOR_ROUNDS);
        assert_eq!(
            Budget::Default.floor_slice(),
            PhaseBudget::Time(FLOOR_TIME / (2 * FLOOR_ROUNDS))
        );
        assert_eq!(Budget::Iterations(9).floor_rounds(), 1);
        assert_eq!(PhaseBudget::Count(10).split(4), PhaseBudget::Count(3));
        assert_eq!(PhaseBudget::Count(1).split(8), PhaseBudget::Count(1));
        assert_eq!(
            PhaseBudget::Time(Duration::from_millis(80)).split(8),
            PhaseBudget::Time(Duration::from_millis(10))
        );
    }
}
