"""Type stubs of the ipcx package (the native classes live in ipcx._ipcx)."""

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from typing_extensions import Buffer

from ._errors import (
    AlreadyExists as AlreadyExists,
    Error as Error,
    InvalidName as InvalidName,
    NoSuchMethod as NoSuchMethod,
    NotFound as NotFound,
    PeerGone as PeerGone,
    PermissionDenied as PermissionDenied,
    RemoteError as RemoteError,
    Timeout as Timeout,
    TooLarge as TooLarge,
)

__version__: str

_F = TypeVar("_F", bound=Callable[..., Any])

class Message:
    """A received message: its bytes and what the mechanism tells about it (None where the
    mechanism has nothing to say)."""

    @property
    def data(self) -> bytes:
        """The payload."""
    @property
    def pid(self) -> int | None:
        """The sender's process id (Unix sockets: verified by the kernel)."""
    @property
    def uid(self) -> int | None:
        """The sender's user id."""
    @property
    def gid(self) -> int | None:
        """The sender's group id."""
    @property
    def priority(self) -> int | None:
        """POSIX mq: the message's priority."""
    @property
    def type(self) -> int | None:
        """System V mq: the message's type."""
    @property
    def key(self) -> str | None:
        """The key the message was published under (key-addressed transports)."""
    @property
    def peer(self) -> str | None:
        """The sender's address (TCP, UDP, bound Unix datagram sockets)."""
    def __bytes__(self) -> bytes: ...
    def __len__(self) -> int: ...

