//! `ipcx bridge FROM TO`.

use std::io::{self, Write};

use anyhow::Context;
use ipcx::channel::Error;
use ipcx::channel::bridge::{Bridge, Limits};

use crate::args::EndpointFlags;
use crate::exit::endpoint_error;
use crate::json;
use crate::parse::parse_endpoint;

/// Arguments of `ipcx bridge`.
#[derive(Debug, clap::Args)]
pub struct BridgeArgs {
    /// Where messages arrive: bound, listened on or created as `ipcx recv` does (and removed
    /// again at exit), e.g. mq:/in, unix:@in, shm:/frames.
    pub from: String,
    /// Where they go: connected to or opened as `ipcx send` does, e.g. unix:@out,
    /// tcp:127.0.0.1:7000.
    pub to: String,
    /// Stop after N messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Print one JSON object per line on stdout: `{"event":"ready",..}` once both sides are
    /// open, `{"event":"end","forwarded":N,..}` at the end.
    #[arg(long)]
    pub json: bool,
    /// End with an error when TO's receiver goes away, instead of waiting (within --timeout)
    /// for it to come back and delivering the message held to it.
    #[arg(long)]
    pub no_reconnect: bool,
    #[command(flatten)]
    pub flags: EndpointFlags,
}

/// Runs `ipcx bridge`.
pub fn run(args: BridgeArgs) -> anyhow::Result<()> {
    let from = parse_endpoint(&args.from)?;
    let to = parse_endpoint(&args.to)?;
    args.flags.tls.check(&from, true)?;
    args.flags.tls.check(&to, false)?;
    if args.flags.raw {
        return Err(crate::exit::usage(
            "bridge forwards messages: --raw is for send and recv",
        ));
    }
    ipcx::interrupt::install().context("installing the Ctrl-C handler")?;
    let send_opts = args.flags.options()?;
    let mut recv_opts = send_opts.clone();
    // The timeout bounds each wait for a message, not the bind.
    recv_opts.connect_timeout = None;
    let rx = from
        .receiver(&recv_opts)
        .map_err(|e| endpoint_error(&from, e))?;
    let mut bridge = Bridge::new(rx, &to, &send_opts).map_err(|e| endpoint_error(&to, e))?;
    let mut out = io::stdout().lock();
    let names = serde_json::json!({ "from": from.to_string(), "to": to.to_string() });
    if args.json {
        report(&mut out, "ready", &names, [])?;
    }
    let limits = Limits::new()
        .count(args.count)
        .timeout(args.flags.timeout)
        .reconnect(!args.no_reconnect);
    let result = bridge.run(&limits, &ipcx::interrupt::requested, &mut |e| {
        eprintln!(
            "ipcx: {} (still serving)",
            crate::escape::escape(&e.to_string())
        )
    });
    let reason = match &result {
        Ok(ended) => ended.as_str(),
        Err(Error::Timeout) => "timeout",
        Err(_) => "error",
    };
    let end = [
        ("reason", reason.into()),
        ("forwarded", bridge.forwarded().into()),
        ("bytes", bridge.bytes().into()),
        ("held", u64::from(bridge.held().is_some()).into()),
    ];
    if args.json {
        report(&mut out, "end", &names, end)?;
    } else {
        eprintln!(
            "ipcx: forwarded {} message(s) from {from} to {to}{}",
            bridge.forwarded(),
            if bridge.held().is_some() {
                " (1 received but not delivered)"
            } else {
                ""
            }
        );
    }
    match result {
        Ok(_) => Ok(()),
        Err(Error::Timeout) => {
            eprintln!("ipcx: nothing moved from {from} to {to} within the timeout");
            Err(crate::exit::Exit(crate::exit::EXIT_TIMEOUT).into())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("bridge {from} -> {to}"))),
    }
}

/// Prints one report line: `{"event":EVENT, "from":.., "to":.., FIELDS...}`.
fn report<const N: usize>(
    out: &mut impl Write,
    event: &str,
    names: &serde_json::Value,
    fields: [(&str, serde_json::Value); N],
) -> io::Result<()> {
    let mut obj = json::Object::new();
    obj.insert("event".into(), event.into());
    if let serde_json::Value::Object(n) = names {
        obj.extend(n.clone());
    }
    for (k, v) in fields {
        obj.insert(k.into(), v);
    }
    json::line(out, &obj)
}
