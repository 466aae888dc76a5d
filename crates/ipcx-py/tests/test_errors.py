"""Every exception class: its place among the built-in exceptions, and a real failure of the
library that raises it with the Rust error's message."""

import os

import pytest

import ipcx

BUILTIN = {
    "Timeout": TimeoutError,
    "NotFound": FileNotFoundError,
    "AlreadyExists": FileExistsError,
    "PermissionDenied": PermissionError,
    "PeerGone": ConnectionError,
    "TooLarge": ValueError,
    "InvalidName": ValueError,
    "RemoteError": None,
    "NoSuchMethod": None,
}


@pytest.mark.parametrize("cls", sorted(BUILTIN))
def test_classes(cls):
    c = getattr(ipcx, cls)
    assert issubclass(c, ipcx.Error) and issubclass(ipcx.Error, Exception)
    if BUILTIN[cls] is not None:
        assert issubclass(c, BUILTIN[cls])
    assert c.__doc__ and c.__module__ == "ipcx"


def test_invalid_name():
    for bad in ["mq:no-slash", "nonsense:x", "mq:/a/b", "tcp:host-without-port"]:
        with pytest.raises(ipcx.InvalidName) as e:
            ipcx.Sender(bad)
        assert isinstance(e.value, ValueError) and str(e.value)
    with pytest.raises(ipcx.InvalidName):
        ipcx.Subscriber("no-leading-slash")


def test_not_found(name):
    with pytest.raises(ipcx.NotFound) as e:
        ipcx.Sender(f"mq:/{name}")
    assert name in str(e.value) and isinstance(e.value, FileNotFoundError)


def test_already_exists(name):
    with ipcx.Receiver(f"unix:@{name}"):
        with pytest.raises(ipcx.AlreadyExists) as e:
            ipcx.Receiver(f"unix:@{name}")
        assert isinstance(e.value, FileExistsError)
    with ipcx.Publisher(f"/{name}"):
        with pytest.raises(ipcx.AlreadyExists):
            ipcx.Publisher(f"/{name}")  # one publisher per ring


def test_peer_gone(name):
    rx = ipcx.Receiver(f"unix:@{name}")
    tx = ipcx.Sender(f"unix:@{name}")
    tx.send(b"hello")
    assert rx.recv(timeout=5).data == b"hello"
    rx.close()
    with pytest.raises(ipcx.PeerGone) as e:
        for _ in range(100):  # the first sends may still fill the socket's buffer
            tx.send(b"anyone?", timeout=5)
    assert isinstance(e.value, ConnectionError)
    tx.close()
    # A listener that is not there at all is NotFound.
    with pytest.raises(ipcx.NotFound) as e:
        ipcx.Sender(f"unix:@{name}")
    assert "no listener" in str(e.value)


def test_timeout(name):
    with ipcx.Receiver(f"mq:/{name}") as rx:
        with pytest.raises(ipcx.Timeout) as e:
            rx.recv(timeout=0.05)
        assert isinstance(e.value, TimeoutError) and "timed out" in str(e.value)
        with pytest.raises(ipcx.Timeout):
            rx.recv(timeout=0)  # one try, no wait
        with pytest.raises(ValueError):
            rx.recv(timeout=-1)


def test_too_large(name):
    with ipcx.Receiver(f"mq:/{name}"), ipcx.Sender(f"mq:/{name}") as tx:
        with pytest.raises(ipcx.TooLarge) as e:
            tx.send(bytes(1 << 20))
        assert isinstance(e.value, ValueError) and "too large" in str(e.value)


def test_permission_denied(name):
    """Another user's queue: refused (as root, the denied side runs as nobody in a child)."""
    with ipcx.Receiver(f"mq:/{name}"):
        if os.geteuid() != 0:
            pytest.skip("needs root to act as another user")
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                ipcx.Sender(f"mq:/{name}")
                code = 1
            except ipcx.PermissionDenied as e:
                code = 0 if isinstance(e, PermissionError) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
