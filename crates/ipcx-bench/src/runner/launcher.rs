//! How the parent starts the peer process: the program and the form of its arguments.

use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use crate::peer::PeerArgs;

/// How the parent starts the peer process.
#[derive(Debug, Clone)]
pub struct PeerLauncher {
    pub(super) program: PathBuf,
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

    pub(super) fn command(&self, args: &PeerArgs) -> Process {
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
