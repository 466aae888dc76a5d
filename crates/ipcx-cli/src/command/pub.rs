//! `ipcx pub ENDPOINT [MSG...]`.

use std::io::{self, BufRead};
use std::time::{Duration, Instant};

use anyhow::Context;
use ipcx::channel::Endpoint;
use ipcx::pattern::Error;
use ipcx::pattern::pubsub::{Publisher, PublisherOptions};
use ipcx::wait::Wait;

use crate::args::{TlsFlags, ZenohFlags};
use crate::exit::{EXIT_TIMEOUT, Exit, endpoint_error};
use crate::parse::parse_duration;

/// Arguments of `ipcx pub`.
#[derive(Debug, clap::Args)]
pub struct PubArgs {
    /// The topic address to bind: shm:/NAME (a ring, created when missing), unix:PATH,
    /// unix:@NAME, tcp:HOST:PORT, tls:HOST:PORT (with --cert and --key), or zenoh:KEY (put
    /// under the key).
    pub endpoint: String,
    /// Messages to publish; with none, each line of stdin is one message.
    pub messages: Vec<String>,
    /// The topic each message is published on (subscribers filter on its prefix).
    #[arg(long, default_value = "")]
    pub topic: String,
    /// How long to wait for the first subscriber, and then for each message to be taken (e.g.
    /// 500ms, 5s); on expiry exit with status 3.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Wait for at least N subscribers before the first message (zenoh: at least one).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub subscribers: usize,
    /// Certificates of a tls: topic.
    #[command(flatten)]
    pub tls: TlsFlags,
    /// How a zenoh: topic reaches its subscribers.
    #[command(flatten)]
    pub zenoh: ZenohFlags,
}

/// How long one blocking wait lasts before the loop looks at the stop flag.
const SLICE: Duration = Duration::from_millis(100);

/// Runs `ipcx pub`.
pub fn run(args: PubArgs) -> anyhow::Result<()> {
    ipcx::interrupt::install().context("installing the Ctrl-C handler")?;
    if let Ok(ep) = ipcx::Endpoint::parse(&args.endpoint)
        && ep.is_pubsub()
    {
        return publish_fabric(&ep, &args);
    }
    args.tls
        .check(&crate::parse::parse_endpoint(&args.endpoint)?, true)?;
    let opts = PublisherOptions {
        tls: args.tls.config()?,
        ..PublisherOptions::default()
    };
    let publisher = Endpoint::parse(&args.endpoint)
        .and_then(|ep| Publisher::bind_with(&ep, opts))
        .map_err(|e| match e {
            Error::InvalidAddress { .. } => crate::exit::usage(e),
            e => anyhow::Error::new(e).context(args.endpoint.clone()),
        })?;
    if !wait_for_subscribers(&publisher, args.subscribers, args.timeout) {
        if ipcx::interrupt::requested() {
            return Ok(());
        }
        eprintln!(
            "ipcx: no subscriber at {} within {:?} ({} of the {} awaited attached)",
            crate::escape::escape(&args.endpoint),
            args.timeout,
            publisher.subscribers(),
            args.subscribers,
        );
        return Err(Exit(EXIT_TIMEOUT).into());
    }
    if args.messages.is_empty() {
        for line in io::stdin().lock().split(b'\n') {
            let line = line.context("reading stdin")?;
            if ipcx::interrupt::requested() {
                break;
            }
            publish(&publisher, &args, &line)?;
        }
    } else {
        for m in &args.messages {
            if ipcx::interrupt::requested() {
                break;
            }
            publish(&publisher, &args, m.as_bytes())?;
        }
    }
    match publisher.flush_timeout(args.timeout) {
        Ok(()) => Ok(()),
        Err(Error::Timeout) => {
            eprintln!(
                "ipcx: subscribers of {} did not take every message within the timeout",
                args.endpoint
            );
            Err(Exit(EXIT_TIMEOUT).into())
        }
        Err(e) => Err(anyhow::Error::new(e).context(args.endpoint.clone())),
    }
}

/// Publishes on a transport that is a pub/sub fabric itself (`zenoh:KEY`): its sender, which
/// waits (within --timeout) for a matching subscriber before each message while none matches.
fn publish_fabric(ep: &ipcx::Endpoint, args: &PubArgs) -> anyhow::Result<()> {
    if args.subscribers != 1 || !args.topic.is_empty() {
        return Err(crate::exit::usage(format!(
            "{ep}: the key is the topic, and Zenoh tells whether a subscriber matches, not how many: --topic and --subscribers are for the other transports"
        )));
    }
    let opts = args
        .zenoh
        .apply(ipcx::channel::Options::new())
        .connect_timeout(args.timeout);
    let mut tx = ep.sender(&opts).map_err(|e| endpoint_error(ep, e))?;
    let mut send = |msg: &[u8]| {
        tx.send_wait(msg, Wait::timeout(args.timeout))
            .map_err(|e| endpoint_error(ep, e))
    };
    if args.messages.is_empty() {
        for line in io::stdin().lock().split(b'\n') {
            let line = line.context("reading stdin")?;
            if ipcx::interrupt::requested() {
                break;
            }
            send(&line)?;
        }
    } else {
        for m in &args.messages {
            if ipcx::interrupt::requested() {
                break;
            }
            send(m.as_bytes())?;
        }
    }
    Ok(())
}

/// Waits until `n` subscribers are attached; false when they did not come in time (or a
/// signal arrived).
fn wait_for_subscribers(publisher: &Publisher, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ipcx::interrupt::requested() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if publisher.wait_for_subscribers(n, left.min(SLICE)).is_ok() {
            return true;
        }
        if left.is_zero() {
            return false;
        }
    }
}

/// Publishes one message, waiting in slices (lossless: a slow subscriber paces us) up to the
/// timeout.
fn publish(publisher: &Publisher, args: &PubArgs, msg: &[u8]) -> anyhow::Result<()> {
    let deadline = Instant::now() + args.timeout;
    loop {
        if ipcx::interrupt::requested() {
            return Ok(());
        }
        let until = deadline.min(Instant::now() + SLICE);
        match publisher.publish_wait(args.topic.as_bytes(), msg, Wait::Until(until)) {
            Ok(()) => return Ok(()),
            Err(Error::Timeout) if Instant::now() < deadline => {}
            Err(Error::Timeout) => {
                eprintln!(
                    "ipcx: subscribers of {} took no message within the timeout",
                    crate::escape::escape(&args.endpoint)
                );
                return Err(Exit(EXIT_TIMEOUT).into());
            }
            Err(e) => return Err(anyhow::Error::new(e).context(args.endpoint.clone())),
        }
    }
}
