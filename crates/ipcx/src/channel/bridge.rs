//! Forwarding every message that arrives at one endpoint to another: what `ipcx bridge` runs.
//!
//! A [`Bridge`] receives from any [`MessageReceiver`] and sends each message, in order and
//! whole, to an endpoint through a [`Forwarder`]. Sends block (in slices, so that a stop
//! request is seen): a slow destination slows the bridge down, nothing is dropped. Where both
//! sides have them, a POSIX queue's priorities and a System V queue's types are kept.
//!
//! ```no_run
//! use ipcx::channel::{Endpoint, Options};
//! use ipcx::channel::bridge::{Bridge, Limits};
//! # fn main() -> Result<(), ipcx::channel::Error> {
//! let from = Endpoint::parse("mq:/in")?;
//! let to = Endpoint::parse("unix:@out")?;
//! let opts = Options::default();
//! let mut bridge = Bridge::new(from.receiver(&opts)?, &to, &opts)?;
//! let limits = Limits::new().count(Some(10));
//! bridge.run(&limits, &|| false, &mut |e| eprintln!("{e}"))?;
//! println!("forwarded {}", bridge.forwarded());
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use super::{Endpoint, Error, Message, MessageReceiver, MessageSender, Options};
use crate::wait::{Wait, deadline_after};

/// How long one blocking wait lasts before a bridge looks at its stop request.
pub const SLICE: Duration = Duration::from_millis(100);

/// The most senders a [`Forwarder`] keeps open for distinct priorities or types.
const MAX_SENDERS: usize = 32;

/// A message's priority (POSIX mq) or type (System V mq), where the destination has them.
type Key = (Option<u32>, Option<i64>);

/// What of a message's metadata the destination keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keeps {
    /// POSIX mq: the priority.
    Priority,
    /// System V mq: the type.
    Type,
    /// Nothing: one sender carries every message, in order.
    Nothing,
}

impl Keeps {
    /// What `to` keeps, by its scheme (`mq:`, `sysv-mq:`).
    fn of(to: &Endpoint) -> Keeps {
        match to.scheme() {
            "mq" => Keeps::Priority,
            "sysv-mq" => Keeps::Type,
            _ => Keeps::Nothing,
        }
    }
}

/// The sending side of a bridge: the destination endpoint, with one sender per priority (POSIX
/// mq) or type (System V mq) that the forwarded messages carry, so that each keeps its own.
#[derive(Debug)]
pub struct Forwarder {
    to: Endpoint,
    keeps: Keeps,
    opts: Options,
    /// The sender opened with `opts` as given.
    default: Option<Box<dyn MessageSender>>,
    /// Senders for other priorities or types.
    keyed: Vec<(Key, Box<dyn MessageSender>)>,
}

impl Forwarder {
    /// Opens the sending side of `to` with `opts` (as [`Endpoint::sender`] does).
    pub fn open(to: &Endpoint, opts: &Options) -> Result<Forwarder, Error> {
        Ok(Forwarder {
            default: Some(to.sender(opts)?),
            keeps: Keeps::of(to),
            to: to.clone(),
            opts: opts.clone(),
            keyed: Vec::new(),
        })
    }

    /// The destination.
    pub fn endpoint(&self) -> &Endpoint {
        &self.to
    }

    /// The priority or type `msg` keeps at the destination (`None`: the default sender's).
    fn key(&self, msg: &Message) -> Option<Key> {
        match self.keeps {
            Keeps::Priority => msg
                .meta
                .priority
                .filter(|&p| p != self.opts.priority)
                .map(|p| (Some(p), None)),
            Keeps::Type => msg
                .meta
                .mtype
                .filter(|&t| t > 0 && Some(t) != self.opts.mtype.filter(|&d| d > 0))
                .map(|t| (None, Some(t))),
            Keeps::Nothing => None,
        }
    }

    /// The sender for `key`, opened when first needed.
    fn sender(&mut self, key: Option<Key>) -> Result<&mut Box<dyn MessageSender>, Error> {
        let Some(key) = key else {
            if self.default.is_none() {
                self.default = Some(self.to.sender(&self.opts)?);
            }
            return Ok(self.default.as_mut().expect("opened above"));
        };
        if let Some(i) = self.keyed.iter().position(|(k, _)| *k == key) {
            return Ok(&mut self.keyed[i].1);
        }
        if self.keyed.len() >= MAX_SENDERS {
            for (_, mut s) in self.keyed.drain(..) {
                s.finish()?;
            }
        }
        let mut opts = self.opts.clone();
        if let Some(p) = key.0 {
            opts.priority = p;
        }
        opts.mtype = key.1.or(opts.mtype);
        let s = self.to.sender(&opts)?;
        self.keyed.push((key, s));
        Ok(&mut self.keyed.last_mut().expect("pushed above").1)
    }

