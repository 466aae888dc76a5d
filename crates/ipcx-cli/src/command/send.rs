//! `ipcx send ENDPOINT [MSG...]`.

use std::io::{self, BufRead, Read, Write};

use anyhow::Context;
use ipcx::channel::{Endpoint, MessageSender};
use ipcx::wait::Wait;

use crate::args::EndpointFlags;
use crate::exit::endpoint_error;
use crate::parse::parse_endpoint;

/// Arguments of `ipcx send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The endpoint, e.g. mq:/jobs, unix:@svc, tcp:127.0.0.1:7000.
    pub endpoint: String,
    /// Messages to send; with none, each line of stdin is one message.
    pub messages: Vec<String>,
    #[command(flatten)]
    pub flags: EndpointFlags,
}

/// Runs `ipcx send`.
pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let ep = parse_endpoint(&args.endpoint)?;
    args.flags.tls.check(&ep, false)?;
    let opts = args.flags.options()?;
    if args.flags.raw {
        return send_raw(&ep, &opts, &args);
    }
    let mut tx = ep.sender(&opts).map_err(|e| endpoint_error(&ep, e))?;
    let wait = || Wait::from_timeout(args.flags.timeout);
    if args.messages.is_empty() {
        let stdin = io::stdin().lock();
        for line in stdin.split(b'\n') {
            let line = line.context("reading stdin")?;
            send_one(&mut tx, &ep, &line, wait())?;
        }
    } else {
        for m in &args.messages {
            send_one(&mut tx, &ep, m.as_bytes(), wait())?;
        }
    }
    // Messages accepted by a queue that lost its receiver meanwhile are reported here.
    tx.finish().map_err(|e| endpoint_error(&ep, e))
}

fn send_one(
    tx: &mut Box<dyn MessageSender>,
    ep: &Endpoint,
    msg: &[u8],
    wait: Wait,
) -> anyhow::Result<()> {
    tx.send_wait(msg, wait).map_err(|e| endpoint_error(ep, e))
}

fn send_raw(ep: &Endpoint, opts: &ipcx::channel::Options, args: &SendArgs) -> anyhow::Result<()> {
    let mut w = ep.raw_writer(opts).map_err(|e| endpoint_error(ep, e))?;
    if args.messages.is_empty() {
        let mut buf = vec![0u8; 64 * 1024];
        let mut stdin = io::stdin().lock();
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading stdin"),
            };
            w.write_all(&buf[..n])
                .with_context(|| format!("writing to {ep}"))?;
        }
    } else {
        for m in &args.messages {
            w.write_all(m.as_bytes())
                .with_context(|| format!("writing to {ep}"))?;
        }
    }
    w.flush().with_context(|| format!("writing to {ep}"))?;
    Ok(())
}
