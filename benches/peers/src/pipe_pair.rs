//! The rows over two anonymous pipes, the peer's ends handed over with `SCM_RIGHTS`: `pipe`
//! (through `ipcx::pipe`) and `raw-pipe` (bare libc) are two [`PipePair`] values.

use std::os::fd::OwnedFd;

use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

use crate::handoff::{Claim, Giving, Offer};

/// Makes one side's link of a pipe-pair row from its write end, its read end and the payload.
pub type PipeLinkFn = fn(OwnedFd, OwnedFd, usize) -> Box<dyn Link>;

/// A row over two anonymous pipes, the peer's ends handed over with `SCM_RIGHTS`: the `pipe`
/// row (through `ipcx::pipe`) and `raw-pipe` (bare libc) differ only in how a pipe is made
/// and in the link over it.
#[derive(Debug)]
pub struct PipePair {
    /// The row's name.
    pub name: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Makes one pipe (read end, write end).
    pub pipe: fn() -> Result<(OwnedFd, OwnedFd), LinkError>,
    /// Makes a side's link.
    pub link: PipeLinkFn,
}

impl Mechanism for PipePair {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        self.description
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(ctx.socket_path(self.name)))
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        open_pipe_pair(spec, side, payload, self.pipe, self.link)
    }
}

/// Opens one side of a row over two anonymous pipes: the parent makes both with `pipe` (read
/// end, write end), keeps one end of each and offers the peer the other two at `spec`; each
/// side's link is `link(write end, read end, payload)`.
fn open_pipe_pair(
    spec: &str,
    side: Side,
    payload: usize,
    pipe: fn() -> Result<(OwnedFd, OwnedFd), LinkError>,
    link: PipeLinkFn,
) -> Result<Box<dyn HalfOpen>, LinkError> {
    match side {
        Side::Parent => {
            let offer = Offer::bind(spec.as_ref())?;
            let (a2b_r, a2b_w) = pipe()?;
            let (b2a_r, b2a_w) = pipe()?;
            Ok(Box::new(PipeParent {
                giving: Giving {
                    offer,
                    give: vec![a2b_r, b2a_w],
                    keep: (a2b_w, b2a_r),
                },
                payload,
                link,
            }))
        }
        Side::Peer => Ok(Box::new(PipePeer {
            claim: Claim::connect(spec)?,
            payload,
            link,
        })),
    }
}

struct PipeParent {
    giving: Giving<(OwnedFd, OwnedFd)>,
    payload: usize,
    link: PipeLinkFn,
}

struct PipePeer {
    claim: Claim,
    payload: usize,
    link: PipeLinkFn,
}

impl HalfOpen for PipeParent {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let (tx, rx) = self.giving.hand_over(wait)?;
        Ok((self.link)(tx, rx, self.payload))
    }
}

impl HalfOpen for PipePeer {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let mut fds = self.claim.take(2, wait)?;
        let tx = fds.pop().expect("two fds");
        let rx = fds.pop().expect("two fds");
        Ok((self.link)(tx, rx, self.payload))
    }
}
