//! The peer process as the parent sees it: started, spoken to over its control connection,
//! and shut down.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::config::BenchConfig;
use super::error::{PhaseError, RunError};
use super::launcher::PeerLauncher;
use crate::peer::PeerArgs;
use crate::protocol::{Command, Incoming, Reply, send_line, spawn_reader};
use crate::stall::SLICE;

/// The running peer process and its control connection.
pub(super) struct Peer {
    child: Child,
    ctl: UnixStream,
    replies: mpsc::Receiver<Incoming<Reply>>,
    early: Option<Reply>,
}

impl Peer {
    pub(super) fn spawn(
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

    pub(super) fn send(&mut self, cmd: &Command) -> Result<(), PhaseError> {
        send_line(&mut self.ctl, cmd)
            .map_err(|e| PhaseError::PeerLost(format!("the peer's control connection: {e}")))
    }

    /// A reply if one is waiting.
    pub(super) fn poll_reply(&mut self) -> Result<Option<Reply>, PhaseError> {
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

    pub(super) fn wait_reply(
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

    pub(super) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the peer to exit, waits up to `grace`, then kills it.
    pub(super) fn shutdown(&mut self, grace: Duration) {
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

pub(super) fn kill_with(mut child: Child, msg: String) -> RunError {
    let _ = child.kill();
    let _ = child.wait();
    RunError::Harness(msg)
}
