//! `ipcx recv ENDPOINT`.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use ipcx::channel::{Error, Message};
use ipcx::wait::{Wait, deadline_after};

use crate::args::EndpointFlags;
use crate::exit::endpoint_error;
use crate::exit::{EXIT_TIMEOUT, Exit};
use crate::json;
use crate::parse::parse_endpoint;

/// Arguments of `ipcx recv`.
#[derive(Debug, clap::Args)]
pub struct RecvArgs {
    /// The endpoint, e.g. mq:/jobs, unix:@svc, tcp:127.0.0.1:7000. udp: loses datagrams
    /// under load (the kernel drops what the receive buffer cannot hold, without an error);
    /// recv prints on exit how many it received.
    pub endpoint: String,
    /// Stop after N messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Print one JSON object per message: the payload as `text` (UTF-8) or `base64`, plus
    /// `priority`, `type`, `pid`, `uid`, `gid`, `peer` (the sender's address) and `key` (the
    /// Zenoh key it was put under) where the mechanism gives them.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub flags: EndpointFlags,
}

/// How long one blocking wait lasts before the loop looks at the stop flag.
const SLICE: Duration = Duration::from_millis(100);

/// Runs `ipcx recv`.
pub fn run(args: RecvArgs) -> anyhow::Result<()> {
    let ep = parse_endpoint(&args.endpoint)?;
    args.flags.tls.check(&ep, true)?;
    let mut opts = args.flags.options()?;
    // The timeout bounds each wait for a message, not the bind.
    opts.connect_timeout = None;
    ipcx::interrupt::install().context("installing the Ctrl-C handler")?;
    if args.flags.raw {
        return recv_raw(&ep, &opts, &args);
    }
    let mut rx = ep.receiver(&opts).map_err(|e| endpoint_error(&ep, e))?;
    let mut received = 0u64;
    let result = recv_messages(
        &ep,
        &mut *rx,
        (args.count, args.flags.timeout, args.json),
        &mut received,
    );
    if ep.scheme() == "udp" {
        // UDP drops datagrams under load without telling anyone: say what did arrive.
        eprintln!(
            "ipcx: received {received} datagram(s) on {ep} (UDP loses datagrams under load without an error: compare with what was sent)"
        );
    }
    result
}

/// Receives and prints messages until `count`, the `timeout` for each, Ctrl-C or an error (as
/// JSON records with `json`); counts them in `received`. `ipcx sub` on a pub/sub transport
/// (`zenoh:`) runs this too.
pub fn recv_messages(
    ep: &ipcx::Endpoint,
    rx: &mut dyn ipcx::channel::MessageReceiver,
    (count, timeout, json): (Option<u64>, Option<Duration>, bool),
    received: &mut u64,
) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    while count.is_none_or(|c| *received < c) {
        let deadline = timeout.and_then(deadline_after);
        let msg = loop {
            if ipcx::interrupt::requested() {
                return Ok(());
            }
            let slice_end = Instant::now() + SLICE;
            let until = deadline.map_or(slice_end, |d| d.min(slice_end));
            match rx.recv_wait(Wait::Until(until)) {
                Ok(m) => break m,
                Err(Error::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        out.flush().ok();
                        eprintln!("ipcx: no message on {ep} within the timeout");
                        return Err(Exit(EXIT_TIMEOUT).into());
                    }
                }
                Err(e) if e.is_recoverable() => eprintln!("ipcx: {e} (still serving)"),
                Err(Error::PeerGone { .. }) if !ep.is_framed() => {
                    return Ok(());
                }
                Err(e) => return Err(endpoint_error(ep, e)),
            }
        };
        print_message(&mut out, &msg, json)?;
        *received += 1;
    }
    out.flush()?;
    Ok(())
}

fn print_message(out: &mut impl Write, msg: &Message, json: bool) -> io::Result<()> {
    if json {
        let mut obj = json::object(&msg.meta);
        json::payload(&mut obj, &msg.data);
        json::line(out, &obj)
    } else {
        out.write_all(&msg.data)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

fn recv_raw(
    ep: &ipcx::Endpoint,
    opts: &ipcx::channel::Options,
    args: &RecvArgs,
) -> anyhow::Result<()> {
    let mut r = ep.raw_reader(opts).map_err(|e| endpoint_error(ep, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut deadline = args.flags.timeout.and_then(deadline_after);
    loop {
        if ipcx::interrupt::requested() {
            return Ok(());
        }
        let slice_end = Instant::now() + SLICE;
        let until = deadline.map_or(slice_end, |d| d.min(slice_end));
        match r.read_wait(&mut buf, Wait::Until(until)) {
            Ok(n) => {
                out.write_all(&buf[..n])?;
                out.flush()?;
                deadline = args.flags.timeout.and_then(deadline_after);
            }
            Err(Error::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    eprintln!("ipcx: no bytes on {ep} within the timeout");
                    return Err(Exit(EXIT_TIMEOUT).into());
                }
            }
            Err(e) if e.is_recoverable() => eprintln!("ipcx: {e} (still serving)"),
            Err(e) => return Err(endpoint_error(ep, e)),
        }
    }
}
