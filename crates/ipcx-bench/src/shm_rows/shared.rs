//! What the rows over named shared-memory objects share: the word tags, spec and error
//! helpers, fresh names, and a half that needs no connection step.

use ipcx::sync::SegmentError;
use ipcx::wait::Wait;
use serde::Serialize;

use crate::mechanism::{HalfOpen, Link, LinkError, RowContext, Side};
use crate::report::Pattern;

/// The tag of a word meant for the peer.
pub(super) const FOR_PEER: u32 = 1;
/// The tag of a word meant for the parent.
pub(super) const FOR_PARENT: u32 = 2;

pub(super) const PING_PONG: &[Pattern] = &[Pattern::PingPong];

/// (tag of what this side receives, tag of what it sends).
pub(super) fn tags(side: Side) -> (u32, u32) {
    match side {
        Side::Parent => (FOR_PARENT, FOR_PEER),
        Side::Peer => (FOR_PEER, FOR_PARENT),
    }
}

pub(super) fn seg_err(what: &str, e: SegmentError) -> LinkError {
    LinkError::Failed(format!("{what}: {e}"))
}

pub(super) fn bad_spec(e: serde_json::Error) -> LinkError {
    LinkError::Failed(format!("bad row spec: {e}"))
}

pub(super) fn to_json<T: Serialize>(spec: &T) -> String {
    serde_json::to_string(spec).expect("specs serialise")
}

/// A fresh POSIX name for object `what` of this row.
pub(super) fn posix_name(ctx: &RowContext, what: &str) -> String {
    format!("/{}-{what}", ctx.tag)
}

/// A half that needs no connection step: the objects are open already.
pub(super) struct Ready(pub(super) Box<dyn Link>);

impl HalfOpen for Ready {
    fn connect(self: Box<Self>, _wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        Ok(self.0)
    }
}
