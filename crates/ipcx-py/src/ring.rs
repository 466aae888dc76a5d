//! The zero-copy ring from Python: `ipcx.Publisher`, `ipcx.Subscriber`, and the `Loan` and
//! `Sample` objects that expose the ring's own bytes through the buffer protocol.
//!
//! # Views of the ring, and when they end
//! A `Sample` is a message read in place; a `Loan` is room being written in place. Both give
//! out views of the ring's memory (`memoryview(sample)`, `numpy.frombuffer(sample)`, the
//! memoryview of `with publisher.loan(n) as buf`), and Python cannot take a view back once
//! given. So, as `mmap.close()` and `memoryview.release()` do, ipcx counts the views given out
//! (`__getbuffer__` / `__releasebuffer__`) and **refuses** to give the message back to the ring
//! while any is alive: `sample.release()` (and the end of its `with` block, and the next
//! `recv`) raises `BufferError` naming how many views remain; delete them (`del array`) or copy
//! what you keep (`bytes(sample)`, `array.copy()`). A released sample refuses new views
//! (`BufferError`). No view can ever point into ring memory that was handed back, so a
//! released message can never be read after the publisher reused its room.
//!
//! One sample per subscriber (and one loan per publisher) is out at a time, as in Rust: the
//! next `recv` gives the previous sample back first (or raises `BufferError` while views of it
//! remain); a `Sample` object that is garbage-collected gives its message back too.

use std::ffi::{c_int, c_void};
use std::sync::Mutex;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use ipcx::ring::{self, Options, WaitStrategy};

use crate::blocking::{Try, deadline, wait_in_slices};
use crate::channel::{Bytes, closed};
use crate::error::raise;
use crate::lent::Lent;
use crate::lock;

/// The ring's name from `name` or `shm:name`.
fn ring_name(name: &str) -> &str {
    name.strip_prefix("shm:").unwrap_or(name)
}

/// The ring options of the constructors' keywords. `wait`: how a blocked call waits,
/// `"spin-then-sleep"` (default: spin a few microseconds, yield, then sleep on a futex),
/// `"spin"` (busy-poll: lowest latency, one CPU busy) or `"block"` (sleep at once).
fn ring_options(
    capacity: Option<usize>,
    max_message: Option<usize>,
    wait: &str,
) -> PyResult<Options> {
    let strategy = match wait {
        "spin-then-sleep" => WaitStrategy::SpinThenSleep,
        "spin" => WaitStrategy::Spin,
        "block" => WaitStrategy::Block,
        other => {
            return Err(PyValueError::new_err(format!(
                "wait must be \"spin-then-sleep\", \"spin\" or \"block\", not {other:?}"
            )));
        }
    };
    let mut o = Options::new().strategy(strategy);
    if let Some(c) = capacity {
        o = o.capacity(c);
    }
    if let Some(m) = max_message {
        o = o.max_message(m);
    }
    Ok(o)
}

/// Why a call on a ring handle failed before or instead of the ring's own error.
enum Failed {
    Ring(ring::RingError),
    /// Views of the sample or loan that is out are alive (how many).
    Exported(usize),
    /// A loan is out (the publisher cannot send past it).
    LoanOut,
    Closed,
}

impl Failed {
    /// Nothing happened yet: a timeout, nothing to receive, no room.
    fn not_yet(&self) -> bool {
        matches!(
            self,
            Failed::Ring(ring::RingError::Timeout | ring::RingError::Empty | ring::RingError::Full)
        )
    }

    fn into_py(self, what: &str) -> PyErr {
        match self {
            Failed::Ring(e) => raise(e),
            Failed::Exported(n) => exported(n, what),
            Failed::LoanOut => PyBufferError::new_err(format!(
                "a loan of {what} is out: send or discard it (end its with block) first"
            )),
            Failed::Closed => closed(what),
        }
    }
}

fn exported(n: usize, what: &str) -> PyErr {
    PyBufferError::new_err(format!(
        "{n} view(s) of the current message of {what} still exist (memoryview, numpy array): \
         delete them, or copy what you keep (bytes(sample), array.copy()), before giving the \
         message back to the ring"
    ))
}

fn released() -> PyErr {
    PyBufferError::new_err(
        "this message was given back to the ring (released, or replaced by the next): it can no \
         longer be read in place",
    )
}

