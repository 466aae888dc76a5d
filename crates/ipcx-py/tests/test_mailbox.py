"""Mailbox: messages from another interpreter, each delivered to exactly one receiver."""

import sys
import time

import pytest

import ipcx
from conftest import finish

SEND = """
import sys, ipcx
mb = ipcx.Mailbox(sys.argv[1], create=False)
for i in range(int(sys.argv[2])):
    mb.send(f"job {i}".encode(), priority=i % 3 if sys.argv[1].startswith("mq:") else 0)
"""


@pytest.mark.parametrize("kind", ["mq", "shm"])
def test_each_message_to_one_receiver(kind, name, children):
    addr = f"mq:/{name}" if kind == "mq" else f"shm:/{name}"
    with ipcx.Mailbox(addr) as a, ipcx.Mailbox(addr, create=False) as b:
        p = children.start([sys.executable, "-c", SEND, addr, "40"])
        got = []
        end = time.monotonic() + 30
        while len(got) < 40 and time.monotonic() < end:
            for mb in (a, b):
                try:
                    got.append(mb.recv(timeout=0.05).data)
                except ipcx.Timeout:
                    pass
        out, err = finish(p)
        assert p.returncode == 0, err
        assert sorted(got) == sorted(f"job {i}".encode() for i in range(40))
        if kind == "mq":
            assert len(a) == 0
        with pytest.raises(ipcx.Timeout):
            a.recv(timeout=0.05)


def test_priorities_and_errors(name):
    with pytest.raises(ipcx.NotFound):
        ipcx.Mailbox(f"/{name}", create=False)
    with ipcx.Mailbox(f"/{name}") as mb:
        mb.send(b"low", priority=1)
        mb.send(bytearray(b"high"), priority=5)
        assert len(mb) == 2
        first = mb.recv(timeout=1)
        assert (first.data, first.priority) == (b"high", 5)
        assert mb.recv(timeout=1).data == b"low"
        with pytest.raises(ipcx.TooLarge):
            mb.send(bytes(mb.max_message_len + 1))
    with pytest.raises(ipcx.PeerGone):
        mb.recv(timeout=0)
