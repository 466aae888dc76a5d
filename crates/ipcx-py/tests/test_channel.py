"""Sender and Receiver over every endpoint kind, both ways, with the `ipcx` CLI on the other
side (a separate process)."""

import base64
import itertools
import json
import os
import random
import subprocess
import time

import numpy as np
import pytest

import ipcx
from conftest import finish, free_port

KINDS = ["mq", "sysv-mq", "fifo", "unix", "unix-path", "unix-seqpacket", "unix-dgram", "tcp", "shm"]


def endpoint(kind, name):
    return {
        "mq": lambda: f"mq:/{name}",
        "sysv-mq": lambda: f"sysv-mq:{random.randint(0x10000000, 0x7FFFFFFF)}",
        "fifo": lambda: f"fifo:/tmp/{name}",
        "unix": lambda: f"unix:@{name}",
        "unix-path": lambda: f"unix:/tmp/{name}.sock",
        "unix-seqpacket": lambda: f"unix-seqpacket:@{name}",
        "unix-dgram": lambda: f"unix-dgram:@{name}",
        "tcp": lambda: f"tcp:127.0.0.1:{free_port()}",
        "shm": lambda: f"shm:/{name}",
    }[kind]()


def open_sender(ep, timeout=10.0, **kw):
    """A Sender to `ep`, retried until the receiver (another process) has made it."""
    end = time.monotonic() + timeout
    while True:
        try:
            return ipcx.Sender(ep, **kw)
        except (ipcx.NotFound, ipcx.PeerGone):
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


@pytest.mark.parametrize("kind", KINDS)
def test_python_receives_from_the_cli(kind, name, ipcx_bin, children):
    ep = endpoint(kind, name)
    with ipcx.Receiver(ep) as rx:
        p = children.start([ipcx_bin, "send", "--timeout", "10s", ep, "one", "two", "three"])
        got = [rx.recv(timeout=20).data for _ in range(3)]
        out, err = finish(p)
        assert p.returncode == 0, err
    assert got == [b"one", b"two", b"three"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_cli_receives_from_python(kind, name, ipcx_bin, children):
    ep = endpoint(kind, name)
    p = children.start([ipcx_bin, "recv", "--count", "3", "--timeout", "20s", ep])
    with open_sender(ep, timeout=10) as tx:
        tx.send(b"one")
        tx.send(bytearray(b"two"))
        tx.send(memoryview(b"xthreex")[1:-1])
    out, err = finish(p)
    assert p.returncode == 0, err
    assert out.splitlines() == ["one", "two", "three"]


def test_buffers_are_sent_as_they_lie(name, ipcx_bin, children):
    ep = f"mq:/{name}"
    p = children.start([ipcx_bin, "recv", "--json", "--count", "3", "--timeout", "20s", ep])
    arr = np.array([0xFFFE, 0x1234, 0x80FF, 7], dtype=np.uint16)  # not UTF-8
    with open_sender(ep) as tx:
        tx.send(arr)
        tx.send(np.frombuffer(b"numpy bytes", np.uint8))
        tx.send(memoryview(bytearray(b"0123456789"))[2:5])
        with pytest.raises(BufferError):
            tx.send(arr[::2])  # not contiguous
    out, err = finish(p)
    assert p.returncode == 0, err
    msgs = [json.loads(line) for line in out.splitlines()]
    assert base64.b64decode(msgs[0]["base64"]) == arr.tobytes()
    assert msgs[1]["text"] == "numpy bytes"
    assert msgs[2]["text"] == "234"


def test_metadata_priority_and_type(name, ipcx_bin, children):
    with ipcx.Receiver(f"mq:/{name}") as rx:
        p = children.start([ipcx_bin, "send", "--priority", "7", f"mq:/{name}", "urgent"])
        finish(p)
        m = rx.recv(timeout=10)
        assert (m.data, m.priority, m.type, m.key) == (b"urgent", 7, None, None)
        # A per-message priority: higher first.
        with ipcx.Sender(f"mq:/{name}") as tx:
            tx.send(b"low", priority=1)
            tx.send(b"high", priority=9)
        assert [rx.recv(timeout=1).priority for _ in range(2)] == [9, 1]
    key = random.randint(0x10000000, 0x7FFFFFFF)
    with ipcx.Receiver(f"sysv-mq:{key}") as rx:
        p = children.start([ipcx_bin, "send", "--type", "5", f"sysv-mq:{key}", "typed"])
        finish(p)
        m = rx.recv(timeout=10)
        assert (m.data, m.type, m.priority) == (b"typed", 5, None)


def test_unix_senders_credentials(name, ipcx_bin, children):
    with ipcx.Receiver(f"unix:@{name}") as rx:
        p = children.start([ipcx_bin, "send", f"unix:@{name}", "who"])
        m = rx.recv(timeout=10)
        finish(p)
    assert (m.data, m.pid, m.uid, m.gid) == (b"who", p.pid, os.getuid(), os.getgid())
    assert bytes(m) == b"who" and len(m) == 3 and "pid=" in repr(m)


def test_iteration_and_close(name, ipcx_bin, children):
    rx = ipcx.Receiver(f"mq:/{name}")
    p = children.start([ipcx_bin, "send", f"mq:/{name}", "a", "b", "c"])
    finish(p)
    assert [m.data for m in itertools.islice(rx, 3)] == [b"a", b"b", b"c"]
    rx.close()
    rx.close()  # twice is fine
    assert list(rx) == []
    with pytest.raises(ipcx.PeerGone):
        rx.recv(timeout=0)
    # The queue the receiver created is gone with it.
    with pytest.raises(ipcx.NotFound):
        ipcx.Sender(f"mq:/{name}")


def test_sender_create_and_close(name, children, ipcx_bin):
    tx = ipcx.Sender(f"mq:/{name}", create=True)
    tx.send(b"kept")
    p = children.start([ipcx_bin, "recv", "--count", "1", "--timeout", "10s", f"mq:/{name}"])
    out, err = finish(p)
    assert out == "kept\n", err
    tx.close()
    with pytest.raises(ipcx.PeerGone):
        tx.send(b"after close")
    subprocess.run([ipcx_bin, "rm", f"mq:/{name}"], check=False, capture_output=True)
