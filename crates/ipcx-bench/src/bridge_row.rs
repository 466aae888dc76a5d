//! The `bridge` row: each message goes through `ipcx::channel::bridge` (what `ipcx bridge`
//! runs) on its way from the parent to the peer, to be compared with the `unix-dgram` row, the
//! same endpoints without the bridge.
//!
//! The endpoints are Unix datagram sockets, as in the `unix-dgram` row: messages keep their
//! boundaries without framing and a full receiver holds the sender back (nothing is dropped),
//! so the only difference between the two rows is the bridge. The parent sends to the bridge's
//! source (`via`); a [`Bridge`] in a thread of the peer process receives each message there and
//! sends it to the peer's endpoint (`a2b`); the peer echoes straight back to the parent (`b2a`).
//! A round trip is therefore one bridged hop and one direct hop, and the row's extra cost over
//! `unix-dgram` is what the bridge adds to one message: a wake-up of the bridge thread, a
//! receive and a send. Pinned (`--cpus`), the bridge thread shares the peer's CPU, as an
//! `ipcx bridge` started next to the receiver may.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use ipcx::channel::bridge::{Bridge, Limits};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelKind, ChannelRow, peer_endpoint, redirect_parent, unix_addr};
use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::report::Pattern;

/// The endpoint kind bridged.
const KIND: ChannelKind = ChannelKind::UnixDgram;

/// The `bridge` row.
#[derive(Debug, Clone)]
pub struct BridgeRow {
    direct: ChannelRow,
}

impl Default for BridgeRow {
    fn default() -> Self {
        BridgeRow::new()
    }
}

impl BridgeRow {
    /// The row: `unix-dgram` endpoints with a bridge on the way to the peer.
    pub fn new() -> BridgeRow {
        BridgeRow {
            direct: ChannelRow::new(KIND),
        }
    }
}

/// The direct row's spec and the bridge's source.
#[derive(Debug, Serialize, Deserialize)]
struct Spec {
    direct: String,
    via: String,
}

impl Mechanism for BridgeRow {
    fn name(&self) -> &str {
        "bridge"
    }

    fn description(&self) -> &str {
        "unix-dgram through ipcx::channel::bridge (what ipcx bridge runs, a thread of the peer) \
         on the way to the peer; compare with unix-dgram, the direct path"
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        self.direct.check_payload(payload)
    }

    fn patterns(&self) -> &[Pattern] {
        self.direct.patterns()
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let mut p = self.direct.prepare(ctx)?;
        p.spec = serde_json::to_string(&Spec {
            direct: p.spec,
            via: unix_addr(KIND.name(), &ctx.dir, &ctx.tag, "via"),
        })
        .expect("spec serialises");
        Ok(p)
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec: Spec = serde_json::from_str(spec)
            .map_err(|e| LinkError::Failed(format!("bad bridge spec: {e}")))?;
        match side {
            Side::Parent => {
                let to_bridge = redirect_parent(&spec.direct, &spec.via)?;
                self.direct.open(&to_bridge, side, payload)
            }
            Side::Peer => {
                // The peer's endpoint first (the bridge sends to it), then the bridge's source,
                // which must exist before the parent connects.
                let direct = self.direct.open(&spec.direct, side, payload)?;
                let bridge = BridgeThread::start(&spec.via, &spec.direct)?;
                Ok(Box::new(BridgedHalf { direct, bridge }))
            }
        }
    }
}

/// The bridge, forwarding in its own thread until stopped.
struct BridgeThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl BridgeThread {
    fn start(via: &str, direct: &str) -> Result<BridgeThread, LinkError> {
        let (to, opts) = peer_endpoint(direct)?;
        let from = ipcx::Endpoint::parse(via).map_err(|e| LinkError::Failed(e.to_string()))?;
        let failed =
            |what: &str, e: ipcx::channel::Error| LinkError::Failed(format!("{what}: {e}"));
        let rx = from.receiver(&opts).map_err(|e| failed(via, e))?;
        let mut bridge = Bridge::new(rx, &to, &opts).map_err(|e| failed("bridge", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bridge".into())
            .spawn(move || {
                let stopped = || flag.load(Ordering::Relaxed);
                bridge
                    .run(&Limits::new(), &stopped, &mut |_| {})
                    .map(drop)
                    .map_err(|e| format!("the bridge stopped: {e}"))
            })
            .map_err(|e| LinkError::Failed(format!("starting the bridge thread: {e}")))?;
        Ok(BridgeThread {
            stop,
            thread: Some(thread),
        })
    }

    /// The bridge's error, once it has stopped with one.
    fn failure(&mut self) -> Option<String> {
        if !self.thread.as_ref()?.is_finished() {
            return None;
        }
        match self.thread.take()?.join() {
            Ok(Ok(())) => Some("the bridge stopped".into()),
            Ok(Err(e)) => Some(e),
            Err(_) => Some("the bridge thread panicked".into()),
        }
    }
}

impl Drop for BridgeThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct BridgedHalf {
    direct: Box<dyn HalfOpen>,
    bridge: BridgeThread,
}

impl HalfOpen for BridgedHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let BridgedHalf { direct, bridge } = *self;
        Ok(Box::new(BridgedLink {
            link: direct.connect(wait)?,
            bridge,
        }))
    }
}

/// The peer's link, the bridge running beside it (stopped when the link is dropped).
struct BridgedLink {
    link: Box<dyn Link>,
    bridge: BridgeThread,
}

impl Link for BridgedLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        self.link.send(msg, wait)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        match self.link.recv(buf, wait) {
            Err(LinkError::Timeout) => match self.bridge.failure() {
                Some(e) => Err(LinkError::Failed(e)),
                None => Err(LinkError::Timeout),
            },
            r => r,
        }
    }

    fn max_payload(&self) -> Option<usize> {
        self.link.max_payload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_go_through_the_bridge() {
        let (spec, echoed) = crate::echo_test::echo_twenty(&BridgeRow::new());
        assert_eq!(echoed, 20);
        let spec: Spec = serde_json::from_str(&spec).unwrap();
        // The parent sends to the bridge's source, not to the peer.
        let (to, _) = peer_endpoint(&redirect_parent(&spec.direct, &spec.via).unwrap()).unwrap();
        assert_eq!(to.to_string(), spec.via);
        let (peer, _) = peer_endpoint(&spec.direct).unwrap();
        assert_ne!(peer.to_string(), spec.via);
    }
}
