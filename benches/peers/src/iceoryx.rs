//! `iceoryx2`: publish-subscribe over shared memory (crates.io `iceoryx2` 0.10), one service
//! per direction, the receiver busy-polling `receive()`: how iceoryx2 is meant to be used for
//! low latency, and how its own benchmark runs (but between two processes here).
//!
//! Payloads are `[u8]` slices of the row's size, copied into a loaned sample (the harness
//! hands the link a byte slice and checksums what comes out, so the payload is written and
//! read like every other row's). Publishers use `RetryUntilDelivered`, bounded by a
//! back-pressure handler so that a full subscriber buffer turns into a timeout the harness can
//! retry instead of a silent drop.
//!
//! iceoryx2 drops samples sent before the subscriber's first `receive()` (`send()` then
//! reports 0 recipients): `connect` therefore ends with a handshake, each side sending a
//! one-byte hello until it was delivered and receiving the other's. Hellos are skipped by
//! `recv` (every harness message has at least 8 bytes).

use std::time::{Duration, Instant};

use iceoryx2::port::BackpressureAction;
use iceoryx2::port::backpressure_strategy::BackpressureStrategy;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

/// Samples a subscriber may hold unread (the stream phase keeps this many in flight).
const BUFFER: usize = 8;

/// How long a full subscriber buffer may hold up one send before it is reported as a timeout.
const BACKPRESSURE_SLICE: Duration = Duration::from_millis(50);

/// Spin this long before yielding the CPU between polls.
const SPIN: Duration = Duration::from_micros(10);

type Svc = ipc::Service;

/// The iceoryx2 row.
#[derive(Debug, Default)]
pub struct Iceoryx2;

fn failed(what: &str, e: impl std::fmt::Debug) -> LinkError {
    LinkError::Failed(format!("iceoryx2 {what}: {e:?}"))
}

/// Node, both services' ports. Everything lives and dies together on the thread that drives
/// the link.
struct Ports {
    publisher: Option<Publisher<Svc, [u8], ()>>,
    subscriber: Subscriber<Svc, [u8], ()>,
    tx_service: iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, [u8], ()>,
    _rx_service: iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, [u8], ()>,
    _node: Node<Svc>,
    payload: usize,
}

/// A `Send` wrapper for the ports.
struct SendPorts(Ports);

// SAFETY: `ipc::Service` ports are single-threaded (not `Send`) because they share
// reference-counted state with their node and services, unsynchronised. A `SendPorts` owns the
// node, both services and every port made from them, and none of that state is shared with
// anything outside it, so moving the whole bundle to another thread moves every reference
// together; the harness creates, uses and drops a link on one thread at a time.
unsafe impl Send for SendPorts {}

fn service(
    node: &Node<Svc>,
    name: &str,
) -> Result<iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, [u8], ()>, LinkError>
{
    let sname: ServiceName = name.try_into().map_err(|e| failed("service name", e))?;
    node.service_builder(&sname)
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(BUFFER)
        .enable_safe_overflow(false)
        .open_or_create()
        .map_err(|e| failed("service", e))
}

impl Mechanism for Iceoryx2 {
    fn name(&self) -> &str {
        "iceoryx2"
    }
    fn description(&self) -> &str {
        "iceoryx2 0.10 publish-subscribe (one service per direction), busy-polling receive"
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(format!("ipcx-peers/{}", ctx.tag)))
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let (rx, tx) = match side {
            Side::Parent => (format!("{spec}/b2a"), format!("{spec}/a2b")),
            Side::Peer => (format!("{spec}/a2b"), format!("{spec}/b2a")),
        };
        let node = NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<Svc>()
            .map_err(|e| failed("node", e))?;
        let rx_service = service(&node, &rx)?;
        let tx_service = service(&node, &tx)?;
        let subscriber = rx_service
            .subscriber_builder()
            .buffer_size(BUFFER)
            .create()
            .map_err(|e| failed("subscriber", e))?;
        Ok(Box::new(SendPorts(Ports {
            publisher: None,
            subscriber,
            tx_service,
            _rx_service: rx_service,
            _node: node,
            payload,
        })))
    }
}

