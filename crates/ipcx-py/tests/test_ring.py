"""The zero-copy ring: samples read in place (their bytes lie inside the ring's mapping),
loans written in place, views that outlive their sample refused, between processes."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import ipcx
from conftest import finish


def ring_mappings(name):
    """The address ranges where /dev/shm/NAME is mapped in this process."""
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == f"/dev/shm/{name}":
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((lo, hi))
    return ranges


PUBLISH_PATTERN = """
import sys, time, numpy as np, ipcx
pub = ipcx.Publisher(sys.argv[1])
while pub.subscribers == 0:
    time.sleep(0.01)
n = int(sys.argv[2])
with pub.loan(n) as buf:
    a = np.frombuffer(buf, np.uint8)
    a[:] = np.arange(n, dtype=np.uint64).astype(np.uint8)
    del a
pub.send(b"second")
print("sent", flush=True)
sys.stdin.read()   # stay until the test is done (the publisher's leaving is tested elsewhere)
"""


def test_a_sample_is_read_in_place_inside_the_ring(name, children):
    n = 1 << 20
    with ipcx.Subscriber(f"/{name}", capacity=4 << 20, max_message=2 << 20) as sub:
        args = [sys.executable, "-c", PUBLISH_PATTERN, f"/{name}", str(n)]
        p = children.start(args, stdin=subprocess.PIPE)
        s = sub.recv(timeout=20)
        assert len(s) == n
        a = np.frombuffer(s, np.uint8)
        addr = a.__array_interface__["data"][0]
        maps = ring_mappings(name)
        assert maps, "the ring is not mapped in this process"
        assert any(lo <= addr and addr + n <= hi for lo, hi in maps), (hex(addr), maps)
        assert np.array_equal(a, np.arange(n, dtype=np.uint64).astype(np.uint8))
        # The sample cannot go back to the ring while the array views it.
        with pytest.raises(BufferError):
            s.release()
        assert a[1] == 1
        del a
        s.release()
        with sub.recv(timeout=10) as s2:
            assert bytes(s2) == b"second"
        finish(p)


def test_a_released_sample_refuses_views(name):
    with ipcx.Subscriber(f"/{name}") as sub, ipcx.Publisher(f"/{name}") as pub:
        pub.send(b"first")
        pub.send(b"second")
        s = sub.recv(timeout=5)
        view = memoryview(s)
        assert view.readonly and bytes(view) == b"first"
        with pytest.raises(BufferError):
            s.release()  # refused while a view exists
        assert not s.released
        # The next receive is refused too, and the sample stays readable.
        with pytest.raises(BufferError):
            sub.recv(timeout=1)
        assert bytes(view) == b"first"
        view.release()
        s.release()
        assert s.released
        for read in (memoryview, bytes, lambda x: np.frombuffer(x, np.uint8)):
            with pytest.raises(BufferError):
                read(s)
        s.release()  # twice is fine
        # The next receive replaces an unviewed sample.
        s2 = sub.recv(timeout=5)
        assert bytes(s2) == b"second"
        pub.send(b"third")
        s3 = sub.recv(timeout=5)
        assert s2.released and bytes(s3) == b"third"
        a3 = np.frombuffer(s3, np.uint8)
        with pytest.raises(ValueError):
            a3[0] = 1  # samples are read-only
        del a3


def test_with_block_releases_the_sample(name):
    with ipcx.Subscriber(f"/{name}") as sub, ipcx.Publisher(f"/{name}") as pub:
        pub.send(b"abc")
        with sub.recv(timeout=5) as s:
            assert np.frombuffer(s, np.uint8).sum() == ord("a") + ord("b") + ord("c")
        assert s.released
        # A view kept past the block: the block's end raises instead of letting it dangle.
        pub.send(b"xyz")
        with pytest.raises(BufferError):
            with sub.recv(timeout=5) as s:
                kept = np.frombuffer(s, np.uint8)
        assert bytes(kept) == b"xyz"
        del kept
        s.release()


def test_loan_is_published_at_block_end_and_discarded_on_exception(name):
    with ipcx.Subscriber(f"/{name}") as sub, ipcx.Publisher(f"/{name}") as pub:
        with pytest.raises(RuntimeError):
            with pub.loan(4) as buf:
                buf[:] = b"drop"
                raise RuntimeError("changed my mind")
        with pytest.raises(ValueError):
            buf[0]  # the memoryview was released with the block
        with pub.loan(4) as buf:
            buf[:] = b"keep"
        s = sub.recv(timeout=5)
        assert bytes(s) == b"keep"
        with pytest.raises(ipcx.Timeout):
            sub.recv(timeout=0.05)  # nothing else was published
        # A loan written through numpy, sent partly.
        loan = pub.loan(16)
        a = np.frombuffer(loan, np.uint8)
        a[:5] = np.frombuffer(b"numpy", np.uint8)
        with pytest.raises(BufferError):
            loan.send(5)  # the array still views it
        with pytest.raises(BufferError):
            pub.send(b"past the loan")
        del a
        loan.send(5)
        with sub.recv(timeout=5) as s:
            assert bytes(s) == b"numpy"
        with pytest.raises(BufferError):
            loan.send()  # sent already
        with pytest.raises(BufferError):
            memoryview(loan)


def test_ring_with_the_cli(name, ipcx_bin, children):
    with ipcx.Subscriber(f"/{name}") as sub:
        p = children.start([ipcx_bin, "send", f"shm:/{name}", "from", "cli"])
        got = [bytes(sub.recv(timeout=20)) for _ in range(2)]
        finish(p)
        assert got == [b"from", b"cli"]
    p = children.start([ipcx_bin, "recv", "--count", "2", "--timeout", "20s", f"shm:/{name}"])
    # The CLI's receiver creates the ring and subscribes; then the publisher opens it.
    end = time.monotonic() + 10
    while not os.path.exists(f"/dev/shm/{name}"):
        assert time.monotonic() < end, "the CLI's ring did not appear"
        time.sleep(0.02)
    pub = ipcx.Publisher(f"shm:/{name}")
    while pub.subscribers == 0:
        assert time.monotonic() < end, "the CLI did not subscribe"
        time.sleep(0.02)
    with pub.loan(4) as buf:
        buf[:] = b"loan"
    pub.send(b"copy")
    out, err = finish(p)
    pub.close()
    assert out.splitlines() == ["loan", "copy"], err


def test_subscriber_ends_when_the_publisher_leaves(name):
    sub = ipcx.Subscriber(f"/{name}")
    pub = ipcx.Publisher(f"/{name}")
    pub.send(b"last words")
    pub.close()
    got = [bytes(s) for s in sub]
    assert got == [b"last words"]
    with pytest.raises(ipcx.PeerGone):
        sub.recv(timeout=1)
    sub.close()


def test_too_large_for_the_ring(name):
    with ipcx.Subscriber(f"/{name}", max_message=1024), ipcx.Publisher(f"/{name}") as pub:
        assert pub.max_message_len >= 1024
        with pytest.raises(ipcx.TooLarge) as e:
            pub.send(bytes(pub.max_message_len + 1))
        assert isinstance(e.value, ValueError)
        with pytest.raises(ipcx.TooLarge):
            pub.loan(pub.max_message_len + 1)


EXIT_WITH_HANDLES_ALIVE = """
import sys, ipcx
name = sys.argv[1]
sub = ipcx.Subscriber(name)
pub = ipcx.Publisher(name)
pub.send(b"kept")
s = sub.recv(timeout=5)
view = memoryview(s)
loan = pub.loan(8)
srv = ipcx.RpcServer("unix:@" + name.lstrip("/"))
srv.serve_in_background()
if sys.argv[2] == "closed":
    del view
    s.release()
    sub.close()
    pub.close()
print("exiting", flush=True)
"""


@pytest.mark.parametrize("how", ["open", "closed"])
def test_interpreter_exit_with_everything_alive(how, name, children):
    """Samples, loans, views and servers still alive when the interpreter exits are freed
    quietly (no panic, no hang), whether their handles were closed or not."""
    p = children.start([sys.executable, "-c", EXIT_WITH_HANDLES_ALIVE, f"/{name}", how])
    out, err = finish(p)
    assert p.returncode == 0 and out == "exiting\n", err
    assert "panic" not in err.lower(), err
    assert not os.path.exists(f"/dev/shm/{name}")


def test_wait_strategies(name):
    for wait in ("spin", "spin-then-sleep", "block"):
        with ipcx.Subscriber(f"/{name}", wait=wait) as sub, ipcx.Publisher(f"/{name}", wait=wait) as pub:
            pub.send(wait.encode())
            with sub.recv(timeout=5) as s:
                assert bytes(s) == wait.encode()
            with pytest.raises(ipcx.Timeout):
                sub.recv(timeout=0.05)
            with pytest.raises(ipcx.Timeout):
                sub.recv(timeout=0)
    with pytest.raises(ValueError):
        ipcx.Subscriber(f"/{name}", wait="nap")