class Sender:
    """The sending half of an endpoint (any address `ipcx send` takes), opened as `ipcx send`
    opens it: connects, or opens an existing queue or FIFO (`create=True` creates it)."""

    def __init__(
        self,
        endpoint: str,
        *,
        create: bool = False,
        mode: int = 0o600,
        priority: int = 0,
        type: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """`priority`: POSIX mq send priority; `type`: System V message type; `timeout`:
        how long to wait for a listener or FIFO reader to appear (default: not at all)."""
    def send(
        self, data: Buffer, *, priority: int | None = None, timeout: float | None = None
    ) -> None:
        """Sends one message from any buffer (bytes, bytearray, memoryview, numpy array), in
        place; blocks at most `timeout` seconds for room (then `Timeout`)."""
    def close(self) -> None:
        """Reports messages that can no longer reach a receiver (`PeerGone`), then closes."""
    @property
    def endpoint(self) -> str:
        """The endpoint."""
    def __enter__(self) -> Sender: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Receiver:
    """The receiving half of an endpoint, opened as `ipcx recv` opens it: binds and serves
    every sender, or creates the queue or FIFO (removed again on close)."""

    def __init__(self, endpoint: str, *, mode: int = 0o600, type: int | None = None) -> None:
        """`type`: System V msgrcv selector (0 any, >0 that type, <0 lowest up to |type|)."""
    def recv(self, timeout: float | None = None) -> Message:
        """The next message; `Timeout` after `timeout` seconds (None: wait for ever)."""
    def close(self) -> None:
        """Closes the receiver and removes what it created."""
    @property
    def endpoint(self) -> str:
        """The endpoint."""
    def __iter__(self) -> Iterator[Message]: ...
    def __next__(self) -> Message: ...
    def __enter__(self) -> Receiver: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Sample:
    """A message read in place in the ring; supports the buffer protocol (read-only):
    `memoryview(s)`, `numpy.frombuffer(s, dtype)`, `bytes(s)`. `release()` (or the end of its
    `with` block, or the next `recv`) gives it back; `BufferError` while views remain."""

    @property
    def missed(self) -> int:
        """Messages missed before this one (overwrite rings only)."""
    @property
    def released(self) -> bool:
        """Whether the message was given back to the ring."""
    def release(self) -> None:
        """Gives the message back to the ring (`BufferError` while views of it remain)."""
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __enter__(self) -> Sample: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Loan:
    """Room loaned inside the ring: `with publisher.loan(n) as buf:` gives a writable
    memoryview, published when the block ends, discarded on an exception."""

    def send(self, n: int | None = None) -> None:
        """Publishes the loan (or its first `n` bytes)."""
    def discard(self) -> None:
        """Gives the room back unpublished."""
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __enter__(self) -> memoryview: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Publisher:
    """The publisher of the zero-copy ring `shm:NAME` (`"/frames"` or `"shm:/frames"`);
    opens the ring or creates it."""

    def __init__(
        self,
        name: str,
        *,
        capacity: int | None = None,
        max_message: int | None = None,
        wait: str = "spin-then-sleep",
    ) -> None:
        """`capacity` and `max_message` (bytes) apply when this call creates the ring;
        `wait`: how blocked calls wait: "spin-then-sleep" (spin a few microseconds, then
        sleep), "spin" (busy-poll: lowest latency, one CPU busy) or "block"."""
    def loan(self, n: int, *, timeout: float | None = None) -> Loan:
        """Loans `n` writable bytes in the ring, waiting at most `timeout` seconds for room."""
    def send(self, data: Buffer, *, timeout: float | None = None) -> None:
        """Publishes a copy of `data`, waiting at most `timeout` seconds for room."""
    @property
    def subscribers(self) -> int:
        """How many subscribers are attached."""
    @property
    def max_message_len(self) -> int:
        """The largest message the ring takes."""
    @property
    def name(self) -> str:
        """The ring's name."""
    def close(self) -> None:
        """Closes the publisher (a loan that is out is discarded)."""
    def __enter__(self) -> Publisher: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Subscriber:
    """A subscriber of the zero-copy ring `shm:NAME`; opens the ring or creates it."""

    def __init__(
        self,
        name: str,
        *,
        capacity: int | None = None,
        max_message: int | None = None,
        wait: str = "spin-then-sleep",
    ) -> None:
        """`capacity` and `max_message` (bytes) apply when this call creates the ring;
        `wait`: how blocked calls wait: "spin-then-sleep" (spin a few microseconds, then
        sleep), "spin" (busy-poll: lowest latency, one CPU busy) or "block"."""
    def recv(self, timeout: float | None = None) -> Sample:
        """The next message, in place; `Timeout` after `timeout` seconds, `PeerGone` when the
        publisher left and everything was read."""
    @property
    def name(self) -> str:
        """The ring's name."""
    def close(self) -> None:
        """Gives the current sample back and closes the subscriber."""
    def __iter__(self) -> Iterator[Sample]: ...
    def __next__(self) -> Sample: ...
    def __enter__(self) -> Subscriber: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Mailbox:
    """A named mailbox (`/NAME` or `mq:/NAME`: a POSIX queue; `shm:/NAME`: the ring's work
    queue): many senders, many receivers, each message delivered to one receiver."""

    def __init__(self, name: str, *, create: bool = True) -> None:
        """Opens the mailbox, creating it when missing (`create=False`: it must exist)."""
    def send(self, data: Buffer, *, priority: int = 0, timeout: float | None = None) -> None:
        """Sends one message; `priority` orders a queue's messages (a ring takes only 0)."""
    def recv(self, timeout: float | None = None) -> Message:
        """The next message (`data`, `priority`); `Timeout` after `timeout` seconds."""
    @property
    def max_message_len(self) -> int:
        """The largest message the mailbox takes."""
    @property
    def name(self) -> str:
        """The mailbox's name."""
    def close(self) -> None:
        """Closes this handle (removing the mailbox if it created it)."""
    def __len__(self) -> int:
        """How many messages wait (queues only)."""
    def __enter__(self) -> Mailbox: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class RpcServer:
    """An RPC server in the MessagePack codec (unix, tcp and shm endpoints)."""

    def __init__(self, endpoint: str, *, name: str | None = None, version: int = 1) -> None:
        """`name`: the service name clients give (default: the last part of the address,
        `unix:@calc` -> `calc`)."""
    def method(self, name: str | None = None) -> Callable[[_F], _F]:
        """A decorator registering a handler as method `name` (default: its __name__)."""
    def add_method(self, name: str, handler: Callable[..., Any]) -> None:
        """Registers `handler` as method `name`."""
    def serve(self) -> None:
        """Serves until `close()` or Ctrl-C."""
    def serve_in_background(self) -> None:
        """Starts serving on background threads and returns."""
    def close(self) -> None:
        """Stops serving."""
    @property
    def name(self) -> str:
        """The service name."""
    @property
    def endpoint(self) -> str:
        """The endpoint served."""
    def __enter__(self) -> RpcServer: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class RpcClient:
    """A client of an RPC service (Python or Rust), in the MessagePack codec."""

    def __init__(
        self,
        endpoint: str,
        *,
        service: str | None = None,
        version: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Without `service`, calls the service listed at the endpoint (`ipcx ls --services`),
        else the name a Python `RpcServer` there takes by default."""
    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Calls `method`; `RemoteError` when its handler fails, `NoSuchMethod` when unknown."""
    def close(self) -> None:
        """Closes the connection."""
    @property
    def endpoint(self) -> str:
        """The endpoint called."""
    def __enter__(self) -> RpcClient: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...
