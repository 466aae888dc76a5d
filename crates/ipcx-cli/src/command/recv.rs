//! `ipcx recv ENDPOINT`.

/// Arguments of `ipcx recv`.
#[derive(Debug, clap::Args)]
pub struct RecvArgs {
    /// The endpoint, e.g. mq:/jobs, unix:@svc, tcp:127.0.0.1:7000.
    pub endpoint: String,
}

/// Runs `ipcx recv`.
pub fn run(args: RecvArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
