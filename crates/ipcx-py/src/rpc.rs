//! `ipcx.RpcServer` and `ipcx.RpcClient`: RPC in the MessagePack codec, so Python servers
//! serve Rust clients (and `ipcx call`) and Python clients call Rust services.
//!
//! A method takes one value (docs/PROTOCOL.md, 5.1). A Python handler with several parameters
//! (or `*args`) receives an array argument spread over them; one with a single parameter gets
//! the value itself; one with none takes `nil`. On the client, `call(name, a, b)` sends the
//! array `[a, b]`, `call(name, a)` the value `a`, `call(name)` nil.
//!
//! A call from Python waits on a helper thread, so that the calling thread can look for
//! Ctrl-C every few milliseconds (a call cannot be cut in slices and retried, as a receive
//! can: the request is already on its way).

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rmpv::Value;

use ipcx::channel::Endpoint;
use ipcx::discovery::{Filter, Kind as ServiceKind};
use ipcx::rpc::{Codec, RpcError, RunningService, Service};
use ipcx::wait::Wait;

use crate::blocking::SLICE;
use crate::error::raise;
use crate::lock;
use crate::value::{from_py, to_py};

/// Runs `f` on a thread of its own and waits for it with the GIL released, looking for
/// signals every [`SLICE`]: a `KeyboardInterrupt` ends the wait (the thread finishes alone
/// and its result is dropped).
fn on_helper_thread<T: Send + 'static>(
    py: Python<'_>,
    f: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (tx, mut rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("ipcx-py-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| PyValueError::new_err(format!("cannot start a thread: {e}")))?;
    loop {
        let rx = &mut rx;
        match py.detach(move || rx.recv_timeout(SLICE)) {
            Ok(t) => return Ok(t),
            Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PyValueError::new_err(
                    "the call's thread ended without a result",
                ));
            }
        }
    }
}

/// The service name a server at `endpoint` gets when none is given: the last part of its
/// address (`unix:@calc` and `shm:/calc` are `calc`, `unix:/run/calc.sock` is `calc`), or
/// `rpc` for host:port addresses.
fn default_name(endpoint: &str) -> String {
    let rest = endpoint.split_once(':').map_or(endpoint, |(_, r)| r);
    if rest.contains(':') {
        return "rpc".into();
    }
    let last = rest.rsplit('/').next().unwrap_or(rest);
    let last = last.trim_start_matches('@');
    let last = last.strip_suffix(".sock").unwrap_or(last);
    if last.is_empty() {
        "rpc".into()
    } else {
        last.into()
    }
}

/// How a handler takes the call's one argument.
#[derive(Debug, Clone, Copy)]
enum Arity {
    /// No parameter: the argument must be nil.
    None,
    /// One parameter: the argument itself.
    One,
    /// Several parameters (or `*args`): an array argument spread over them.
    Spread,
}

fn arity_of(f: &Bound<'_, PyAny>) -> PyResult<Arity> {
    let py = f.py();
    let inspect = py.import("inspect")?;
    let params = inspect
        .call_method1("signature", (f,))?
        .getattr("parameters")?;
    let kinds = inspect.getattr("Parameter")?;
    let positional = [
        kinds.getattr("POSITIONAL_ONLY")?,
        kinds.getattr("POSITIONAL_OR_KEYWORD")?,
    ];
    let var_positional = kinds.getattr("VAR_POSITIONAL")?;
    let (mut n, mut var) = (0usize, false);
    for p in params.call_method0("values")?.try_iter()? {
        let kind = p?.getattr("kind")?;
        if kind.eq(&var_positional)? {
            var = true;
        } else if positional[0].eq(&kind)? || positional[1].eq(&kind)? {
            n += 1;
        }
    }
    Ok(match (n, var) {
        (0, false) => Arity::None,
        (1, false) => Arity::One,
        _ => Arity::Spread,
    })
}

