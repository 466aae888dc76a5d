//! `ipcx.Sender`, `ipcx.Receiver` and `ipcx.Message`: any endpoint the CLI takes, opened as
//! `ipcx send` and `ipcx recv` open it (the library's channel layer, with the same options).

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyBufferError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use ipcx::channel::{Endpoint, Error, MessageReceiver, MessageSender, Options};

use crate::blocking::{Try, deadline, wait_in_slices};
use crate::error::{Kind, exception, raise};
use crate::lock;

/// The endpoint `address` parsed, or `ipcx.InvalidName`.
fn parse(address: &str) -> PyResult<Endpoint> {
    Endpoint::parse(address).map_err(raise)
}

/// The error of a call on a closed handle (`ipcx.PeerGone`, as the library reports a closed
/// end).
pub(crate) fn closed(what: &str) -> PyErr {
    exception(Kind::PeerGone, format!("{what} is closed"))
}

/// The bytes of a message to send, borrowed where they lie: a `bytes` object's own storage,
/// or the buffer any other object exports (`bytearray`, `memoryview`, a numpy array...),
/// which its exporter keeps alive and unmoved until [`Bytes::release`]. Only C-contiguous
/// buffers are taken (a strided view has no single run of bytes to send).
pub(crate) enum Bytes<'py> {
    Immutable(Bound<'py, PyBytes>),
    Buffer(PyUntypedBuffer),
}

impl<'py> Bytes<'py> {
    pub(crate) fn borrow(obj: &Bound<'py, PyAny>) -> PyResult<Bytes<'py>> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Bytes::Immutable(b.clone()));
        }
        let buf = PyUntypedBuffer::get(obj)?;
        if !buf.is_c_contiguous() {
            return Err(PyBufferError::new_err(
                "the buffer is not contiguous: send a contiguous copy (numpy.ascontiguousarray, bytes(...))",
            ));
        }
        Ok(Bytes::Buffer(buf))
    }

    /// The bytes as a slice.
    ///
    /// A buffer must not be written by another thread while the slice is used (the GIL is
    /// released during sends): resizing is refused by Python itself while the buffer is
    /// exported, and writing meanwhile is the caller's race, as with any C extension that
    /// sends from a buffer without the GIL.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Immutable(b) => b.as_bytes(),
            Bytes::Buffer(buf) => {
                let len = buf.len_bytes();
                if len == 0 {
                    return &[];
                }
                // SAFETY: the exporter guarantees `len_bytes` readable bytes at `buf_ptr` for
                // as long as the export (`buf`, which the slice borrows) lives, contiguous
                // (checked in `borrow`); the bytes are only read.
                unsafe { std::slice::from_raw_parts(buf.buf_ptr().cast::<u8>(), len) }
            }
        }
    }

    /// Ends the borrow (with the GIL, which `PyUntypedBuffer`'s drop would take again).
    pub(crate) fn release(self, py: Python<'_>) {
        if let Bytes::Buffer(buf) = self {
            buf.release(py);
        }
    }
}

/// A received message: its bytes and what the mechanism tells about it.
#[pyclass(module = "ipcx", frozen, get_all)]
pub(crate) struct Message {
    /// The payload.
    data: Py<PyBytes>,
    /// The sender's process id (Unix sockets: verified by the kernel), or None.
    pid: Option<i32>,
    /// The sender's user id, or None.
    uid: Option<u32>,
    /// The sender's group id, or None.
    gid: Option<u32>,
    /// POSIX mq: the message's priority, or None.
    priority: Option<u32>,
    /// System V mq: the message's type, or None.
    r#type: Option<i64>,
    /// The key the message was published under (key-addressed transports), or None.
    key: Option<String>,
    /// The sender's address (TCP, UDP, bound Unix datagram sockets), or None.
    peer: Option<String>,
}

impl Message {
    /// A message with only bytes and, from a queue, a priority.
    pub(crate) fn new(py: Python<'_>, data: &[u8], priority: u32) -> Message {
        Message {
            data: PyBytes::new(py, data).unbind(),
            pid: None,
            uid: None,
            gid: None,
            priority: Some(priority),
            r#type: None,
            key: None,
            peer: None,
        }
    }
}

