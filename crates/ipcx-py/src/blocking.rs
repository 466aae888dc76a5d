//! Blocking calls from Python: the GIL released, the wait cut in slices, Ctrl-C honoured.
//!
//! Python runs signal handlers (Ctrl-C's `KeyboardInterrupt`) only when the main thread comes
//! back to the interpreter, and ipcx's waits retry `EINTR`. So every blocking call waits in
//! slices of at most [`SLICE`] with the GIL released, and between slices takes the GIL back and
//! asks Python whether a signal arrived ([`Python::check_signals`]): a Ctrl-C interrupts any
//! wait within one slice, and other Python threads run meanwhile.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use ipcx::wait::{Wait, deadline_after};

/// The longest a blocking call waits without looking for signals.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// The deadline of a Python `timeout` in seconds: `None` waits for ever.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(format!(
            "timeout must be a number of seconds, 0 or more (or None to wait for ever), not {t}"
        ))),
        Some(t) => Ok(Duration::try_from_secs_f64(t).ok().and_then(deadline_after)),
    }
}

/// Whether a call first tries once without waiting, with the GIL held ([`Try::First`]: for
/// operations that never block on [`Wait::NoWait`], such as receives and the ring's sends: a
/// message already there costs no GIL hand-over), or waits at once ([`Try::Wait`]: a stream
/// sender may finish a frame it started even on `NoWait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Try {
    First,
    Wait,
}

/// Runs `op` with the GIL released, each time with a wait of at most [`SLICE`] (never past
/// `deadline`), until it gives something else than "not yet" (`not_yet`: a timeout, nothing
/// waiting, no room) or the deadline passes (the last timeout is then returned). Between
/// slices, pending signals run their Python handlers: a `KeyboardInterrupt` (or any exception a
/// handler raises) ends the call.
pub(crate) fn wait_in_slices<T, E, F>(
    py: Python<'_>,
    deadline: Option<Instant>,
    first: Try,
    not_yet: fn(&E) -> bool,
    mut op: F,
) -> PyResult<Result<T, E>>
where
    T: Send,
    E: Send,
    F: FnMut(Wait) -> Result<T, E> + Send,
{
    if first == Try::First {
        match op(Wait::NoWait) {
            // `timeout=0`: that was the one try.
            Err(e) if not_yet(&e) && deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(Err(e));
            }
            Err(e) if not_yet(&e) => {}
            r => return Ok(r),
        }
    }
    loop {
        let slice_end = Instant::now() + SLICE;
        let until = deadline.map_or(slice_end, |d| d.min(slice_end));
        let r = py.detach(|| op(Wait::Until(until)));
        match r {
            Err(e) if not_yet(&e) => {
                py.check_signals()?;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Err(e));
                }
            }
            r => return Ok(r),
        }
    }
}