/// Fills `view` with `len` bytes at `ptr`, owned by `owner` (a new reference is stored).
///
/// # Safety
/// `view` is the `Py_buffer` Python passed to `__getbuffer__`; the bytes stay valid (and, when
/// `writable`, writable by the viewer) until `owner`'s `__releasebuffer__` runs for this view.
unsafe fn fill_view(
    view: *mut ffi::Py_buffer,
    flags: c_int,
    ptr: *mut u8,
    len: usize,
    writable: bool,
    owner: Bound<'_, PyAny>,
) -> PyResult<()> {
    if view.is_null() {
        return Err(PyBufferError::new_err("no Py_buffer to fill"));
    }
    if !writable && (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
        return Err(PyBufferError::new_err(
            "a received sample is read-only (it lies in the ring, shared with other subscribers)",
        ));
    }
    let len = isize::try_from(len).map_err(|_| PyBufferError::new_err("message too large"))?;
    // SAFETY: `view` is a valid, writable `Py_buffer` (the caller's contract: CPython hands it
    // to `__getbuffer__`); every field is set before returning. `shape` and `strides` point
    // into the view itself, which CPython keeps alive with the export; `format` is a static
    // string that nobody frees.
    unsafe {
        (*view).obj = owner.into_ptr();
        (*view).buf = ptr.cast::<c_void>();
        (*view).len = len;
        (*view).readonly = c_int::from(!writable);
        (*view).itemsize = 1;
        (*view).format = if (flags & ffi::PyBUF_FORMAT) == ffi::PyBUF_FORMAT {
            c"B".as_ptr().cast_mut()
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if (flags & ffi::PyBUF_ND) == ffi::PyBUF_ND {
            &raw mut (*view).len
        } else {
            std::ptr::null_mut()
        };
        (*view).strides = if (flags & ffi::PyBUF_STRIDES) == ffi::PyBUF_STRIDES {
            &raw mut (*view).itemsize
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = std::ptr::null_mut();
    }
    Ok(())
}

/// A ring handle's state: the handle, the sample (or loan) that is out, the views of it.
struct State<H, S> {
    lent: Lent<H, S>,
    /// Counts samples (loans) given out: a `Sample` (`Loan`) object reaches the ring only
    /// while it is the current one.
    generation: u64,
    /// Views of the current one given out and not yet released.
    exports: usize,
}

impl<H: 'static, S> State<H, S> {
    fn new(handle: H) -> Mutex<Option<State<H, S>>> {
        Mutex::new(Some(State {
            lent: Lent::new(handle),
            generation: 0,
            exports: 0,
        }))
    }
}

/// Runs `f` on `state` when the sample (loan) of `generation` is the one out; `gone()`
/// otherwise.
fn with_current<H: 'static, S, R>(
    state: &Mutex<Option<State<H, S>>>,
    generation: u64,
    gone: fn() -> PyErr,
    f: impl FnOnce(&mut State<H, S>) -> PyResult<R>,
) -> PyResult<R> {
    let mut g = lock(state);
    match g.as_mut() {
        Some(st) if st.generation == generation && st.lent.out().is_some() => f(st),
        _ => Err(gone()),
    }
}

/// Closes a handle (dropping what is out): `BufferError` while views of it remain.
fn close<H: Send, S: Send>(
    py: Python<'_>,
    state: &Mutex<Option<State<H, S>>>,
    what: &str,
) -> PyResult<()> {
    let taken = {
        let mut g = lock(state);
        if let Some(st) = g.as_ref()
            && st.exports > 0
        {
            return Err(exported(st.exports, what));
        }
        g.take()
    };
    py.detach(|| drop(taken));
    Ok(())
}