#[pymethods]
impl Message {
    fn __bytes__(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.data.bind(py).as_bytes().len()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut s = format!("Message({}", self.data.bind(py).repr()?);
        let fields = [
            ("pid", self.pid.map(|v| v.to_string())),
            ("uid", self.uid.map(|v| v.to_string())),
            ("gid", self.gid.map(|v| v.to_string())),
            ("priority", self.priority.map(|v| v.to_string())),
            ("type", self.r#type.map(|v| v.to_string())),
            ("key", self.key.as_ref().map(|v| format!("{v:?}"))),
            ("peer", self.peer.as_ref().map(|v| format!("{v:?}"))),
        ];
        for (name, v) in fields {
            if let Some(v) = v {
                s.push_str(&format!(", {name}={v}"));
            }
        }
        s.push(')');
        Ok(s)
    }
}

/// The sending half of an endpoint, opened as `ipcx send` opens it: connects to a listener,
/// opens an existing queue or FIFO (`create=True` creates a missing one, like `--create`).
#[pyclass(module = "ipcx")]
pub(crate) struct Sender {
    endpoint: Endpoint,
    options: Options,
    /// The sender, and for POSIX queues one more per other priority used.
    state: Mutex<Option<Senders>>,
}

struct Senders {
    main: Box<dyn MessageSender>,
    by_priority: HashMap<u32, Box<dyn MessageSender>>,
}

#[pymethods]
impl Sender {
    #[new]
    #[pyo3(signature = (endpoint, *, create = false, mode = 0o600, priority = 0, r#type = None, timeout = None))]
    fn new(
        py: Python<'_>,
        endpoint: &str,
        create: bool,
        mode: u32,
        priority: u32,
        r#type: Option<i64>,
        timeout: Option<f64>,
    ) -> PyResult<Sender> {
        let ep = parse(endpoint)?;
        let mut opts = Options::new().create(create).mode(mode).priority(priority);
        if let Some(t) = r#type {
            opts = opts.mtype(t);
        }
        if let Some(t) = timeout {
            deadline(Some(t))?;
            opts = opts.connect_timeout(std::time::Duration::from_secs_f64(t));
        }
        let main = py.detach(|| ep.sender(&opts)).map_err(raise)?;
        Ok(Sender {
            endpoint: ep,
            options: opts,
            state: Mutex::new(Some(Senders {
                main,
                by_priority: HashMap::new(),
            })),
        })
    }

    /// Sends one message: `data` is bytes or any object with the buffer protocol, sent from
    /// where it lies (no copy on the Python side). Blocks while the endpoint has no room, at
    /// most `timeout` seconds (then `ipcx.Timeout`). `priority` (POSIX mq only) overrides the
    /// sender's priority for this message.
    #[pyo3(signature = (data, *, priority = None, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        priority: Option<u32>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let buf = Bytes::borrow(data)?;
        let msg = buf.as_slice();
        let deadline = deadline(timeout)?;
        let priority =
            priority.filter(|&p| p != self.options.priority && self.endpoint.scheme() == "mq");
        let not_yet =
            |e: &Error| matches!(e, Error::Timeout | Error::WouldBlock | Error::Full { .. });
        let r = wait_in_slices(py, deadline, Try::Wait, not_yet, |wait| {
            let mut guard = lock(&self.state);
            let Some(s) = guard.as_mut() else {
                return Err(Error::Closed {
                    what: format!("Sender({})", self.endpoint),
                });
            };
            let tx = match priority {
                None => &mut s.main,
                Some(p) => match s.by_priority.entry(p) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(self.endpoint.sender(&self.options.clone().priority(p))?)
                    }
                },
            };
            tx.send_wait(msg, wait)
        })?;
        buf.release(py);
        r.map_err(|e| self.error(e))
    }

    /// Reports messages that were accepted but can no longer reach a receiver (a POSIX queue
    /// takes messages while it has room even after its receiver removed it), then closes the
    /// sender. Closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = lock(&self.state).take();
        let Some(mut s) = taken else {
            return Ok(());
        };
        py.detach(|| {
            let mut r = s.main.finish();
            for tx in s.by_priority.values_mut() {
                r = r.and(tx.finish());
            }
            drop(s);
            r
        })
        .map_err(|e| self.error(e))
    }

    /// The endpoint, as given.
    #[getter]
    fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    fn __repr__(&self) -> String {
        format!("ipcx.Sender({:?})", self.endpoint.to_string())
    }
}