/// Calls the Python handler `f` with the call's argument: its result, or the message of the
/// exception it raised (`TypeName: message`).
fn run_handler(f: &Py<PyAny>, arity: Arity, arg: Value) -> Result<Value, String> {
    Python::attach(|py| {
        let call = || -> PyResult<Value> {
            let args = match (arity, arg) {
                (Arity::Spread, Value::Array(items)) => {
                    let items = items
                        .iter()
                        .map(|v| to_py(py, v))
                        .collect::<PyResult<Vec<_>>>()?;
                    PyTuple::new(py, items)?
                }
                (Arity::None, Value::Nil) => PyTuple::empty(py),
                (_, v) => PyTuple::new(py, [to_py(py, &v)?])?,
            };
            let r = f.bind(py).call1(args)?;
            from_py(&r)
        };
        call().map_err(|e| {
            let name = e
                .get_type(py)
                .name()
                .map_or_else(|_| "Exception".to_string(), |n| n.to_string());
            format!("{name}: {}", e.value(py))
        })
    })
}

/// An RPC server in the MessagePack codec: `@server.method("name")` registers handlers, then
/// `serve()` (blocking) or `serve_in_background()` starts it.
#[pyclass(module = "ipcx", frozen)]
pub(crate) struct RpcServer {
    endpoint: String,
    name: String,
    version: u32,
    methods: Mutex<Vec<(String, Py<PyAny>, Arity)>>,
    running: Mutex<Option<RunningService>>,
}

#[pymethods]
impl RpcServer {
    #[new]
    #[pyo3(signature = (endpoint, *, name = None, version = 1))]
    fn new(endpoint: &str, name: Option<String>, version: u32) -> PyResult<RpcServer> {
        Endpoint::parse(endpoint).map_err(raise)?;
        Ok(RpcServer {
            name: name.unwrap_or_else(|| default_name(endpoint)),
            endpoint: endpoint.to_owned(),
            version,
            methods: Mutex::new(Vec::new()),
            running: Mutex::new(None),
        })
    }

    /// A decorator registering a handler as the method `name` (default: the function's
    /// name). Register every method before serving.
    #[pyo3(signature = (name = None))]
    fn method(slf: &Bound<'_, Self>, name: Option<String>) -> PyResult<Py<PyAny>> {
        let server = slf.clone().unbind();
        let register = move |args: &Bound<'_, PyTuple>,
                             _kw: Option<&Bound<'_, PyDict>>|
              -> PyResult<Py<PyAny>> {
            let f = args.get_item(0)?;
            let name = match &name {
                Some(n) => n.clone(),
                None => f.getattr("__name__")?.extract()?,
            };
            server.get().add_method(&name, &f)?;
            Ok(f.unbind())
        };
        Ok(
            pyo3::types::PyCFunction::new_closure(slf.py(), None, None, register)?
                .into_any()
                .unbind(),
        )
    }

    /// Registers `handler` as the method `name` (what the decorator does).
    fn add_method(&self, name: &str, handler: &Bound<'_, PyAny>) -> PyResult<()> {
        if !handler.is_callable() {
            return Err(PyValueError::new_err(format!(
                "the handler of {name:?} is not callable"
            )));
        }
        if lock(&self.running).is_some() {
            return Err(PyValueError::new_err(
                "the server is serving already: register every method before serve()",
            ));
        }
        let arity = arity_of(handler)?;
        lock(&self.methods).push((name.to_owned(), handler.clone().unbind(), arity));
        Ok(())
    }

    /// Starts serving on background threads and returns at once.
    fn serve_in_background(&self, py: Python<'_>) -> PyResult<()> {
        let mut running = lock(&self.running);
        if running.is_some() {
            return Ok(());
        }
        let mut svc = Service::new(&self.name, self.version);
        for (name, f, arity) in lock(&self.methods).iter() {
            let (f, arity) = (f.clone_ref(py), *arity);
            svc = svc.method(name, move |arg: Value| run_handler(&f, arity, arg));
        }
        let endpoint = self.endpoint.clone();
        *running = Some(py.detach(|| svc.serve(&endpoint)).map_err(raise)?);
        Ok(())
    }

    /// Serves until `close()` is called (from a handler or another thread) or Ctrl-C
    /// (`KeyboardInterrupt`, after stopping the server).
    fn serve(&self, py: Python<'_>) -> PyResult<()> {
        self.serve_in_background(py)?;
        loop {
            if lock(&self.running).is_none() {
                return Ok(());
            }
            py.detach(|| std::thread::sleep(SLICE));
            if let Err(e) = py.check_signals() {
                self.close(py)?;
                return Err(e);
            }
        }
    }

