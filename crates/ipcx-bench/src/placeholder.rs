//! Rows that are known but cannot run in this build: they are listed and shown as skipped
//! with a reason, so the table always has them. (Every row of [`crate::Registry::standard`]
//! is implemented now; other registries may still use placeholders.)

use crate::mechanism::{HalfOpen, LinkError, Mechanism, Prepared, RowContext, Side};

/// A row that is known but not implemented in this build.
#[derive(Debug, Clone)]
pub struct Placeholder {
    name: &'static str,
    description: &'static str,
    needs: &'static str,
}

impl Placeholder {
    /// A placeholder row; `needs` names what is missing (`the futex module`).
    pub const fn new(
        name: &'static str,
        description: &'static str,
        needs: &'static str,
    ) -> Placeholder {
        Placeholder {
            name,
            description,
            needs,
        }
    }

    fn reason(&self) -> String {
        format!("not available in this build yet (needs {})", self.needs)
    }
}

impl Mechanism for Placeholder {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.description
    }

    fn unavailable(&self) -> Option<String> {
        Some(self.reason())
    }

    fn prepare(&self, _ctx: &RowContext) -> Result<Prepared, LinkError> {
        Err(LinkError::Unsupported(self.reason()))
    }

    fn open(
        &self,
        _spec: &str,
        _side: Side,
        _payload: usize,
    ) -> Result<Box<dyn HalfOpen>, LinkError> {
        Err(LinkError::Unsupported(self.reason()))
    }
}