crate::closing!(Sender);

impl Sender {
    fn error(&self, e: Error) -> PyErr {
        endpoint_error(&self.endpoint, e)
    }
}

/// `e` raised with the endpoint named, as the CLI names it.
pub(crate) fn endpoint_error(ep: &Endpoint, e: Error) -> PyErr {
    let kind = crate::error::ToPy::kind(&e);
    let msg = e.to_string();
    if msg.contains(&ep.to_string()) {
        exception(kind, msg)
    } else {
        exception(kind, format!("{ep}: {msg}"))
    }
}

/// The receiving half of an endpoint, opened as `ipcx recv` opens it: binds and listens
/// (serving every sender that connects), or creates the queue or FIFO when missing (and
/// removes what it created when closed).
#[pyclass(module = "ipcx")]
pub(crate) struct Receiver {
    endpoint: Endpoint,
    state: Mutex<Option<Box<dyn MessageReceiver>>>,
}

#[pymethods]
impl Receiver {
    #[new]
    #[pyo3(signature = (endpoint, *, mode = 0o600, r#type = None))]
    fn new(py: Python<'_>, endpoint: &str, mode: u32, r#type: Option<i64>) -> PyResult<Receiver> {
        let ep = parse(endpoint)?;
        let mut opts = Options::new().mode(mode);
        if let Some(t) = r#type {
            opts = opts.mtype(t);
        }
        let rx = py
            .detach(|| ep.receiver(&opts))
            .map_err(|e| endpoint_error(&ep, e))?;
        Ok(Receiver {
            endpoint: ep,
            state: Mutex::new(Some(rx)),
        })
    }

    /// Receives the next message, waiting at most `timeout` seconds (None: for ever) and
    /// raising `ipcx.Timeout` then. A misbehaving peer of a receiver serving many (a frame too
    /// large, a sender dropped) is skipped: the call goes on waiting for the others.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Message> {
        let deadline = deadline(timeout)?;
        let skip = |e: &Error| e.is_recoverable();
        let r = wait_in_slices(py, deadline, Try::First, skip, |wait| {
            let mut guard = lock(&self.state);
            let Some(rx) = guard.as_mut() else {
                return Err(Error::Closed {
                    what: format!("Receiver({})", self.endpoint),
                });
            };
            rx.recv_wait(wait)
        })?;
        let m = r.map_err(|e| match e {
            // The deadline passed while a peer was being dropped: that is a timeout too.
            e if e.is_recoverable() => {
                exception(Kind::Timeout, format!("{}: timed out", self.endpoint))
            }
            e => endpoint_error(&self.endpoint, e),
        })?;
        Ok(Message {
            data: PyBytes::new(py, &m.data).unbind(),
            pid: m.meta.pid,
            uid: m.meta.uid,
            gid: m.meta.gid,
            priority: m.meta.priority,
            r#type: m.meta.mtype,
            key: None,
            peer: m.meta.peer,
        })
    }

    /// Closes the receiver: removes the queue or FIFO it created, stops listening. Closing
    /// twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = lock(&self.state).take();
        py.detach(|| drop(taken));
        Ok(())
    }

    /// The endpoint, as given.
    #[getter]
    fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next message; the iteration ends when the peer is gone (for endpoints whose
    /// receiver ends with its sender) or the receiver is closed.
    fn __next__(&self, py: Python<'_>) -> PyResult<Message> {
        match self.recv(py, None) {
            Err(e) if is_end(py, &e) => Err(PyStopIteration::new_err(())),
            r => r,
        }
    }

    fn __repr__(&self) -> String {
        format!("ipcx.Receiver({:?})", self.endpoint.to_string())
    }
}

crate::closing!(Receiver);

/// Whether `e` ends an iteration: the peer is gone, or the handle was closed (both
/// `ipcx.PeerGone`).
pub(crate) fn is_end(py: Python<'_>, e: &PyErr) -> bool {
    py.import("ipcx._errors")
        .and_then(|m| m.getattr("PeerGone"))
        .is_ok_and(|c| e.get_type(py).is_subclass(&c).unwrap_or(false))
}
