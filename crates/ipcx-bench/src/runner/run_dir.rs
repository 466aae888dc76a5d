//! The run's private directory, for the sockets and files of its rows.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::RunError;

/// The run's private directory (mode 0700), removed with its contents on drop.
#[derive(Debug)]
pub(super) struct RunDir(PathBuf);

impl RunDir {
    pub(super) fn new() -> Result<RunDir, RunError> {
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

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
