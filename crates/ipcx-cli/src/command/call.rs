//! `ipcx call TARGET METHOD [JSON]`: calls a method of an RPC service, and `ipcx call --list
//! TARGET`: prints what the service serves.
//!
//! * **TARGET** is an endpoint when it starts with a scheme ipcx knows followed by `:`
//!   (`unix:@calc`, `tcp:host:7000`, `shm:/calc`); anything else is the name of a live
//!   service found by discovery (`ipcx ls --services`). When several live services have that
//!   name, the most recently started one that accepts the connection is called (as
//!   [`ipcx::rpc::RpcClient::connect_by_name`] does); `--list` says which endpoint that was.
//!   At an endpoint the call names no service (any service, any version: see
//!   `docs/PROTOCOL.md`), so a server on another host or without a listing is reached all
//!   the same; a server older than that refuses it, and is then called by the name
//!   discovery lists at that endpoint (its methods, too, come from that listing, as it does
//!   not answer `ipcx.describe`).
//! * **The argument** is one JSON value (an array for several: a Rust `(i64, i64)` takes
//!   `[2, 3]`; a struct takes an object keyed by field name; none: `null`), sent as
//!   MessagePack; the result is printed as one line of JSON. What JSON cannot hold (bytes,
//!   ext values, NaN and infinities, maps with keys that are not strings) travels as a `$`
//!   tag (see [`crate::msgpack`]).
//! * **Errors**: the service's error (exit 1, its message on stderr, escaped); a method the
//!   service does not have (exit 1, naming it and listing the methods the service has, asked
//!   with `ipcx.describe`); `--timeout` bounds connecting plus the call (exit 3). Without it,
//!   connecting gives up after 5 s and the call waits as long as the server takes.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use ipcx::Endpoint;
use ipcx::channel::ConnectionOptions;
use ipcx::discovery::{self, Filter, Kind, MethodInfo};
use ipcx::rpc::{Codec, DESCRIBE, RpcClient, RpcError};
use ipcx::wait::{Wait, deadline_after};

use crate::args::TlsFlags;
use crate::escape::escape;
use crate::exit::{EXIT_TIMEOUT, Exit, usage};
use crate::json;
use crate::msgpack;
use crate::parse::parse_duration;

/// How long connecting may take when `--timeout` is not given.
const DEFAULT_CONNECT: Duration = Duration::from_secs(5);

/// Arguments of `ipcx call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The service: an endpoint (unix:PATH, unix:@NAME, tcp:HOST:PORT, shm:/NAME), or the
    /// name of a live service (see `ipcx ls --services`).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// The method to call.
    #[arg(required_unless_present = "list")]
    pub method: Option<String>,
    /// The argument, as JSON: one value, an array for several (`[2,3]`); `-` reads it from
    /// stdin; none: null. Bytes, NaN and maps with non-string keys are written
    /// {"$bin":"BASE64"}, {"$float":"NaN"}, {"$map":[[KEY,VALUE]]} (also in the result).
    #[arg(value_name = "JSON", allow_hyphen_values = true)]
    pub arg: Option<String>,
    /// Print the service's name, version, endpoint and methods instead of calling.
    #[arg(long, conflicts_with_all = ["method", "arg"])]
    pub list: bool,
    /// With --list: print one JSON document (`name`, `version`, `endpoint`, `methods`). A call
    /// always prints its result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Bound connecting plus the call (e.g. 500ms, 5s); on expiry exit with status 3.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Certificates for a `tls:` endpoint (--ca, and --cert/--key when the service requires
    /// a client certificate).
    #[command(flatten)]
    pub tls: TlsFlags,
}

