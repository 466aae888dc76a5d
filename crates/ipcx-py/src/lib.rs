//! The Python module `ipcx` (its native part, `ipcx._ipcx`): any ipcx endpoint, the zero-copy
//! ring read in place by numpy, and RPC in the MessagePack codec, from Python.
//!
//! Built by maturin (`pip install ./crates/ipcx-py`); the Python package around it
//! (`python/ipcx/`) holds the exception classes, the type stubs and `py.typed`. Layout:
//! * `error`: every Rust error becomes one of the exception classes, in one place;
//! * `blocking`: blocking calls release the GIL and wait in slices, so Ctrl-C interrupts them;
//! * `channel`: `Sender`, `Receiver`, `Message` over every endpoint the CLI takes;
//! * `lent` and `ring`: the ring's `Publisher`, `Subscriber`, `Loan` and `Sample`, whose bytes
//!   Python reads and writes in place through the buffer protocol;
//! * `mailbox`: `Mailbox`;
//! * `value` and `rpc`: `RpcServer` and `RpcClient`.
//!
//! `unsafe` appears only at the edge with CPython (buffer exports, borrowed buffers) and in
//! `lent`, each block with its `// SAFETY:` reasoning.
#![allow(unsafe_code)] // the binding's FFI edge: buffer protocol and borrowed buffers
#![deny(missing_docs)]

mod blocking;
mod channel;
mod error;
mod lent;
mod mailbox;
mod ring;
mod rpc;
mod value;

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;

/// Locks `m`, whatever a panicking holder left behind (the state stays consistent: every
/// critical section here either completes or changes nothing).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes a handle with `fn close(&self, py) -> PyResult<()>` a context manager: `__enter__`
/// gives the handle, `__exit__` closes it (a failure to close is raised, unless an exception is
/// already on its way out).
#[macro_export]
#[doc(hidden)]
macro_rules! closing {
    ($ty:ty) => {
        #[pyo3::pymethods]
        impl $ty {
            fn __enter__(slf: pyo3::Py<Self>) -> pyo3::Py<Self> {
                slf
            }

            #[pyo3(signature = (exc_type, _exc, _tb))]
            fn __exit__(
                &self,
                py: pyo3::Python<'_>,
                exc_type: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
                _exc: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
                _tb: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
            ) -> pyo3::PyResult<bool> {
                let r = self.close(py);
                if exc_type.is_none() {
                    r?;
                }
                Ok(false)
            }
        }
    };
}

/// The native module `ipcx._ipcx`.
#[pymodule]
fn _ipcx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<channel::Sender>()?;
    m.add_class::<channel::Receiver>()?;
    m.add_class::<channel::Message>()?;
    m.add_class::<ring::Publisher>()?;
    m.add_class::<ring::Subscriber>()?;
    m.add_class::<ring::Loan>()?;
    m.add_class::<ring::Sample>()?;
    m.add_class::<mailbox::Mailbox>()?;
    m.add_class::<rpc::RpcServer>()?;
    m.add_class::<rpc::RpcClient>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