/// Counts a view of the sample (loan) of `generation` as released.
fn view_released<H, S>(state: &Mutex<Option<State<H, S>>>, generation: u64) {
    let mut g = lock(state);
    if let Some(st) = g.as_mut()
        && st.generation == generation
    {
        st.exports = st.exports.saturating_sub(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Subscriber and Sample

type RxState = State<ring::Subscriber, ring::Sample<'static>>;

/// A subscriber of the zero-copy ring `shm:NAME`: receives every message published after it
/// attached, in place.
#[pyclass(module = "ipcx", frozen)]
pub(crate) struct Subscriber {
    name: String,
    state: Mutex<Option<RxState>>,
}

#[pymethods]
impl Subscriber {
    #[new]
    #[pyo3(signature = (name, *, capacity = None, max_message = None, wait = "spin-then-sleep"))]
    fn new(
        py: Python<'_>,
        name: &str,
        capacity: Option<usize>,
        max_message: Option<usize>,
        wait: &str,
    ) -> PyResult<Subscriber> {
        let name = ring_name(name).to_owned();
        let opts = ring_options(capacity, max_message, wait)?;
        let sub = py
            .detach(|| ring::Subscriber::create(&name, &opts))
            .map_err(raise)?;
        Ok(Subscriber {
            name,
            state: State::new(sub),
        })
    }

    /// Receives the next message in place, waiting at most `timeout` seconds (None: for ever;
    /// then `ipcx.Timeout`). Gives the previous sample back first (`BufferError` while views
    /// of it remain). `ipcx.PeerGone` when the publisher left and everything was read.
    #[pyo3(signature = (timeout = None))]
    fn recv(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Sample> {
        let py = slf.py();
        let this = slf.get();
        let deadline = deadline(timeout)?;
        let r = wait_in_slices(py, deadline, Try::First, Failed::not_yet, |wait| {
            let mut g = lock(&this.state);
            let st = g.as_mut().ok_or(Failed::Closed)?;
            if st.exports > 0 {
                return Err(Failed::Exported(st.exports));
            }
            // SAFETY: the reference goes straight into `recv_wait`, whose sample keeps it and
            // is stored by `lend` (nothing else holds it).
            unsafe { st.lent.lend(|sub| sub.recv_wait(wait)) }.map_err(Failed::Ring)?;
            st.generation += 1;
            let s = st.lent.out().expect("just lent");
            Ok((st.generation, s.len(), s.missed()))
        })?;
        let (generation, len, missed) = r.map_err(|e| e.into_py(&this.describe()))?;
        Ok(Sample {
            sub: slf.clone().unbind(),
            generation,
            len,
            missed,
        })
    }

    /// Gives the current sample back and closes the subscriber (the ring is removed when its
    /// creator leaves last). `BufferError` while views of the current sample remain.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        close(py, &self.state, &self.describe())
    }

    /// The ring's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next sample; the iteration ends when the publisher is gone (and everything was
    /// read) or the subscriber is closed.
    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<Sample>> {
        match Subscriber::recv(slf, None) {
            Ok(s) => Ok(Some(s)),
            Err(e) if crate::channel::is_end(slf.py(), &e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn __repr__(&self) -> String {
        format!("ipcx.Subscriber({:?})", self.name)
    }
}

crate::closing!(Subscriber);

impl Subscriber {
    fn describe(&self) -> String {
        format!("Subscriber(shm:{})", self.name)
    }
}

/// A received message, in place in the ring: `memoryview(sample)`, `numpy.frombuffer(sample,
/// dtype)` and `bytes(sample)` read it without (or with one) copy. Given back to the ring by
/// `release()`, the end of its `with` block, the subscriber's next `recv`, or when collected.
#[pyclass(module = "ipcx", frozen)]
pub(crate) struct Sample {
    sub: Py<Subscriber>,
    generation: u64,
    len: usize,
    /// Messages this subscriber missed before this one (overwrite rings only; else 0).
    #[pyo3(get)]
    missed: u64,
}

impl Sample {
    /// Runs `f` on the subscriber's state when this sample is the one out.
    fn with_current<R>(&self, f: impl FnOnce(&mut RxState) -> PyResult<R>) -> PyResult<R> {
        with_current(&self.sub.get().state, self.generation, released, f)
    }

    /// Gives the message back; `BufferError` while views remain. Giving back a sample that
    /// is no longer out does nothing. Needs no GIL (it also runs when the object is freed).
    fn give_back(&self) -> PyResult<()> {
        let sub = self.sub.get();
        let mut g = lock(&sub.state);
        match g.as_mut() {
            Some(st) if st.generation == self.generation && st.lent.out().is_some() => {
                if st.exports > 0 {
                    return Err(exported(st.exports, &sub.describe()));
                }
                drop(st.lent.give_back());
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn is_released(&self) -> bool {
        self.with_current(|_| Ok(())).is_err()
    }
}

#[pymethods]
impl Sample {
    /// Gives the message back to the ring. `BufferError` while views of it remain; releasing
    /// twice does nothing.
    fn release(&self) -> PyResult<()> {
        self.give_back()
    }

    /// Whether the message was given back (it can no longer be read).
    #[getter]
    fn released(&self) -> bool {
        self.is_released()
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type, _exc, _tb))]
    fn __exit__(
        &self,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let r = self.give_back();
        // An exception already on its way out wins; the message is given back when the last
        // view goes (the views keep this object alive, its collection gives it back).
        if exc_type.is_none() {
            r?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.is_released() { ", released" } else { "" };
        format!("ipcx.Sample(len={}{state})", self.len)
    }

    /// Exports the message's bytes in place (read-only).
    ///
    /// # Safety
    /// Called by CPython with a valid `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        this.with_current(|st| {
            let s = st.lent.out().expect("current");
            let (ptr, len) = (s.as_ptr().cast_mut(), s.len());
            // SAFETY: the bytes lie in the ring's mapping and stay there, unchanged, while the
            // sample is out; it is not given back while `exports` is above zero, and this
            // export is counted below and uncounted in `__releasebuffer__`. The view is
            // read-only (writable requests are refused).
            unsafe { fill_view(view, flags, ptr, len, false, slf.clone().into_any())? };
            st.exports += 1;
            Ok(())
        })
    }

    /// Counts a view as gone.
    ///
    /// # Safety
    /// Called by CPython for a view this object filled.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        view_released(&self.sub.get().state, self.generation);
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        // Views keep this object alive, so none is left: give the message back if it is
        // still the one out.
        let _ = self.give_back();
    }
}

// ---------------------------------------------------------------------------------------------
// Publisher and Loan

type TxState = State<ring::Publisher, ring::SampleMut<'static>>;

/// The publisher of the zero-copy ring `shm:NAME` (one per ring); opens the ring or creates
/// it.
#[pyclass(module = "ipcx", frozen)]
pub(crate) struct Publisher {
    name: String,
    state: Mutex<Option<TxState>>,
}

#[pymethods]
impl Publisher {
    #[new]
    #[pyo3(signature = (name, *, capacity = None, max_message = None, wait = "spin-then-sleep"))]
    fn new(
        py: Python<'_>,
        name: &str,
        capacity: Option<usize>,
        max_message: Option<usize>,
        wait: &str,
    ) -> PyResult<Publisher> {
        let name = ring_name(name).to_owned();
        let opts = ring_options(capacity, max_message, wait)?;
        let publ = py
            .detach(|| ring::Publisher::create(&name, &opts))
            .map_err(raise)?;
        Ok(Publisher {
            name,
            state: State::new(publ),
        })
    }

    /// Loans `n` writable bytes inside the ring, waiting at most `timeout` seconds for room.
    /// Use it as `with publisher.loan(n) as buf:`: `buf` is a writable memoryview of the
    /// ring's own bytes, published when the block ends and discarded if it raises.
    #[pyo3(signature = (n, *, timeout = None))]
    fn loan(slf: &Bound<'_, Self>, n: usize, timeout: Option<f64>) -> PyResult<Loan> {
        let py = slf.py();
        let this = slf.get();
        let deadline = deadline(timeout)?;
        let r = wait_in_slices(py, deadline, Try::First, Failed::not_yet, |wait| {
            let mut g = lock(&this.state);
            let st = g.as_mut().ok_or(Failed::Closed)?;
            if st.lent.out().is_some() {
                return Err(Failed::LoanOut);
            }
            // SAFETY: the reference goes straight into `loan_wait`, whose loan keeps it and is
            // stored by `lend` (nothing else holds it).
            unsafe { st.lent.lend(|p| p.loan_wait(n, wait)) }.map_err(Failed::Ring)?;
            st.generation += 1;
            Ok(st.generation)
        })?;
        let generation = r.map_err(|e| e.into_py(&this.describe()))?;
        Ok(Loan {
            publ: slf.clone().unbind(),
            generation,
            len: n,
            view: Mutex::new(None),
        })
    }

    /// Publishes a copy of `data` (bytes or any buffer), waiting at most `timeout` seconds
    /// for room.
    #[pyo3(signature = (data, *, timeout = None))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let buf = Bytes::borrow(data)?;
        let msg = buf.as_slice();
        let deadline = deadline(timeout)?;
        let r = wait_in_slices(py, deadline, Try::First, Failed::not_yet, |wait| {
            let mut g = lock(&self.state);
            let st = g.as_mut().ok_or(Failed::Closed)?;
            let publ = st.lent.handle().ok_or(Failed::LoanOut)?;
            publ.send_wait(msg, wait).map_err(Failed::Ring)
        })?;
        buf.release(py);
        r.map_err(|e| e.into_py(&self.describe()))
    }

    /// How many subscribers are attached now.
    #[getter]
    fn subscribers(&self) -> PyResult<usize> {
        let mut g = lock(&self.state);
        let st = g.as_mut().ok_or_else(|| closed(&self.describe()))?;
        match st.lent.handle() {
            Some(p) => Ok(p.subscribers()),
            None => Err(Failed::LoanOut.into_py(&self.describe())),
        }
    }

    /// The largest message the ring takes.
    #[getter]
    fn max_message_len(&self) -> PyResult<usize> {
        let mut g = lock(&self.state);
        let st = g.as_mut().ok_or_else(|| closed(&self.describe()))?;
        match st.lent.handle() {
            Some(p) => Ok(p.max_message_len()),
            None => Err(Failed::LoanOut.into_py(&self.describe())),
        }
    }

    /// The ring's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Closes the publisher (discarding a loan that is out). `BufferError` while views of the
    /// loan remain.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        close(py, &self.state, &self.describe())
    }

    fn __repr__(&self) -> String {
        format!("ipcx.Publisher({:?})", self.name)
    }
}

crate::closing!(Publisher);

impl Publisher {
    fn describe(&self) -> String {
        format!("Publisher(shm:{})", self.name)
    }
}

/// Room loaned inside the ring. `with publisher.loan(n) as buf:` gives a writable memoryview
/// of it, published when the block ends (discarded on an exception); or call `send()` /
/// `discard()` yourself after writing through `memoryview(loan)`.
#[pyclass(module = "ipcx", frozen)]
pub(crate) struct Loan {
    publ: Py<Publisher>,
    generation: u64,
    len: usize,
    /// The memoryview `__enter__` gave out (released when the block ends).
    view: Mutex<Option<Py<PyAny>>>,
}

impl Loan {
    fn with_current<R>(&self, f: impl FnOnce(&mut TxState) -> PyResult<R>) -> PyResult<R> {
        let gone = || {
            PyBufferError::new_err("this loan was sent or discarded: it can no longer be written")
        };
        with_current(&self.publ.get().state, self.generation, gone, f)
    }

    /// Releases the memoryview `__enter__` gave out (`BufferError` when views of it remain).
    fn release_view(&self, py: Python<'_>) -> PyResult<()> {
        let view = lock(&self.view).take();
        if let Some(v) = view
            && let Err(e) = v.bind(py).call_method0("release")
        {
            *lock(&self.view) = Some(v);
            return Err(e);
        }
        Ok(())
    }

    /// Sends the first `n` bytes (`None`: all), or discards the loan (`n` ignored).
    fn finish(&self, py: Python<'_>, publish: bool, n: Option<usize>) -> PyResult<()> {
        self.release_view(py)?;
        let what = self.publ.bind(py).get().describe();
        self.with_current(|st| {
            if st.exports > 0 {
                return Err(exported(st.exports, &what));
            }
            let s = st.lent.give_back().expect("current");
            if !publish {
                // Dropped unsent: the room goes back to the ring.
                return Ok(());
            }
            let r = match n {
                None => s.send(),
                Some(n) if n <= self.len => s.send_len(n),
                Some(n) => {
                    return Err(PyValueError::new_err(format!(
                        "cannot send {n} bytes of a loan of {}",
                        self.len
                    )));
                }
            };
            r.map_err(raise)
        })
    }
}

#[pymethods]
impl Loan {
    /// Publishes the loan: all of it, or its first `n` bytes.
    #[pyo3(signature = (n = None))]
    fn send(&self, py: Python<'_>, n: Option<usize>) -> PyResult<()> {
        self.finish(py, true, n)
    }

    /// Gives the room back unpublished.
    fn discard(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, false, None)
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// A writable memoryview of the loaned bytes, released when the block ends.
    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let mv = py
            .import("builtins")?
            .getattr("memoryview")?
            .call1((slf,))?
            .unbind();
        *lock(&slf.get().view) = Some(mv.clone_ref(py));
        Ok(mv)
    }

    #[pyo3(signature = (exc_type, _exc, _tb))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let r = self.finish(py, exc_type.is_none(), None);
        if exc_type.is_none() {
            r?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("ipcx.Loan(len={})", self.len)
    }

    /// Exports the loaned bytes in place, writable.
    ///
    /// # Safety
    /// Called by CPython with a valid `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        this.with_current(|st| {
            let s = st.lent.out_mut().expect("current");
            let (ptr, len) = (s.as_mut_ptr(), s.len());
            // SAFETY: the loaned bytes lie in the ring's mapping, reserved for this publisher
            // alone until the loan is sent or dropped, which does not happen while `exports`
            // is above zero (counted below, uncounted in `__releasebuffer__`).
            unsafe { fill_view(view, flags, ptr, len, true, slf.clone().into_any())? };
            st.exports += 1;
            Ok(())
        })
    }

    /// Counts a view as gone.
    ///
    /// # Safety
    /// Called by CPython for a view this object filled.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        view_released(&self.publ.get().state, self.generation);
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        // Views keep this object alive, so none is left: an unsent loan is discarded.
        let _ = self.with_current(|st| {
            st.lent.give_back();
            Ok(())
        });
    }
}
