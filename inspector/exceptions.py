"""The errors that ``inspector`` raises.

Every error that leaves the package is an :class:`InspectorError`; errors of the libraries
underneath (websocket-client, socket, ssl, json, cattrs) are translated at the edge of the layer
that meets them and chained as ``__cause__``::

    InspectorError
     +-- ConnectionFailed      the connection could not be opened (.status: HTTP status or None)
     +-- ConnectionLost        an open connection ended; pending requests fail with it at once
     +-- RequestTimeout        no reply in time (also a builtin TimeoutError)
     +-- ServerError           an error reply (.code, .message, .data, .method, .params)
     +-- ProtocolError         the server broke the protocol (bad JSON, bad shape, too large)
     +-- ClientClosed          the connection or inspector was used after close()
     +-- InvalidArgument       a call was given a value it cannot use (also a ValueError)

No message built here ever includes a token: handshake headers are never formatted into one.
"""

from __future__ import annotations

import copy as copy_module
from typing import Any, Mapping, Optional, Tuple

__all__ = [
    "ClientClosed",
    "copy_error",
    "ConnectionFailed",
    "ConnectionLost",
    "InspectorError",
    "InvalidArgument",
    "ProtocolError",
    "RequestTimeout",
    "ServerError",
]


class InspectorError(Exception):
    """Base class of every error the package raises."""


class ConnectionFailed(InspectorError):
    """The connection could not be opened: refused, DNS, TLS or a refused handshake.

    Attributes:
        status: The HTTP status of a refused handshake (401, 403, 429, 503, ...), else None.
        final: Trying again cannot help, so the connection is not reopened: the token was
            refused (401, 403), the URL is not a WebSocket endpoint, the certificate is not
            trusted, the server does not speak WebSocket.
    """

    def __init__(
        self, message: str, status: Optional[int] = None, *, final: Optional[bool] = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.final = status in _FINAL_STATUSES if final is None else final

    def __reduce__(self) -> Tuple[Any, ...]:
        # Pickling (and copy.copy) rebuild from these arguments, so the status survives a
        # trip to another process or a copy for another waiter.
        return (_rebuild_connection_failed, (type(self), str(self), self.status, self.final),
                self.__dict__)


# Handshake refusals that the same request will always get again.
_FINAL_STATUSES = frozenset({400, 401, 403, 404})


def _rebuild_connection_failed(
    cls: type, message: str, status: Optional[int], final: bool
) -> ConnectionFailed:
    error: ConnectionFailed = cls(message, status, final=final)
    return error


class ConnectionLost(InspectorError):
    """The open connection ended; every request waiting on it fails with this at once."""


class RequestTimeout(InspectorError, TimeoutError):
    """No reply came in time. Also a builtin :class:`TimeoutError`."""


class ServerError(InspectorError):
    """The server answered a request with an error reply.

    Attributes:
        code: The error code (HTTP-like: 400, 404, 429, 500, 503).
        message: The server's message.
        data: The optional ``error.data`` the server sent, else None.
        method: The method of the request that failed.
        params: The params of the request that failed.
    """

    def __init__(
        self,
        code: int,
        message: str,
        data: Any = None,
        method: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
    ) -> None:
        target = ""
        if params and isinstance(params.get("id"), str):
            target = f" {params['id']!r}"
        super().__init__(f"{method or 'request'}{target}: error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        self.params = params

    def __reduce__(self) -> Tuple[Any, ...]:
        # The constructor takes the parts, not the formatted text that ``args`` holds.
        return (
            type(self), (self.code, self.message, self.data, self.method, self.params),
            self.__dict__,
        )

    @property
    def retryable(self) -> bool:
        """Whether the server asked to try again later (429 or 503)."""
        return self.code in (429, 503)


class ProtocolError(InspectorError):
    """The server broke the protocol: a message that is not a JSON object, too large, ..."""


class ClientClosed(InspectorError):
    """The connection or inspector was used after ``close()``."""


class InvalidArgument(InspectorError, ValueError):
    """A call was given a value it cannot use; the message names the argument.

    Also a builtin :class:`ValueError`, as Python code expects of a bad argument.
    """


def copy_error(error: InspectorError) -> InspectorError:
    """A fresh instance of ``error``, attributes and cause included, for one more waiter.

    One instance raised in several threads at once would have its traceback rewritten by each.
    """
    copy = copy_module.copy(error)
    copy.__cause__ = error.__cause__
    copy.__suppress_context__ = error.__suppress_context__
    return copy