    /// Stops serving (the address is freed; connected clients see the connection end).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = lock(&self.running).take();
        // Handlers waiting for the GIL must be able to finish while the server stops.
        py.detach(|| drop(taken));
        Ok(())
    }

    /// The service name clients name in their hello.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint served.
    #[getter]
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn __repr__(&self) -> String {
        format!("ipcx.RpcServer({:?}, name={:?})", self.endpoint, self.name)
    }
}

crate::closing!(RpcServer);

impl Drop for RpcServer {
    fn drop(&mut self) {
        let mut taken = lock(&self.running).take();
        if taken.is_some() {
            // Handlers waiting for the GIL must be able to finish while the server stops (at
            // interpreter exit, when the GIL is gone, there are none).
            let _ = Python::try_attach(|py| py.detach(|| drop(taken.take())));
            drop(taken);
        }
    }
}

/// The service listed (by discovery) at `endpoint`: its name and version.
fn listed_at(endpoint: &str) -> Option<(String, u32)> {
    let want = Endpoint::parse(endpoint).ok()?;
    ipcx::discover(&Filter::new().kind(ServiceKind::Rpc))
        .into_iter()
        .find(|s| s.alive && Endpoint::parse(&s.endpoint).is_ok_and(|e| e == want))
        .map(|s| (s.name, s.version))
}

/// A client of an RPC service, in the MessagePack codec. Without `service=`, the service
/// listed at the endpoint (`ipcx ls --services`) is called, or else the name a Python
/// `RpcServer` at that endpoint takes by default.
#[pyclass(module = "ipcx", frozen)]
pub(crate) struct RpcClient {
    endpoint: String,
    client: Mutex<Option<ipcx::rpc::RpcClient>>,
}

#[pymethods]
impl RpcClient {
    #[new]
    #[pyo3(signature = (endpoint, *, service = None, version = None, timeout = 5.0))]
    fn new(
        py: Python<'_>,
        endpoint: &str,
        service: Option<String>,
        version: Option<u32>,
        timeout: f64,
    ) -> PyResult<RpcClient> {
        Endpoint::parse(endpoint).map_err(raise)?;
        crate::blocking::deadline(Some(timeout))?;
        let (name, version) = match service {
            Some(s) => (s, version.unwrap_or(1)),
            None => match py.detach(|| listed_at(endpoint)) {
                Some((n, v)) => (n, version.unwrap_or(v)),
                None => (default_name(endpoint), version.unwrap_or(1)),
            },
        };
        let addr = endpoint.to_owned();
        let timeout = Duration::try_from_secs_f64(timeout).unwrap_or(Duration::MAX);
        let client = on_helper_thread(py, move || {
            ipcx::rpc::RpcClient::connect_with(&addr, &name, version, timeout, Codec::MsgPack)
        })?
        .map_err(raise)?;
        Ok(RpcClient {
            endpoint: endpoint.to_owned(),
            client: Mutex::new(Some(client)),
        })
    }

    /// Calls `method` with `args` (one argument is sent as itself, several as an array, none
    /// as nil) and returns its result. `timeout` (seconds; None: no deadline) bounds the
    /// call. A handler's error raises `ipcx.RemoteError`; an unknown method
    /// `ipcx.NoSuchMethod`.
    #[pyo3(signature = (method, *args, timeout = None))]
    fn call(
        &self,
        py: Python<'_>,
        method: &str,
        args: &Bound<'_, PyTuple>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let arg = match args.len() {
            0 => Value::Nil,
            1 => from_py(&args.get_item(0)?)?,
            _ => from_py(args.as_any())?,
        };
        let wait = match crate::blocking::deadline(timeout)? {
            None => Wait::Forever,
            Some(d) => Wait::Until(d),
        };
        let client = lock(&self.client)
            .clone()
            .ok_or_else(|| crate::channel::closed(&format!("RpcClient({})", self.endpoint)))?;
        let method = method.to_owned();
        let r: Result<Value, RpcError> =
            on_helper_thread(py, move || client.call_wait(&method, &arg, wait))?;
        to_py(py, &r.map_err(raise)?)
    }

    /// Closes the connection. Closing twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = lock(&self.client).take();
        py.detach(|| drop(taken));
        Ok(())
    }

    /// The endpoint called.
    #[getter]
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn __repr__(&self) -> String {
        format!("ipcx.RpcClient({:?})", self.endpoint)
    }
}

crate::closing!(RpcClient);
