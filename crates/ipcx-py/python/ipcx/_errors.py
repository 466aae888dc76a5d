"""The exceptions ipcx raises. Each is an ``ipcx.Error`` and, where one fits, the matching
built-in exception too, so ``except TimeoutError`` or ``except FileNotFoundError`` work."""


class Error(Exception):
    """Base class of every ipcx error; the message is the Rust library's."""


class Timeout(Error, TimeoutError):
    """A blocking call's timeout passed (also a ``TimeoutError``)."""


class NotFound(Error, FileNotFoundError):
    """The object or peer does not exist (also a ``FileNotFoundError``)."""


class AlreadyExists(Error, FileExistsError):
    """The object exists already, or the address is in use (also a ``FileExistsError``)."""


class PermissionDenied(Error, PermissionError):
    """The object or peer belongs to a user not trusted, or its mode forbids access
    (also a ``PermissionError``)."""


class PeerGone(Error, ConnectionError):
    """The peer closed or died, or this handle was closed (also a ``ConnectionError``)."""


class TooLarge(Error, ValueError):
    """The message is larger than the mechanism or the object allows (also a ``ValueError``)."""


class InvalidName(Error, ValueError):
    """The endpoint or object name does not parse (also a ``ValueError``)."""


class RemoteError(Error):
    """An RPC handler failed; the message is the handler's."""


class NoSuchMethod(Error):
    """The RPC server has no method of that name."""


# Shown as ipcx.Timeout (not ipcx._errors.Timeout) in tracebacks and reprs.
for _cls in (
    Error,
    Timeout,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    PeerGone,
    TooLarge,
    InvalidName,
    RemoteError,
    NoSuchMethod,
):
    _cls.__module__ = "ipcx"
del _cls
