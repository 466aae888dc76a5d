//! The rows a run may use: [`Registry::standard`] holds those of `ipcx bench`; other crates
//! build their own.

use std::sync::Arc;

use crate::mechanism::Mechanism;
use crate::{
    bridge_row, channel, fd_rows, one_cpu, report, ring_rows, rpc, selftest, shm_rows, signal_row,
};

/// The rows a run may use, in table order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    rows: Vec<Arc<dyn Mechanism>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The rows of `ipcx bench`: `limit` first, then the notification rows and pipes, every
    /// `ipcx::channel` endpoint kind, and the hidden `selftest`.
    pub fn standard() -> Registry {
        let mut r = Registry::new();
        r.add(shm_rows::WordRow::limit());
        r.add(shm_rows::WordRow::futex());
        r.add(ring_rows::RingRow::spin());
        r.add(ring_rows::RingRow::default_strategy());
        r.add(ring_rows::RingRow::loan());
        r.add(one_cpu::OneCpu::ring());
        r.add(one_cpu::OneCpu::futex());
        r.add(fd_rows::EventFdRow);
        r.add(signal_row::SignalRow);
        r.add(shm_rows::SemRow::new(shm_rows::SemKind::Posix));
        r.add(shm_rows::SemRow::new(shm_rows::SemKind::SysV));
        r.add(shm_rows::CondvarRow);
        r.add(fd_rows::PipeRow);
        for kind in channel::ChannelKind::ALL {
            r.add(channel::ChannelRow::new(kind));
        }
        r.add(bridge_row::BridgeRow::new());
        r.add(rpc::RpcRow::new(rpc::RpcTransport::Unix));
        r.add(rpc::RpcRow::with_codec(
            rpc::RpcTransport::Unix,
            ipcx::rpc::Codec::MsgPack,
        ));
        r.add(rpc::RpcRow::new(rpc::RpcTransport::Tcp));
        r.add(rpc::RpcRow::new(rpc::RpcTransport::Shm));
        r.add(rpc::RpcRow::with_codec(
            rpc::RpcTransport::Shm,
            ipcx::rpc::Codec::MsgPack,
        ));
        r.add(rpc::ShmLinkRow);
        r.add(selftest::SelfTest);
        r
    }

    /// Adds a row, or replaces the row of the same name in place (so a real implementation
    /// replaces its placeholder and keeps its position).
    pub fn add(&mut self, m: impl Mechanism + 'static) -> &mut Registry {
        self.add_arc(Arc::new(m))
    }

    /// [`Registry::add`] for a shared row.
    pub fn add_arc(&mut self, m: Arc<dyn Mechanism>) -> &mut Registry {
        match self.rows.iter_mut().find(|r| r.name() == m.name()) {
            Some(slot) => *slot = m,
            None => self.rows.push(m),
        }
        self
    }

    /// The row called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Mechanism>> {
        self.rows.iter().find(|r| r.name() == name).cloned()
    }

    /// Every row, hidden ones included.
    pub fn all(&self) -> &[Arc<dyn Mechanism>] {
        &self.rows
    }

    /// The names a user may type (hidden rows excluded).
    pub fn visible_names(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| !r.hidden())
            .map(|r| r.name())
            .collect()
    }

    /// The rows for `names` in table order (every visible row when `names` is empty), with the
    /// `limit` baseline always included. An unknown name is an error listing the valid ones.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<Arc<dyn Mechanism>>, String> {
        for n in names {
            if self.get(n).is_none() {
                return Err(format!(
                    "unknown mechanism {n:?}; valid mechanisms: {}",
                    self.visible_names().join(", ")
                ));
            }
        }
        Ok(self
            .rows
            .iter()
            .filter(|r| {
                if names.is_empty() {
                    !r.hidden()
                } else {
                    r.name() == report::BASELINE || names.iter().any(|n| n == r.name())
                }
            })
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_rows_in_order_with_the_baseline_always_included() {
        let r = Registry::standard();
        let names = r.visible_names();
        assert_eq!(names[0], "limit");
        for n in [
            "futex",
            "pipe",
            "eventfd",
            "signal",
            "posix-sem",
            "sysv-sem",
            "mutex-condvar",
            "fifo",
            "mq",
            "sysv-mq",
            "unix",
            "unix-dgram",
            "unix-seqpacket",
            "tcp",
            "udp",
            "shm",
            "ring-spin",
            "ring",
            "ring-loan",
            "ring-1cpu",
            "futex-1cpu",
            "bridge",
            "rpc-unix",
            "rpc-unix-msgpack",
            "rpc-shm",
            "rpc-shm-msgpack",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        assert!(!names.contains(&"selftest"));
        assert!(r.get("selftest").is_some());

        let picked: Vec<_> = r
            .resolve(&["udp".into(), "unix".into()])
            .unwrap()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        assert_eq!(picked, ["limit", "unix", "udp"]);

        let e = r.resolve(&["carrier-pigeon".into()]).unwrap_err();
        assert!(
            e.contains("carrier-pigeon") && e.contains("unix-seqpacket"),
            "{e}"
        );
    }

    #[test]
    fn a_real_row_replaces_its_placeholder_in_place() {
        let mut r = Registry::standard();
        let pos = r.all().iter().position(|m| m.name() == "futex").unwrap();
        r.add(crate::placeholder::Placeholder::new(
            "futex", "replaced", "nothing",
        ));
        assert_eq!(r.all()[pos].description(), "replaced");
        assert_eq!(r.all().len(), Registry::standard().all().len());
    }
}
