//! `ipcx send ENDPOINT [MSG...]`.

/// Arguments of `ipcx send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The endpoint, e.g. mq:/jobs, unix:@svc, tcp:127.0.0.1:7000.
    pub endpoint: String,
    /// Messages to send; with none, each line of stdin is one message.
    pub messages: Vec<String>,
}

/// Runs `ipcx send`.
pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
