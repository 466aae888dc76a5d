//! `ipcx sub ENDPOINT`.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use ipcx::channel::ConnectionOptions;
use ipcx::pattern::Error;
use ipcx::pattern::pubsub::{Delivery, Subscriber};
use ipcx::wait::{Wait, deadline_after};

use crate::args::{TlsFlags, ZenohFlags};
use crate::exit::{EXIT_TIMEOUT, Exit};
use crate::json;
use crate::parse::parse_duration;

/// Arguments of `ipcx sub`.
#[derive(Debug, clap::Args)]
pub struct SubArgs {
    /// The publisher's topic address: shm:/NAME (a ring), unix:PATH, unix:@NAME,
    /// tcp:HOST:PORT, tls:HOST:PORT (with --ca), or zenoh:KEYEXPR (wildcards allowed).
    pub endpoint: String,
    /// Only messages whose topic starts with PREFIX (repeatable; default: every topic).
    #[arg(long = "topic", value_name = "PREFIX")]
    pub topics: Vec<String>,
    /// Stop after N messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Print one JSON object per message: `topic`, the payload as `text` (UTF-8) or `base64`,
    /// and `missed` when the publisher dropped messages for this subscriber.
    #[arg(long)]
    pub json: bool,
    /// Bound each wait (e.g. 500ms, 5s): for the publisher to be there, then for each message;
    /// on expiry exit with status 3.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// End (status 0) when the publisher goes away, instead of waiting for the next one.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Certificates of a tls: publisher.
    #[command(flatten)]
    pub tls: TlsFlags,
    /// How zenoh: topics reach their publishers.
    #[command(flatten)]
    pub zenoh: ZenohFlags,
}

/// How long one blocking wait lasts before the loop looks at the stop flag.
const SLICE: Duration = Duration::from_millis(100);

/// Runs `ipcx sub`.
pub fn run(args: SubArgs) -> anyhow::Result<()> {
    ipcx::interrupt::install().context("installing the Ctrl-C handler")?;
    if let Ok(ep) = ipcx::Endpoint::parse(&args.endpoint)
        && ep.is_pubsub()
    {
        return subscribe_fabric(&ep, &args);
    }
    let topics: Vec<&[u8]> = if args.topics.is_empty() {
        vec![b""]
    } else {
        args.topics.iter().map(|t| t.as_bytes()).collect()
    };
    args.tls
        .check(&crate::parse::parse_endpoint(&args.endpoint)?, false)?;
    let mut conn = ConnectionOptions::new();
    if let Some(t) = args.tls.config()? {
        conn = conn.tls(t);
    }
    let mut out = io::stdout().lock();
    let mut received = 0u64;
    while args.count.is_none_or(|c| received < c) {
        let Some(mut sub) = attach(&args, &topics, &conn)? else {
            return Ok(());
        };
        loop {
            if args.count.is_some_and(|c| received >= c) {
                return Ok(());
            }
            let Some(d) = next(&mut sub, &args)? else {
                if args.no_reconnect || ipcx::interrupt::requested() {
                    return Ok(());
                }
                break; // The publisher went away: wait for the next one.
            };
            print_delivery(&mut out, &d, args.json)?;
            received += 1;
        }
    }
    Ok(())
}

/// Subscribes on a transport that is a pub/sub fabric itself (`zenoh:KEYEXPR`): its receiver,
/// printed as `recv` prints (`--json` adds each message's `key`).
fn subscribe_fabric(ep: &ipcx::Endpoint, args: &SubArgs) -> anyhow::Result<()> {
    if !args.topics.is_empty() {
        return Err(crate::exit::usage(format!(
            "{ep}: the key expression is the topic (wildcards such as robot/** allowed); --topic is for the other transports"
        )));
    }
    let mut opts = args.zenoh.apply(ipcx::channel::Options::new());
    opts.connect_timeout = args.timeout;
    let mut rx = ep
        .receiver(&opts)
        .map_err(|e| crate::exit::endpoint_error(ep, e))?;
    let mut received = 0;
    crate::command::recv::recv_messages(
        ep,
        &mut *rx,
        (args.count, args.timeout, args.json),
        &mut received,
    )
}

/// Attaches to the publisher, trying again until `--timeout` while it is not there yet.
/// `None`: stopped by a signal.
fn attach(
    args: &SubArgs,
    topics: &[&[u8]],
    conn: &ConnectionOptions,
) -> anyhow::Result<Option<Subscriber>> {
    let deadline = args.timeout.and_then(deadline_after);
    loop {
        if ipcx::interrupt::requested() {
            return Ok(None);
        }
        match Subscriber::connect_with(&args.endpoint, topics, SLICE, conn) {
            Ok(s) => return Ok(Some(s)),
            Err(e @ (Error::InvalidAddress { .. } | Error::TooLarge { .. })) => {
                return Err(crate::exit::usage(e));
            }
            // A publisher that does not trust us, or that we do not trust, stays so.
            Err(e @ Error::Tls { .. }) => {
                return Err(anyhow::Error::new(e).context(args.endpoint.clone()));
            }
            Err(e) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    eprintln!(
                        "ipcx: no publisher at {} within the timeout ({})",
                        crate::escape::escape(&args.endpoint),
                        crate::escape::escape(&e.to_string())
                    );
                    return Err(Exit(EXIT_TIMEOUT).into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The next message; `None` when the publisher went away or a signal arrived.
fn next(sub: &mut Subscriber, args: &SubArgs) -> anyhow::Result<Option<Delivery>> {
    let deadline = args.timeout.and_then(deadline_after);
    loop {
        if ipcx::interrupt::requested() {
            return Ok(None);
        }
        let slice_end = Instant::now() + SLICE;
        let until = deadline.map_or(slice_end, |d| d.min(slice_end));
        match sub.recv_wait(Wait::Until(until)) {
            Ok(d) => return Ok(Some(d)),
            Err(Error::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    eprintln!(
                        "ipcx: no message on {} within the timeout",
                        crate::escape::escape(&args.endpoint)
                    );
                    return Err(Exit(EXIT_TIMEOUT).into());
                }
            }
            Err(Error::PeerGone { .. }) => return Ok(None),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(args.endpoint.clone()));
            }
        }
    }
}

fn print_delivery(out: &mut impl Write, d: &Delivery, json: bool) -> io::Result<()> {
    if json {
        let mut obj = json::Object::new();
        json::bytes(&mut obj, "topic", &d.topic);
        if d.missed > 0 {
            obj.insert("missed".into(), d.missed.into());
        }
        json::payload(&mut obj, &d.data);
        json::line(out, &obj)
    } else {
        out.write_all(&d.data)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}