impl HalfOpen for SendPorts {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let mut p = self.0;
        let publisher = p
            .tx_service
            .publisher_builder()
            .initial_max_slice_len(p.payload.max(8))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .set_backpressure_handler(|info: &iceoryx2::port::BackpressureInfo| {
                if info.elapsed_time < BACKPRESSURE_SLICE {
                    BackpressureAction::Retry
                } else {
                    BackpressureAction::DiscardDataAndFail
                }
            })
            .create()
            .map_err(|e| failed("publisher", e))?;
        p.publisher = Some(publisher);
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => Instant::now() + Duration::from_secs(10),
        };
        // Handshake: keep sending a hello until one was delivered, and wait for the other's.
        let (mut delivered, mut got) = (false, false);
        while !(delivered && got) {
            if Instant::now() >= deadline {
                return Err(LinkError::Failed(format!(
                    "iceoryx2 handshake: {}",
                    if delivered {
                        "the peer's hello never came"
                    } else {
                        "no subscriber received the hello"
                    }
                )));
            }
            if !delivered {
                let publisher = p.publisher.as_ref().expect("set above");
                let s = publisher
                    .loan_slice_uninit(1)
                    .map_err(|e| failed("loan", e))?
                    .write_from_slice(&[0u8]);
                delivered = s.send().map_err(|e| failed("send", e))? > 0;
            }
            while let Some(s) = p.subscriber.receive().map_err(|e| failed("receive", e))? {
                if s.payload().len() == 1 {
                    got = true;
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(Box::new(SendPorts(p)))
    }
}

impl Link for SendPorts {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        let publisher = self.0.publisher.as_ref().expect("connected");
        let s = publisher
            .loan_slice_uninit(msg.len())
            .map_err(|e| failed("loan", e))?
            .write_from_slice(msg);
        match s.send() {
            Ok(0) => Err(LinkError::PeerGone(
                "iceoryx2: no subscriber is connected any more".into(),
            )),
            Ok(_) => Ok(()),
            // The back-pressure handler gave up: not delivered, the harness sends again.
            Err(iceoryx2::port::SendError::UnableToDeliver) => Err(LinkError::Timeout),
            Err(e) => Err(failed("send", e)),
        }
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let start = Instant::now();
        let deadline = match wait {
            Wait::Until(d) => Some(d),
            Wait::NoWait => Some(start),
            _ => None,
        };
        let mut polls: u32 = 0;
        loop {
            match self.0.subscriber.receive() {
                Ok(Some(s)) => {
                    let data = s.payload();
                    if data.len() == 1 {
                        continue; // a late hello from the handshake
                    }
                    buf.clear();
                    buf.extend_from_slice(data);
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) => return Err(failed("receive", e)),
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(64) {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(LinkError::Timeout);
                }
                if now - start > SPIN {
                    std::thread::yield_now();
                }
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// The iceoryx2 files in `/dev/shm` that a run created, removed when it ends: iceoryx2 keeps
/// a management segment per version there (`iox2_*_global_mgmt`) after its last node is
/// gone. Files that were there before the run (another iceoryx2 application's) are left alone.
#[derive(Debug)]
pub struct Leftovers {
    before: std::collections::HashSet<std::path::PathBuf>,
}

impl Leftovers {
    const DIR: &'static str = "/dev/shm";

    fn list() -> std::collections::HashSet<std::path::PathBuf> {
        std::fs::read_dir(Self::DIR)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("iox2_"))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Notes the iceoryx2 files present now.
    pub fn note() -> Leftovers {
        Leftovers {
            before: Self::list(),
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for path in Self::list() {
            let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
            if ours && !self.before.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
