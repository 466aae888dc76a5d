//! The one-CPU rows `ring-1cpu` and `futex-1cpu`: another row with both processes pinned to
//! the same CPU (the parent's first allowed CPU). Each side pins its thread when it opens its
//! half and restores its previous CPU mask when the row ends. They show what a wait strategy
//! costs when the peer can only run once the waiter gives the CPU up.

use std::sync::Arc;

use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::checksum::PayloadGen;
use crate::cpu::{PinGuard, first_allowed_cpu, online_cpus};
use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::report::Pattern;
use crate::ring_rows::RingRow;

/// Another row with both processes pinned to the same CPU (the parent's first allowed CPU).
#[derive(Debug, Clone)]
pub struct OneCpu {
    name: &'static str,
    description: &'static str,
    inner: Arc<dyn Mechanism>,
}

impl OneCpu {
    /// `name` runs `inner` with both processes on one CPU.
    pub fn new(
        name: &'static str,
        description: &'static str,
        inner: impl Mechanism + 'static,
    ) -> OneCpu {
        OneCpu {
            name,
            description,
            inner: Arc::new(inner),
        }
    }

    /// `ring-1cpu`: [`RingRow::default_strategy`] on one CPU.
    pub fn ring() -> OneCpu {
        OneCpu::new(
            "ring-1cpu",
            "the ring row (default wait strategy) with both processes pinned to the same CPU",
            RingRow::default_strategy(),
        )
    }

    /// `futex-1cpu`: the `futex` row on one CPU.
    pub fn futex() -> OneCpu {
        OneCpu::new(
            "futex-1cpu",
            "the futex row with both processes pinned to the same CPU",
            crate::shm_rows::WordRow::futex(),
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct OneCpuSpec {
    cpu: usize,
    inner: String,
}

impl Mechanism for OneCpu {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.description
    }

    fn unavailable(&self) -> Option<String> {
        if let Some(n) = online_cpus().filter(|&n| n < 2) {
            return Some(format!(
                "this machine has {n} CPU online: every row already runs on one CPU"
            ));
        }
        self.inner.unavailable()
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        self.inner.check_payload(payload)
    }

    fn patterns(&self) -> &[Pattern] {
        self.inner.patterns()
    }

    fn needs_flow_control(&self) -> bool {
        self.inner.needs_flow_control()
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let cpu = first_allowed_cpu().map_err(LinkError::Unsupported)?;
        let inner = self.inner.prepare(ctx)?;
        let spec = OneCpuSpec {
            cpu,
            inner: inner.spec,
        };
        Ok(Prepared {
            spec: serde_json::to_string(&spec).expect("spec serialises"),
            guard: inner.guard,
        })
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec: OneCpuSpec = serde_json::from_str(spec)
            .map_err(|e| LinkError::Failed(format!("bad one-CPU spec: {e}")))?;
        let pin = PinGuard::pin(spec.cpu).map_err(LinkError::Unsupported)?;
        let half = self.inner.open(&spec.inner, side, payload)?;
        Ok(Box::new(PinnedHalf { half, pin }))
    }
}

/// A half whose thread is pinned (the pin is dropped after the half).
struct PinnedHalf {
    half: Box<dyn HalfOpen>,
    pin: PinGuard,
}

impl HalfOpen for PinnedHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let PinnedHalf { half, pin } = *self;
        let link = half.connect(wait)?;
        Ok(Box::new(PinnedLink { link, _pin: pin }))
    }
}

/// A link whose thread stays pinned until the row ends (field order: the link is dropped
/// before the CPU mask is restored).
struct PinnedLink {
    link: Box<dyn Link>,
    _pin: PinGuard,
}

impl Link for PinnedLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        self.link.send(msg, wait)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        self.link.recv(buf, wait)
    }

    fn recv_with(
        &mut self,
        scratch: &mut Vec<u8>,
        wait: Wait,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), LinkError> {
        self.link.recv_with(scratch, wait, read)
    }

    fn send_generated(
        &mut self,
        template: &mut PayloadGen,
        seq: u64,
        wait: Wait,
    ) -> Result<(), LinkError> {
        self.link.send_generated(template, seq, wait)
    }

    fn forward(
        &mut self,
        wait: Wait,
        read: &mut dyn FnMut(&[u8]),
    ) -> Option<Result<bool, LinkError>> {
        self.link.forward(wait, read)
    }

    fn max_payload(&self) -> Option<usize> {
        self.link.max_payload()
    }
}
