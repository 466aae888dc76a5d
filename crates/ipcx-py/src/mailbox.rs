//! `ipcx.Mailbox`: many senders, many receivers, each message delivered once (a POSIX queue
//! `/NAME` or `mq:/NAME`, or the ring's work queue `shm:/NAME`).

use std::sync::Mutex;

use pyo3::prelude::*;

use ipcx::channel::Error;
use ipcx::pattern::mailbox;

use crate::blocking::{Try, deadline, wait_in_slices};
use crate::channel::{Bytes, Message, closed};
use crate::error::raise;
use crate::lock;

/// A named mailbox: many senders, many receivers, each message to one receiver.
#[pyclass(module = "ipcx", frozen)]
pub(crate) struct Mailbox {
    name: String,
    inner: Mutex<Option<mailbox::Mailbox>>,
}

fn not_yet(e: &Error) -> bool {
    matches!(e, Error::Timeout | Error::WouldBlock | Error::Full { .. })
}

#[pymethods]
impl Mailbox {
    /// Opens the mailbox `name`, creating it when missing (`create=False`: it must exist,
    /// else `ipcx.NotFound`). A queue is removed when the handle that created it closes, a
    /// ring when the last handle does.
    #[new]
    #[pyo3(signature = (name, *, create = true))]
    fn new(py: Python<'_>, name: &str, create: bool) -> PyResult<Mailbox> {
        let mb = py
            .detach(|| {
                if create {
                    mailbox::Mailbox::create(name)
                } else {
                    mailbox::Mailbox::open(name)
                }
            })
            .map_err(raise)?;
        Ok(Mailbox {
            name: name.to_owned(),
            inner: Mutex::new(Some(mb)),
        })
    }

    /// Sends one message (bytes or any buffer), waiting at most `timeout` seconds for room.
    /// `priority`: higher is received first (queues; a ring mailbox takes only 0).
    #[pyo3(signature = (data, *, priority = 0, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        priority: u32,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let buf = Bytes::borrow(data)?;
        let msg = buf.as_slice();
        let deadline = deadline(timeout)?;
        let r = wait_in_slices(py, deadline, Try::First, not_yet, |wait| {
            let g = lock(&self.inner);
            let mb = g.as_ref().ok_or_else(|| self.closed_error())?;
            mb.send_wait(msg, priority, wait)
        })?;
        buf.release(py);
        r.map_err(raise)
    }

    /// Receives one message (`data`, `priority`), waiting at most `timeout` seconds.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Message> {
        let deadline = deadline(timeout)?;
        let r = wait_in_slices(py, deadline, Try::First, not_yet, |wait| {
            let g = lock(&self.inner);
            let mb = g.as_ref().ok_or_else(|| self.closed_error())?;
            mb.recv_wait(wait)
        })?;
        let (data, priority) = r.map_err(|e| match e {
            Error::WouldBlock | Error::Full { .. } => raise(Error::Timeout),
            e => raise(e),
        })?;
        Ok(Message::new(py, &data, priority))
    }

    /// How many messages wait (queues; a ring mailbox cannot count them).
    fn __len__(&self) -> PyResult<usize> {
        let g = lock(&self.inner);
        let mb = g.as_ref().ok_or_else(|| closed(&self.describe()))?;
        mb.len().map_err(raise)
    }

    /// The largest message the mailbox takes.
    #[getter]
    fn max_message_len(&self) -> PyResult<usize> {
        let g = lock(&self.inner);
        let mb = g.as_ref().ok_or_else(|| closed(&self.describe()))?;
        Ok(mb.max_message_len())
    }

    /// The mailbox's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Closes this handle (removing the mailbox if it created it). Closing twice does
    /// nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = lock(&self.inner).take();
        py.detach(|| drop(taken));
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("ipcx.Mailbox({:?})", self.name)
    }
}

crate::closing!(Mailbox);

impl Mailbox {
    fn describe(&self) -> String {
        format!("Mailbox({})", self.name)
    }

    fn closed_error(&self) -> Error {
        Error::Closed {
            what: self.describe(),
        }
    }
}