    /// Sends `msg`, with its priority or type where the destination has them, waiting as
    /// `wait` allows ([`Error::Timeout`]: not sent, send it again).
    pub fn send_wait(&mut self, msg: &Message, wait: Wait) -> Result<(), Error> {
        let key = self.key(msg);
        self.sender(key)?.send_wait(&msg.data, wait)
    }

    /// Closes every sender, so that the next send connects afresh (after the destination's
    /// receiver restarted).
    pub fn reset(&mut self) {
        self.default = None;
        self.keyed.clear();
    }

    /// Reopens the default sender, waiting as `wait` allows for the destination to come back
    /// (returning early, with no sender, when `stop()` turns true).
    fn reopen(&mut self, wait: Wait, stop: &dyn Fn() -> bool) -> Result<(), Error> {
        self.reset();
        loop {
            match self.to.sender(&self.opts) {
                Ok(s) => {
                    self.default = Some(s);
                    return Ok(());
                }
                Err(e) if !(matches!(e, Error::PeerGone { .. } | Error::NotFound { .. })) => {
                    return Err(e);
                }
                Err(_) if stop() => return Ok(()),
                Err(e) => {
                    if wait.expired() {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Ends the batch: reports messages accepted but no longer deliverable
    /// ([`MessageSender::finish`]).
    pub fn finish(&mut self) -> Result<(), Error> {
        for s in self.default.iter_mut() {
            s.finish()?;
        }
        for (_, s) in &mut self.keyed {
            s.finish()?;
        }
        Ok(())
    }
}

/// When a [`Bridge::run`] stops.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Limits {
    /// Stop after this many messages in all (counting earlier runs).
    pub count: Option<u64>,
    /// [`Error::Timeout`] when no message arrives for this long, or the destination accepts
    /// none (nor comes back) for this long.
    pub timeout: Option<Duration>,
    /// When the destination's receiver goes away, wait for it to come back (within
    /// `timeout`) and deliver the message held to it, instead of ending with
    /// [`Error::PeerGone`].
    pub reconnect: bool,
}

impl Limits {
    /// No limits: forward until stopped, end when the destination's receiver goes away.
    pub fn new() -> Limits {
        Limits::default()
    }
    /// Sets [`Limits::count`].
    pub fn count(mut self, count: Option<u64>) -> Self {
        self.count = count;
        self
    }
    /// Sets [`Limits::timeout`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
    /// Sets [`Limits::reconnect`].
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }
}

/// Why [`Bridge::run`] returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// [`Limits::count`] messages were forwarded.
    Count,
    /// The stop function returned true.
    Stopped,
    /// The source ended (its peer went away, for a mechanism where that ends the stream).
    SourceGone,
}

impl Ended {
    /// A short name: `count`, `stopped`, `source-gone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Count => "count",
            Ended::Stopped => "stopped",
            Ended::SourceGone => "source-gone",
        }
    }
}

/// Forwards every message of a receiver to a [`Forwarder`]. See the [module
/// documentation](self).
#[derive(Debug)]
pub struct Bridge {
    from: Box<dyn MessageReceiver>,
    to: Forwarder,
    forwarded: u64,
    bytes: u64,
    held: Option<Message>,
}

impl Bridge {
    /// A bridge from `from` to the endpoint `to`, whose sender opens now with `opts`.
    pub fn new(
        from: Box<dyn MessageReceiver>,
        to: &Endpoint,
        opts: &Options,
    ) -> Result<Bridge, Error> {
        Ok(Bridge::with_forwarder(from, Forwarder::open(to, opts)?))
    }

    /// A bridge from `from` to `to`.
    pub fn with_forwarder(from: Box<dyn MessageReceiver>, to: Forwarder) -> Bridge {
        Bridge {
            from,
            to,
            forwarded: 0,
            bytes: 0,
            held: None,
        }
    }

