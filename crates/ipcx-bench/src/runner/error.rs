//! Why a run, or one measurement in it, did not produce figures.

use crate::mechanism::LinkError;

/// Why a run did not produce a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Ctrl-C (or the stop flag): the peer was stopped and the run's objects removed.
    #[error("interrupted: the peer was stopped and the run's objects removed")]
    Interrupted,
    /// A bad configuration (unknown row, unusable CPU).
    #[error("{0}")]
    Usage(String),
    /// The harness itself failed (the peer cannot start, the temp directory cannot be made).
    #[error("{0}")]
    Harness(String),
}

/// Why one measurement did not produce figures.
#[derive(Debug)]
pub(super) enum PhaseError {
    Interrupted,
    Skip(String),
    Failed(String),
    /// The peer is dead or out of step: it must be replaced.
    PeerLost(String),
}

impl From<LinkError> for PhaseError {
    fn from(e: LinkError) -> Self {
        if e.is_skip() {
            PhaseError::Skip(e.to_string())
        } else {
            PhaseError::Failed(e.to_string())
        }
    }
}
