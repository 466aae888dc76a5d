//! What the parent tells the peer: [`PeerArgs`], on its command line or in the environment.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the parent tells the peer on its command line (or in [`PeerArgs::ENV`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerArgs {
    /// The parent's control socket.
    pub control: PathBuf,
    /// The parent's pid: the peer exits if its parent is already someone else.
    pub parent_pid: i32,
    /// The CPU to pin the peer to.
    pub cpu: Option<usize>,
    /// Give up on a phase after this long without a message, in milliseconds.
    pub stall_ms: u64,
}

impl PeerArgs {
    /// The environment variable that carries the arguments as JSON, for launchers that cannot
    /// pass arguments (a test binary re-executing itself).
    pub const ENV: &'static str = "IPCX_BENCH_PEER";

    /// As command-line arguments: `--control PATH --parent-pid PID [--cpu N] --stall-ms MS`.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--control".to_owned(),
            self.control.display().to_string(),
            "--parent-pid".to_owned(),
            self.parent_pid.to_string(),
            "--stall-ms".to_owned(),
            self.stall_ms.to_string(),
        ];
        if let Some(c) = self.cpu {
            v.push("--cpu".to_owned());
            v.push(c.to_string());
        }
        v
    }

    /// Parses what [`PeerArgs::to_args`] produced.
    pub fn parse(args: &[String]) -> Result<PeerArgs, String> {
        let mut control = None;
        let mut parent_pid = None;
        let mut cpu = None;
        let mut stall_ms = 10_000;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--control" => control = Some(PathBuf::from(value()?)),
                "--parent-pid" => {
                    parent_pid = Some(value()?.parse().map_err(|e| format!("--parent-pid: {e}"))?)
                }
                "--cpu" => cpu = Some(value()?.parse().map_err(|e| format!("--cpu: {e}"))?),
                "--stall-ms" => {
                    stall_ms = value()?.parse().map_err(|e| format!("--stall-ms: {e}"))?
                }
                other => return Err(format!("unknown peer argument {other:?}")),
            }
        }
        Ok(PeerArgs {
            control: control.ok_or("--control is required")?,
            parent_pid: parent_pid.ok_or("--parent-pid is required")?,
            cpu,
            stall_ms,
        })
    }

    /// As JSON for [`PeerArgs::ENV`].
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).expect("peer args serialise")
    }

    /// Reads [`PeerArgs::ENV`]: `None` when unset (this process is not a peer).
    pub fn from_env() -> Option<Result<PeerArgs, String>> {
        let v = std::env::var(Self::ENV).ok()?;
        Some(serde_json::from_str(&v).map_err(|e| format!("{}: {e}", Self::ENV)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let a = PeerArgs {
            control: "/tmp/x/control.sock".into(),
            parent_pid: 42,
            cpu: Some(1),
            stall_ms: 5000,
        };
        assert_eq!(PeerArgs::parse(&a.to_args()).unwrap(), a);
        let b = PeerArgs { cpu: None, ..a };
        assert_eq!(PeerArgs::parse(&b.to_args()).unwrap(), b);
        assert!(PeerArgs::parse(&["--bogus".into()]).is_err());
        assert!(PeerArgs::parse(&[]).is_err());
    }
}
