"""RPC in MessagePack: a Python server called by a Rust client and by Python in another
process, a Rust service called from Python, over unix, tcp and shm."""

import subprocess
import sys
import threading
import time

import pytest

import ipcx
from conftest import finish, free_port

TRANSPORTS = ["unix", "tcp", "shm"]


def endpoint(kind, name):
    return {
        "unix": f"unix:@{name}",
        "tcp": f"tcp:127.0.0.1:{free_port()}",
        "shm": f"shm:/{name}",
    }[kind]


def calc_server(ep):
    srv = ipcx.RpcServer(ep, name="calc")

    @srv.method("add")
    def add(a, b):
        return a + b

    @srv.method()
    def greet(who):
        return f"hello {who}"

    @srv.method("div")
    def div(a, b):
        return a // b

    @srv.method("now")
    def now():
        return "tick"

    @srv.method("echo")
    def echo(*args):
        return list(args)

    return srv


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_python_server_rust_client(kind, name, rust_peer):
    ep = endpoint(kind, name)
    with calc_server(ep) as srv:
        srv.serve_in_background()
        r = subprocess.run([rust_peer, "peer", "call", ep], capture_output=True, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert out.splitlines() == [
        "add Ok(42)",
        'greet Ok("hello rust")',
        "div remote ZeroDivisionError: integer division or modulo by zero",
        "nope unknown",
    ]


SERVING = """
import sys, ipcx
srv = ipcx.RpcServer(sys.argv[1])
@srv.method("add")
def add(a, b):
    return a + b
@srv.method("fail")
def fail(msg):
    raise ValueError(msg)
@srv.method("types")
def types(v):
    return [v, type(v).__name__]
srv.serve_in_background()
print("serving", flush=True)
srv.serve()
"""


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_python_server_python_client_in_another_process(kind, name, children):
    ep = endpoint(kind, name)
    p = children.start([sys.executable, "-c", SERVING, ep])
    assert p.stdout.readline() == b"serving\n", finish(p)
    with ipcx.RpcClient(ep) as c:
        assert c.call("add", 2, 3, timeout=5.0) == 5
        assert c.call("add", "a", "b") == "ab"
        with pytest.raises(ipcx.RemoteError) as e:
            c.call("fail", "no such thing", timeout=5)
        assert "ValueError: no such thing" in str(e.value)
        with pytest.raises(ipcx.NoSuchMethod):
            c.call("missing")
        values = [None, True, -5, 2**63, 1.5, "text", b"\x00\xff", [1, [2]], {"k": [1, 2]}]
        for v in values:
            assert c.call("types", v) == [v, type(v).__name__]
        assert c.call("types", (1, 2)) == [[1, 2], "list"]
        assert c.call("types", bytearray(b"ba")) == [b"ba", "bytes"]
        with pytest.raises(TypeError):
            c.call("types", object())
        with pytest.raises(OverflowError):
            c.call("types", 2**64)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_rust_service_python_client(kind, name, rust_peer, children):
    ep = endpoint(kind, name)
    p = children.start([rust_peer, "peer", "serve", ep])
    assert p.stdout.readline() == b"serving\n", finish(p)
    # By name and version, and found through discovery without them.
    for c in (ipcx.RpcClient(ep, service="calc", version=1), ipcx.RpcClient(ep)):
        with c:
            assert c.call("add", 40, 2, timeout=5) == 42
            with pytest.raises(ipcx.RemoteError) as e:
                c.call("div", 1, 0)
            assert "division by zero" in str(e.value)
            with pytest.raises(ipcx.NoSuchMethod):
                c.call("nope", 1)
            assert c.call("echo", {"a": [1, b"x"]}) == {"a": [1, b"x"]}
            assert c.call("concat", "len=", b"four") == "len=4"
    with pytest.raises(ipcx.Error):
        ipcx.RpcClient(ep, service="other")  # refused: wrong service


def test_one_argument_none_and_spread(name):
    with calc_server(f"unix:@{name}") as srv:
        srv.serve_in_background()
        with ipcx.RpcClient(f"unix:@{name}") as c:
            assert c.call("greet", "you") == "hello you"
            assert c.call("now") == "tick"
            assert c.call("echo", 1, 2, 3) == [1, 2, 3]
            assert c.call("echo", [1, 2]) == [1, 2]  # an array argument is spread


def test_serve_blocks_until_closed(name):
    srv = calc_server(f"unix:@{name}")
    t = threading.Thread(target=srv.serve)
    t.start()
    end = time.monotonic() + 10
    while True:
        try:
            c = ipcx.RpcClient(f"unix:@{name}", service="calc", timeout=1)
            break
        except ipcx.NotFound:
            assert time.monotonic() < end
            time.sleep(0.02)
    assert c.call("add", 1, 1) == 2
    with pytest.raises(ValueError):
        srv.add_method("late", lambda: 1)  # methods are registered before serving
    srv.close()
    t.join(10)
    assert not t.is_alive()
    with pytest.raises(ipcx.PeerGone):
        c.call("add", 1, 1, timeout=5)
    with pytest.raises(ValueError):
        srv.add_method("late", 5)  # not callable
