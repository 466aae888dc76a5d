"""ipcx from Python: any ipcx endpoint, the zero-copy shared-memory ring, RPC.

>>> import ipcx
>>> rx = ipcx.Receiver("mq:/jobs")       # binds/creates as `ipcx recv` does
>>> tx = ipcx.Sender("mq:/jobs")         # connects/opens as `ipcx send` does
>>> tx.send(b"resize 42", priority=5)
>>> rx.recv(timeout=1.0).data
b'resize 42'

Blocking calls release the GIL and are interrupted by Ctrl-C (``KeyboardInterrupt``).
"""

from ._errors import (
    AlreadyExists,
    Error,
    InvalidName,
    NoSuchMethod,
    NotFound,
    PeerGone,
    PermissionDenied,
    RemoteError,
    Timeout,
    TooLarge,
)
from ._ipcx import (
    Loan,
    Mailbox,
    Message,
    Publisher,
    Receiver,
    RpcClient,
    RpcServer,
    Sample,
    Sender,
    Subscriber,
    __version__,
)

__all__ = [
    "AlreadyExists",
    "Error",
    "InvalidName",
    "Loan",
    "Mailbox",
    "Message",
    "NoSuchMethod",
    "NotFound",
    "PeerGone",
    "PermissionDenied",
    "Publisher",
    "Receiver",
    "RemoteError",
    "RpcClient",
    "RpcServer",
    "Sample",
    "Sender",
    "Subscriber",
    "Timeout",
    "TooLarge",
    "__version__",
]
