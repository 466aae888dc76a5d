"""Blocking calls release the GIL and end with KeyboardInterrupt on Ctrl-C (SIGINT), in
another interpreter blocked in the call. No timing is asserted beyond a generous bound."""

import signal
import sys
import threading
import time

import pytest

import ipcx
from conftest import finish

BLOCKED = {
    "receiver": """
rx = ipcx.Receiver("mq:/{name}")
ready()
rx.recv()
""",
    "subscriber": """
sub = ipcx.Subscriber("/{name}")
ready()
sub.recv()
""",
    "rpc-call": """
srv = ipcx.RpcServer("unix:@{name}")
@srv.method("sleep")
def sleep(s):
    time.sleep(s)
srv.serve_in_background()
c = ipcx.RpcClient("unix:@{name}")
ready()
c.call("sleep", 60)
""",
    "rpc-serve": """
srv = ipcx.RpcServer("unix:@{name}")
ready()
srv.serve()
""",
}

PRELUDE = """
import sys, time, ipcx
def ready():
    print("ready", flush=True)
try:
{body}
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(0)
print("not interrupted", flush=True)
sys.exit(1)
"""


@pytest.mark.parametrize("call", sorted(BLOCKED))
def test_ctrl_c_interrupts(call, name, children):
    body = "\n".join("    " + line for line in BLOCKED[call].format(name=name).splitlines())
    p = children.python(PRELUDE.format(body=body))
    assert p.stdout.readline() == b"ready\n", finish(p)
    time.sleep(0.2)  # well inside the blocking call
    p.send_signal(signal.SIGINT)
    out, err = finish(p, timeout=10)
    assert p.returncode == 0 and out == "interrupted\n", (out, err)


def test_blocking_calls_release_the_gil(name):
    with ipcx.Receiver(f"mq:/{name}") as rx, ipcx.Sender(f"mq:/{name}") as tx:
        got = []
        t = threading.Thread(target=lambda: got.append(rx.recv(timeout=30)))
        t.start()
        time.sleep(0.05)
        # The receiver's thread is blocked in recv: this thread must still run.
        n, end = 0, time.monotonic() + 0.2
        while time.monotonic() < end:
            n += 1
        assert t.is_alive() and n > 1000
        tx.send(b"done")
        t.join(10)
        assert got and got[0].data == b"done"


def test_handles_are_shared_between_threads(name):
    with ipcx.Receiver(f"mq:/{name}") as rx, ipcx.Sender(f"mq:/{name}") as tx:
        def send(i):
            for j in range(200):
                tx.send(f"{i}-{j}".encode())

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        received = []

        def receive():
            for _ in range(400):
                received.append(rx.recv(timeout=30).data)

        readers = [threading.Thread(target=receive) for _ in range(2)]
        for t in threads + readers:
            t.start()
        for t in threads + readers:
            t.join(60)
        assert sorted(received) == sorted(f"{i}-{j}".encode() for i in range(4) for j in range(200))
