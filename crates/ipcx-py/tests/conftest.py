"""Shared helpers of the ipcx Python tests: unique object names, the `ipcx` CLI, child
processes (a second interpreter) that are always reaped."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def name():
    """A unique name for this test's objects (queues, rings, sockets)."""
    return f"ipcx-pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ipcx_bin():
    """The `ipcx` CLI: $IPCX_BIN (set by the cargo harness), else target/debug/ipcx."""
    p = Path(os.environ.get("IPCX_BIN", ROOT / "target" / "debug" / "ipcx"))
    if not p.exists():
        pytest.fail(f"no ipcx CLI at {p}: build it (cargo build -p ipcx-cli) or set IPCX_BIN")
    return str(p)


@pytest.fixture
def rust_peer():
    """The Rust side of the RPC tests (the cargo harness, `pytest peer ...`)."""
    p = os.environ.get("IPCX_PY_PEER")
    if not p:
        pytest.skip("IPCX_PY_PEER is not set: run through `cargo test -p ipcx-py`")
    return p


class Children:
    """Child processes started by a test, killed and reaped when it ends (even on failure)."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def python(self, code, **kw):
        """A second interpreter running `code`."""
        return self.start([sys.executable, "-c", code], **kw)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.communicate(timeout=10)
            except (ValueError, OSError, subprocess.TimeoutExpired):
                p.wait()


@pytest.fixture
def children():
    c = Children()
    yield c
    c.close()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finish(p, timeout=20):
    """Waits for the child `p`; its (stdout, stderr) as text; fails when it does not end."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"child {p.args} did not finish: stdout {out!r} stderr {err!r}")
    return out.decode(errors="replace"), err.decode(errors="replace")
