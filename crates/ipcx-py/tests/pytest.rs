//! Runs the Python package's tests (pytest, `crates/ipcx-py/tests/test_*.py`) from
//! `cargo test`, so that the README's one test command covers them too.
//!
//! Steps: a virtual environment at `target/pyenv` (made once, with maturin, pytest, numpy and
//! msgpack from PyPI); `pip install ./crates/ipcx-py` into it, built with cargo's dev profile
//! in its own target directory, `target/pyo3` (the outer `cargo test` holds the lock of its own
//! one; a dev build keeps this quick, and the tests check behaviour, not speed); then pytest,
//! with `IPCX_BIN` (the `ipcx` CLI of this build) and `IPCX_PY_PEER` (this program, which also
//! acts as the Rust side of the RPC tests: see [`peer`]).
//!
//! Without python3, or when the packages cannot be installed (no network), the tests are
//! skipped with a note, unless `IPCX_INTEROP=1` (as CI sets), which makes that a failure.
//! `IPCX_PYTHON` names another interpreter; `IPCX_PYTEST_ARGS` adds pytest arguments (e.g.
//! `-k ring -x`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("peer") {
        return peer::run(&args[2..]);
    }
    // libtest's flags (`--nocapture`, a filter...) do not apply: pytest runs everything.
    run_pytest()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// Fails (under `IPCX_INTEROP=1`) or skips with `why`.
fn unavailable(why: &str) -> ExitCode {
    if std::env::var_os("IPCX_INTEROP").is_some_and(|v| v == "1") {
        eprintln!("pytest: {why} (IPCX_INTEROP=1: failing)");
        ExitCode::FAILURE
    } else {
        eprintln!("pytest: skipped: {why} (set IPCX_INTEROP=1 to make this a failure)");
        ExitCode::SUCCESS
    }
}

fn status(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

fn run_pytest() -> ExitCode {
    let root = repo_root();
    let target = root.join("target");
    let venv = target.join("pyenv");
    let py = venv.join("bin/python");
    let python = std::env::var("IPCX_PYTHON").unwrap_or_else(|_| "python3".into());
    if !py.exists() && !status(Command::new(&python).args(["-m", "venv"]).arg(&venv)) {
        return unavailable(&format!("cannot make a virtual environment with {python}"));
    }
    let have = status(Command::new(&py).args(["-c", "import maturin, pytest, numpy, msgpack"]))
        || status(Command::new(&py).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "maturin>=1.9.4,<2",
            "pytest",
            "numpy",
            "msgpack",
        ]));
    if !have {
        return unavailable("cannot install maturin, pytest, numpy and msgpack into target/pyenv");
    }
    // The package, as a user installs it (`pip install ./crates/ipcx-py`), from this tree.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let installed = status(
        Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-build-isolation", "--force-reinstall", "--no-deps"])
            .arg(root.join("crates/ipcx-py"))
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", target.join("pyo3"))
            .env("MATURIN_PEP517_ARGS", "--profile dev"),
    );
    assert!(
        installed,
        "pip install ./crates/ipcx-py failed (output above)"
    );

    let ipcx = match std::env::var_os("IPCX_BIN") {
        Some(p) => PathBuf::from(p),
        None => match cli_of_this_build() {
            Some(p) => p,
            None => {
                let built = status(
                    Command::new(env!("CARGO"))
                        .args(["build", "--quiet", "-p", "ipcx-cli"])
                        .current_dir(&root)
                        .env("CARGO_TARGET_DIR", target.join("pyo3")),
                );
                assert!(built, "cargo build -p ipcx-cli failed");
                target.join("pyo3/debug/ipcx")
            }
        },
    };
    let me = std::env::current_exe().expect("this program's path");
    let mut cmd = Command::new(&py);
    // A test stuck for two minutes has every thread's stack printed.
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "faulthandler_timeout=120",
    ])
    .arg(root.join("crates/ipcx-py/tests"))
    .env("IPCX_BIN", &ipcx)
    .env("IPCX_PY_PEER", &me)
    .current_dir(&root);
    if let Ok(extra) = std::env::var("IPCX_PYTEST_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let mut child = cmd.spawn().expect("starting pytest");
    // A hang must not hold CI for ever: the whole suite takes seconds.
    let limit = Instant::now() + Duration::from_secs(20 * 60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for pytest") {
            break Some(s);
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match status {
        Some(s) if s.success() => ExitCode::SUCCESS,
        Some(_) => {
            eprintln!("pytest failed (output above)");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("pytest did not finish within 20 minutes: killed");
            ExitCode::FAILURE
        }
    }
}

/// The `ipcx` binary next to this test program (`target/debug/ipcx`), when cargo built it.
fn cli_of_this_build() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let bin = me.parent()?.parent()?.join("ipcx");
    bin.exists().then_some(bin)
}

/// The Rust side of the Python RPC tests: `pytest peer call ENDPOINT` calls a Python server
/// in MessagePack and prints what it got, one line per call; `pytest peer serve ENDPOINT`
/// serves the `calc` service (as a typed Rust service does) until killed.
mod peer {
    use std::process::ExitCode;
    use std::time::Duration;

    use ipcx::rpc::{Codec, RpcClient, RpcError, Service};

    pub(crate) fn run(args: &[String]) -> ExitCode {
        match (args.first().map(String::as_str), args.get(1)) {
            (Some("call"), Some(ep)) => call(ep),
            (Some("serve"), Some(ep)) => serve(ep),
            _ => {
                eprintln!("usage: pytest peer call|serve ENDPOINT");
                ExitCode::from(2)
            }
        }
    }

    fn call(ep: &str) -> ExitCode {
        let t = Duration::from_secs(5);
        let c = match RpcClient::connect_with(ep, "calc", 1, t, Codec::MsgPack) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("connect: {e}");
                return ExitCode::FAILURE;
            }
        };
        let sum: Result<i64, _> = c.call("add", &(40, 2), t);
        println!("add {sum:?}");
        let greeting: Result<String, _> = c.call("greet", &"rust", t);
        println!("greet {greeting:?}");
        match c.call::<_, i64>("div", &(1, 0), t) {
            Err(RpcError::Remote { message, .. }) => println!("div remote {message}"),
            other => println!("div unexpected {other:?}"),
        }
        match c.call::<_, i64>("nope", &(), t) {
            Err(RpcError::UnknownMethod { .. }) => println!("nope unknown"),
            other => println!("nope unexpected {other:?}"),
        }
        ExitCode::SUCCESS
    }

    fn serve(ep: &str) -> ExitCode {
        let server = Service::new("calc", 1)
            .method("add", |(a, b): (i64, i64)| Ok::<_, String>(a + b))
            .method("div", |(a, b): (i64, i64)| {
                a.checked_div(b)
                    .ok_or_else(|| "division by zero".to_string())
            })
            .method("echo", |v: rmpv::Value| Ok::<_, String>(v))
            .method("concat", |(a, b): (String, Vec<u8>)| {
                Ok::<_, String>(format!("{a}{}", b.len()))
            })
            .serve(ep);
        match server {
            Ok(s) => {
                println!("serving");
                s.run_forever()
            }
            Err(e) => {
                eprintln!("serve: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