/// Runs `ipcx call`.
pub fn run(args: CallArgs) -> anyhow::Result<()> {
    let deadline = args.timeout.and_then(deadline_after);
    // The argument is checked before anything is connected.
    let payload = match &args.method {
        Some(_) if !args.list => Some(argument(args.arg.as_deref())?),
        _ => None,
    };
    let connect_for = deadline.map_or(DEFAULT_CONNECT, left);
    let opts = connection_options(&args)?;
    let client =
        connect(&args.target, connect_for, &opts).map_err(|e| fail(e, &args, "connecting"))?;
    let wait = deadline.map_or(Wait::Forever, Wait::Until);
    let (Some(method), Some(payload)) = (&args.method, payload) else {
        let d = describe(&client, wait).map_err(|e| fail(e, &args, DESCRIBE))?;
        return list(&d, client.raw().addr(), args.json);
    };
    let result = match client.call_encoded(method, &payload, wait) {
        Ok(r) => r,
        Err(RpcError::UnknownMethod { .. }) => return Err(unknown_method(&client, method, wait)),
        Err(e) => return Err(fail(e, &args, method)),
    };
    let line = msgpack::to_json(&result).map_err(|why| {
        anyhow!(
            "the result of {method:?} ({} byte{}) is not MessagePack: {why}",
            result.len(),
            if result.len() == 1 { "" } else { "s" }
        )
    })?;
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The time left before `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The call's argument as MessagePack: the JSON given, read from stdin for `-`, null when
/// there is none. Text that is not JSON is a usage error.
fn argument(arg: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let text = match arg {
        None => "null".to_owned(),
        Some("-") => {
            let mut s = String::new();
            io::stdin()
                .read_to_string(&mut s)
                .context("reading the argument from stdin")?;
            s
        }
        Some(s) => s.to_owned(),
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| usage(format!("the argument is not JSON: {e}")))?;
    msgpack::from_json(&v).map_err(|e| usage(format!("the argument: {e}")))
}

/// Whether `target` is an endpoint (a scheme ipcx knows, then `:`) rather than a name.
fn is_endpoint(target: &str) -> bool {
    target
        .split_once(':')
        .is_some_and(|(scheme, _)| ipcx::channel::transport::find(scheme).is_some())
}

/// A MessagePack client of the service `target` names.
/// What the transport needs besides the address: a `tls:` endpoint's certificates, checked
/// (a usage error naming the missing flag) before anything is connected.
fn connection_options(args: &CallArgs) -> anyhow::Result<ConnectionOptions> {
    let mut opts = ConnectionOptions::new();
    if let Ok(ep) = Endpoint::parse(&args.target) {
        args.tls.check(&ep, false)?;
    }
    if let Some(t) = args.tls.config()? {
        opts = opts.tls(t);
    }
    Ok(opts)
}

fn connect(
    target: &str,
    timeout: Duration,
    opts: &ConnectionOptions,
) -> Result<RpcClient, RpcError> {
    if !is_endpoint(target) {
        return RpcClient::connect_by_name_with(target, timeout, Codec::MsgPack);
    }
    let started = Instant::now();
    match RpcClient::connect_any(target, timeout, Codec::MsgPack, opts) {
        // A server older than the hello naming no service: name the service listed there.
        Err(e @ RpcError::WrongService { .. }) => match listed(target) {
            Some(l) => {
                let left = timeout.saturating_sub(started.elapsed());
                RpcClient::connect_with(target, &l.name, l.version, left, Codec::MsgPack)
            }
            None => Err(e),
        },
        r => r,
    }
}

/// The error of a failed connect or call of `what`: a timeout prints its message and exits 3,
/// the rest exit 1 with their message.
fn fail(e: RpcError, args: &CallArgs, what: &str) -> anyhow::Error {
    let target = &args.target;
    match e {
        RpcError::Timeout { .. } => {
            let after = args
                .timeout
                .map(|t| format!(" after {t:?}"))
                .unwrap_or_default();
            let doing = if what == "connecting" {
                format!("connecting to {target}")
            } else {
                format!("{what} at {target}")
            };
            eprintln!("ipcx: {}: timed out{after}", escape(&doing));
            anyhow::Error::new(Exit(EXIT_TIMEOUT))
        }
        RpcError::Decode {
            remote: true,
            detail,
            ..
        } => anyhow!(
            "{target}: the service could not read the argument of {what:?}: {detail} (see \
             `ipcx call --list {target}`)"
        ),
        e if e.to_string().contains(target.as_str()) => anyhow::Error::new(e),
        e => anyhow!("{target}: {e}"),
    }
}

/// The error of a call of `method`, which the service `client` reached does not have: names
/// the methods it has, when it says (or its listing does).
fn unknown_method(client: &RpcClient, method: &str, wait: Wait) -> anyhow::Error {
    let addr = client.raw().addr();
    match describe(client, wait) {
        Ok(d) => anyhow!(
            "service {:?} at {addr} has no method {method:?}; {}",
            d.name,
            if d.methods.is_empty() {
                "it has no methods".to_owned()
            } else {
                format!("its methods: {}", names(&d.methods))
            }
        ),
        Err(_) => anyhow!("the service at {addr} has no method {method:?}"),
    }
}

/// What a service says about itself.
struct Listing {
    name: String,
    version: u32,
    methods: Vec<MethodInfo>,
}

/// What the service `client` reached serves, asked with `ipcx.describe`; from its discovery
/// listing when it does not know that request (an older server).
fn describe(client: &RpcClient, wait: Wait) -> Result<Listing, RpcError> {
    let timeout = wait.remaining().unwrap_or(DEFAULT_CONNECT);
    match client.describe(timeout) {
        Ok(d) => Ok(Listing {
            name: d.name,
            version: d.version,
            methods: d.methods,
        }),
        Err(e @ RpcError::UnknownMethod { .. }) => listed(client.raw().addr()).ok_or(e),
        Err(e) => Err(e),
    }
}

/// The discovery listing of the RPC service at `addr`.
fn listed(addr: &str) -> Option<Listing> {
    discovery::discover(&Filter::new().kind(Kind::Rpc))
        .into_iter()
        .find(|s| s.endpoint == addr)
        .map(|s| Listing {
            name: s.name,
            version: s.version,
            methods: s.methods,
        })
}

/// The methods' names, comma-separated.
fn names(methods: &[MethodInfo]) -> String {
    methods
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ipcx call --list`: the service's name, version, endpoint and methods.
fn list(d: &Listing, addr: &str, json: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        let methods: Vec<serde_json::Value> = d
            .methods
            .iter()
            .map(|m| serde_json::json!({"name": m.name, "codecs": m.codecs}))
            .collect();
        let doc = serde_json::json!({
            "name": d.name,
            "version": d.version,
            "endpoint": addr,
            "methods": methods,
        });
        json::document(&mut out, &doc)?;
    } else {
        print_table(&mut out, d, addr)?;
    }
    out.flush()?;
    Ok(())
}

/// The `--list` table: a line naming the service, then a method per line with its codecs.
fn print_table(out: &mut impl Write, d: &Listing, addr: &str) -> io::Result<()> {
    writeln!(
        out,
        "{} version {} at {}",
        escape(&d.name),
        d.version,
        escape(addr)
    )?;
    let width = d
        .methods
        .iter()
        .map(|m| escape(&m.name).chars().count())
        .max()
        .unwrap_or(0)
        .max("METHOD".len());
    writeln!(out, "{:<width$}  CODECS", "METHOD")?;
    for m in &d.methods {
        let codecs = m
            .codecs
            .iter()
            .map(|c| escape(c).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(out, "{:<width$}  {codecs}", escape(&m.name))?;
    }
    if d.methods.is_empty() {
        writeln!(out, "(no methods)")?;
    }
    Ok(())
}