    /// Messages forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded
    }

    /// Payload bytes forwarded so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The message received but not yet delivered, when [`Bridge::run`] returned before it
    /// could be (a stop request or an error while the destination was not accepting it). The
    /// next run delivers it first.
    pub fn held(&self) -> Option<&Message> {
        self.held.as_ref()
    }

    /// Forwards messages until `limits` or `stop()` ends it. Waits in slices of [`SLICE`],
    /// calling `stop` between them. Errors of the source that leave it usable (one bad peer
    /// of a server, see [`Error::is_recoverable`]) go to `warn` and the bridge goes on; any
    /// other error ends the run (the message being forwarded, if any, is [`Bridge::held`]).
    /// Ends with [`MessageSender::finish`] on the destination.
    pub fn run(
        &mut self,
        limits: &Limits,
        stop: &dyn Fn() -> bool,
        warn: &mut dyn FnMut(&Error),
    ) -> Result<Ended, Error> {
        let ended = self.forward(limits, stop, warn)?;
        self.to.finish()?;
        Ok(ended)
    }

    fn forward(
        &mut self,
        limits: &Limits,
        stop: &dyn Fn() -> bool,
        warn: &mut dyn FnMut(&Error),
    ) -> Result<Ended, Error> {
        let mut deadline = limits.timeout.and_then(deadline_after);
        loop {
            if self.held.is_none() && limits.count.is_some_and(|c| self.forwarded >= c) {
                return Ok(Ended::Count);
            }
            if stop() {
                return Ok(Ended::Stopped);
            }
            let slice = Instant::now() + SLICE;
            let until = Wait::Until(deadline.map_or(slice, |d| d.min(slice)));
            let expired = || deadline.is_some_and(|d| Instant::now() >= d);
            let Some(msg) = &self.held else {
                match self.from.recv_wait(until) {
                    Ok(m) => {
                        self.held = Some(m);
                        deadline = limits.timeout.and_then(deadline_after);
                    }
                    Err(Error::Timeout) if !expired() => {}
                    Err(Error::Timeout) => return Err(Error::Timeout),
                    Err(e) if e.is_recoverable() => warn(&e),
                    Err(Error::PeerGone { .. }) => return Ok(Ended::SourceGone),
                    Err(e) => return Err(e),
                }
                continue;
            };
            match self.to.send_wait(msg, until) {
                Ok(()) => {
                    self.forwarded += 1;
                    self.bytes += msg.data.len() as u64;
                    self.held = None;
                    deadline = limits.timeout.and_then(deadline_after);
                }
                Err(Error::Timeout) if !expired() => {}
                Err(Error::PeerGone { .. }) if limits.reconnect => {
                    let wait = deadline.map_or(Wait::Forever, Wait::Until);
                    self.to.reopen(wait, stop)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The destination side.
    pub fn forwarder(&self) -> &Forwarder {
        &self.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(tag: &str) -> Endpoint {
        Endpoint::parse(&format!("mq:/ipcx-bridge-{}-{tag}", std::process::id())).unwrap()
    }

    #[test]
    fn keeps_priorities_between_posix_queues() {
        let (from, to) = (queue("prio-in"), queue("prio-out"));
        let opts = Options::default();
        let mut out = to.receiver(&opts).unwrap();
        let mut bridge = Bridge::new(from.receiver(&opts).unwrap(), &to, &opts).unwrap();
        for (m, p) in [("a", 3), ("b", 0), ("c", 9)] {
            let mut tx = from.sender(&opts.clone().priority(p)).unwrap();
            tx.send(m.as_bytes()).unwrap();
        }
        let limits = Limits::new().count(Some(3));
        let ended = bridge.run(&limits, &|| false, &mut |e| panic!("{e}"));
        assert_eq!(ended.unwrap(), Ended::Count);
        assert_eq!((bridge.forwarded(), bridge.bytes()), (3, 3));
        // The source hands them over highest priority first; each keeps its priority.
        for (m, p) in [("c", 9), ("a", 3), ("b", 0)] {
            let got = out.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(
                (got.data.as_slice(), got.meta.priority),
                (m.as_bytes(), Some(p))
            );
        }
    }

    #[test]
    fn stops_when_asked_and_times_out_when_idle() {
        let (from, to) = (queue("stop-in"), queue("stop-out"));
        let opts = Options::default();
        let _out = to.receiver(&opts).unwrap();
        let mut bridge = Bridge::new(from.receiver(&opts).unwrap(), &to, &opts).unwrap();
        let ended = bridge.run(&Limits::new(), &|| true, &mut |e| panic!("{e}"));
        assert_eq!(ended.unwrap(), Ended::Stopped);
        let idle = Limits::new().timeout(Some(Duration::from_millis(50)));
        let ended = bridge.run(&idle, &|| false, &mut |e| panic!("{e}"));
        assert!(matches!(ended, Err(Error::Timeout)), "{ended:?}");
        assert!(bridge.held().is_none());
    }

    #[test]
    fn holds_the_message_a_full_destination_does_not_take() {
        let (from, to) = (queue("full-in"), queue("full-out"));
        let opts = Options::default();
        let _out = to.receiver(&opts.clone().capacity(1, 64)).unwrap();
        let mut bridge = Bridge::new(from.receiver(&opts).unwrap(), &to, &opts).unwrap();
        let mut tx = from.sender(&opts).unwrap();
        tx.send(b"one").unwrap();
        tx.send(b"two").unwrap();
        let limits = Limits::new().timeout(Some(Duration::from_millis(300)));
        let ended = bridge.run(&limits, &|| false, &mut |e| panic!("{e}"));
        assert!(matches!(ended, Err(Error::Timeout)), "{ended:?}");
        assert_eq!(bridge.forwarded(), 1);
        assert_eq!(bridge.held().map(|m| m.data.as_slice()), Some(&b"two"[..]));
    }
}
