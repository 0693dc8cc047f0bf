"""The sample documents server: every method of the wire protocol, and faults on demand.

It serves the built-in catalog and the generated ``gen-<C>x<W>`` documents of
:mod:`inspector.sample_catalog` over one WebSocket endpoint (any path), speaking all of
``PROTOCOL.md``. It exists to test and benchmark clients, so it can misbehave on purpose: every
switch of :class:`Faults` is off by default and may be flipped while the server runs.

Documents that come, go and change, for clients that keep a copy (the inventory):

* ``ListDocuments`` pages: ``{"cursor": ..., "limit": N}`` gives at most N ids and a
  ``nextCursor`` (null after the last page); ``{}`` gives every id and no ``nextCursor``. The
  cursor is the last id of the page before; it stays valid while documents are added and
  removed, and no document present throughout is skipped or named twice. A ``cursor`` that is
  not an id the server listed, or a ``limit`` that is not an integer >= 1, gets error 400 naming
  it. ``Faults.ignore_paging`` (``--ignore-paging``) makes it answer as an older server does:
  every id, whatever the params.
* Every generated document, and every document once changed, carries ``updatedAt`` (ISO 8601
  UTC); the catalog's keep the one they ship with (``doc-1`` and the folders ship without, as
  ``PROTOCOL.md`` shows ``doc-1``). A change to a document, its containers or widgets bumps it.
* ``generated=N`` (``--generated N``) lists N more documents after the catalog's,
  ``gen-2x2-n0000001`` ... (2 containers x 2 widgets), computed from the id when asked for, so
  100,000 of them cost no memory or start-up time.
* :meth:`SampleServer.mutate` changes one document (a widget's SQL, a widget added or removed,
  a document added or removed: :data:`~inspector.sample_catalog.MUTATION_KINDS`), bumps its
  ``updatedAt`` and sends ``{"method": "DocumentChanged", "params": {"id": ..., "updatedAt":
  ...}}`` (or ``DocumentRemoved`` ``{"id": ...}``) to every open connection. ``mutate_every=S``
  (``--mutate-every S``) does so for a random document every S seconds; ``seed=`` (``--seed``)
  makes the choices repeatable.
* :attr:`ServerStats.open_connections` and :attr:`ServerStats.max_open_connections` count
  accepted connections now and at most at once, e.g. to check a cap on connections.

Layers, each with one job::

    run_sample_server()    context manager: start, yield the handle, stop and join
      SampleServer         the handle: one named daemon thread running one asyncio loop
        _DocumentsService  the loop side: handshake checks, one handler per connection, faults
          LiveCatalog      this server's documents and their changes, no I/O
            SampleCatalog  the built-in and generated documents, shared, read-only
    add_serve_arguments() / serve_from_args()   the same service from the command line

Every piece of mutable server state (counters, connection sets) is touched by the loop thread
only. Other threads read :class:`ServerStats` (single counters are atomic under the GIL) and
assign :class:`Faults` attributes, which the loop reads afresh for every request; they reach
the connections through :meth:`SampleServer.notify`, :meth:`~SampleServer.send_raw` and
:meth:`~SampleServer.drop_connections`, which run on the loop.

The per-message path is kept lean because benchmarks push tens of thousands of pipelined
requests through it: parse, dispatch through a dict, encode, send. No task, timer or log record
is created per message unless a fault that needs one is switched on.

How faults count, for client authors:

* A *request* is every data frame received, valid or not. Requests are numbered from 1 per
  server, across all its connections, in arrival order: ``silent_every=3`` silences requests
  3, 6, 9, ... ``drop_after`` counts per connection.
* A *reply* is every reply or error reply actually sent for a request (junk frames, duplicates
  and notifications are not replies). Replies are numbered from 1 per server in the order they
  are sent: ``junk_every``, ``duplicate_every`` and ``notify_every`` count these.
* Silenced requests (``silent_every``, ``silent_ids``) get no reply, ever, and are not in flight.
* ``max_in_flight`` counts requests whose reply waits for ``latency``/``jitter``; without latency
  every reply is sent before the next request is read, so nothing is ever in flight. A 429 is
  sent at once, undelayed. ``error_for`` replies are delayed like any other reply.
* ``drop_after=N``: requests 1..N-1 of a connection are handled normally; on the Nth the TCP
  connection is aborted (no close frame, no reply, delayed replies lost).
* Malformed requests (not a JSON object, no positive integer ``id``, binary frames) are answered
  with ``{"id": null, "error": {"code": 400, ...}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http
import itertools
import json
import logging
import os
import random
import signal
import ssl
import sys
import threading
import time
from typing import (
    Any,
    Callable,
    Coroutine,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
)

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from inspector.exceptions import InvalidArgument
from inspector.sample_catalog import (
    MUTATION_KINDS,
    LiveCatalog,
    Mutation,
    SampleCatalog,
    load_catalog,
)

__all__ = [
    "JUNK_KINDS",
    "MUTATION_KINDS",
    "Faults",
    "Mutation",
    "SampleServer",
    "ServerStats",
    "add_serve_arguments",
    "faults_from_args",
    "run_sample_server",
    "serve_from_args",
]

logger = logging.getLogger(__name__)


class _RedactSecrets(logging.Filter):
    """Keep tokens out of the log: websockets logs the request line and every handshake header
    at DEBUG, and a client may carry a token in either (``?access_token=...``)."""

    _SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple):
            return True
        if (
            record.msg in ("< %s: %s", "> %s: %s")
            and len(args) == 2
            and str(args[0]).lower() in self._SECRET_HEADERS
        ):
            record.args = (args[0], "[redacted]")
        elif record.msg == "< %s %s %s" and len(args) == 3 and "?" in str(args[1]):
            path = str(args[1]).partition("?")[0]
            record.args = (args[0], f"{path}?[redacted]", args[2])
        return True


# The websockets machinery of this server logs here, not to "websockets.server", so that the
# filter applies to this server only.
_websockets_logger = logging.getLogger(f"{__name__}.websockets")
_websockets_logger.addFilter(_RedactSecrets())

JSONObject = Dict[str, Any]
_T = TypeVar("_T")

#: The kinds of junk frame :attr:`Faults.junk_kinds` may name.
JUNK_KINDS: Tuple[str, ...] = ("text", "array", "unknown_id", "binary", "nan", "deep")

_MAX_MESSAGE_SIZE = 16 * 2**20
# Incoming frames buffered ahead of the handler: enough for pipelined requests to flow without
# pausing the socket at every frame.
_MAX_QUEUE = 256
_WRITE_LIMIT = 2**20
# Bounds how long stop() waits for a client that does not answer the closing handshake.
_CLOSE_TIMEOUT = 2.0
# A handshake (handshake_delay included) that takes longer than this is aborted.
_OPEN_TIMEOUT = 30.0
# How long a call from another thread (notify, send_raw, ...) may wait for the loop.
_CALL_TIMEOUT = 30.0
# ServerStats.handshake_headers keeps the most recent this many.
_MAX_HANDSHAKES_RECORDED = 10_000
# Ids far above anything a client has used, for junk replies "to an id never used".
_UNUSED_ID_BASE = 2**40
_DEEP_NESTING = 100_000

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode
_thread_numbers = itertools.count(1)


def _not_negative(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _known_junk_kinds(instance: Any, attribute: Any, value: Tuple[str, ...]) -> None:
    unknown = [kind for kind in value if kind not in JUNK_KINDS]
    if unknown:
        raise ValueError(f"unknown junk kinds {unknown}; known: {', '.join(JUNK_KINDS)}")


def _frozen_ids(ids: Iterable[str]) -> FrozenSet[str]:
    return frozenset(ids)


def _kinds_tuple(kinds: Iterable[str]) -> Tuple[str, ...]:
    return tuple(kinds)


def _http_status(instance: Any, attribute: Any, value: Optional[int]) -> None:
    if value is not None and not 300 <= value <= 599:
        raise ValueError(f"{attribute.name} must be an HTTP status 300-599, got {value!r}")


@attrs.define
class Faults:
    """Ways to misbehave, all off by default; assign any attribute while the server runs.

    An assignment, from any thread, takes effect from the next request (the next handshake for
    the handshake faults; ``idle_timeout`` from a connection's next wait for a message).

    Attributes:
        latency: Seconds to wait before sending each reply.
        jitter: Up to this many seconds more, uniformly random per reply, so that replies come
            out of order. Delayed replies never hold up the handling of later requests.
        silent_every: Every Nth request (counted per server) gets no reply at all; 0 = off.
        silent_ids: Requests for these object ids never get a reply.
        drop_after: Abort the TCP connection (no close frame) on the Nth request received on
            it, counted per connection; 0 = off.
        junk_every: Before every Nth reply send one junk frame; 0 = off.
        junk_kinds: The junk frames to send, in turn: ``text`` (not JSON), ``array`` (JSON, not
            an object), ``unknown_id`` (a well-formed reply to an id never used), ``binary`` (a
            binary frame), ``nan`` (``{"id": ..., "result": NaN}``), ``deep`` (100,000 nested
            arrays).
        duplicate_every: Send every Nth reply twice; 0 = off.
        notify_every: After every Nth reply also send a ``DocumentChanged`` notification for
            the document the request was about; 0 = off.
        error_for: Object id -> error code: requests for these ids get that error reply.
        result_for: Object id -> the ``result`` to send for it instead of the real one, e.g.
            an object of the wrong shape, to see how a client takes a broken reply.
        idle_timeout: Close a connection with code 1001 once it received nothing for this
            many seconds; None = never.
        max_in_flight: Answer 429 to a request that arrives while this many replies of its
            connection are waiting to be sent (see ``latency``); 0 = no limit.
        refuse_status: Refuse opening handshakes with this HTTP status; None = off.
        refuse_count: Refuse only this many more handshakes, then accept (the count goes down
            as handshakes are refused); None = refuse every one.
        redirect_to: Answer every handshake with HTTP 302 and this ``Location``; None = off.
            It comes first, then ``refuse_status``, then the token check.
        handshake_delay: Seconds to wait before answering each handshake (keep it below 30 s,
            after which the server gives up on the handshake).
        ignore_paging: Answer ``ListDocuments`` with every id and no ``nextCursor``, whatever
            its params, as a server that does not page.
    """

    latency: float = attrs.field(default=0.0, validator=_not_negative)
    jitter: float = attrs.field(default=0.0, validator=_not_negative)
    silent_every: int = attrs.field(default=0, validator=_not_negative)
    silent_ids: FrozenSet[str] = attrs.field(default=frozenset(), converter=_frozen_ids)
    drop_after: int = attrs.field(default=0, validator=_not_negative)
    junk_every: int = attrs.field(default=0, validator=_not_negative)
    junk_kinds: Tuple[str, ...] = attrs.field(
        default=JUNK_KINDS, converter=_kinds_tuple, validator=_known_junk_kinds
    )
    duplicate_every: int = attrs.field(default=0, validator=_not_negative)
    notify_every: int = attrs.field(default=0, validator=_not_negative)
    error_for: Dict[str, int] = attrs.field(factory=dict)
    result_for: Dict[str, Any] = attrs.field(factory=dict)
    idle_timeout: Optional[float] = attrs.field(default=None, validator=_not_negative)
    max_in_flight: int = attrs.field(default=0, validator=_not_negative)
    refuse_status: Optional[int] = attrs.field(default=None, validator=_http_status)
    refuse_count: Optional[int] = attrs.field(default=None, validator=_not_negative)
    redirect_to: Optional[str] = None
    handshake_delay: float = attrs.field(default=0.0, validator=_not_negative)
    ignore_paging: bool = False


@attrs.define
class ServerStats:
    """Counters of what one server did, updated by its loop and readable from any thread.

    Copy the dict and list (``dict(stats.requests_by_method)``) before iterating over them
    while the server runs.

    Attributes:
        connections_opened: WebSocket connections accepted (handshake completed).
        open_connections: Accepted connections not yet closed.
        max_open_connections: The most accepted connections that were open at once.
        requests: Data frames received, valid or not.
        requests_by_method: Requests by method name; ``"(unknown)"`` counts methods the server
            does not have and ``"(invalid)"`` requests it could not read.
        replies_sent: Replies and error replies sent (duplicates not counted again).
        requests_silenced: Requests left unanswered by ``silent_every``/``silent_ids``.
        duplicates_sent: Replies sent a second time by ``duplicate_every``.
        notifications_sent: Notifications sent, by ``notify_every``, ``notify()`` or changes.
        mutations: Changes made by ``mutate()`` or ``mutate_every``.
        junk_frames_sent: Junk frames sent by ``junk_every``.
        connections_dropped: Connections aborted by ``drop_after`` or ``drop_connections()``.
        idle_closes: Connections closed by ``idle_timeout``.
        handshakes: Opening handshakes received (accepted or not).
        handshakes_refused: Handshakes answered with anything but 101 (refusals, redirects,
            401/403 for tokens).
        handshake_headers: Each handshake's request headers, in arrival order, as a dict with
            lower-case names (repeated headers joined with ``", "``); refused handshakes
            included, the most recent 10,000 kept.
    """

    connections_opened: int = 0
    open_connections: int = 0
    max_open_connections: int = 0
    requests: int = 0
    requests_by_method: Dict[str, int] = attrs.field(factory=dict)
    replies_sent: int = 0
    requests_silenced: int = 0
    duplicates_sent: int = 0
    notifications_sent: int = 0
    junk_frames_sent: int = 0
    connections_dropped: int = 0
    idle_closes: int = 0
    handshakes: int = 0
    handshakes_refused: int = 0
    mutations: int = 0
    handshake_headers: List[Dict[str, str]] = attrs.field(factory=list)


class _RequestError(Exception):
    """A request that gets an error reply instead of a result."""

    def __init__(self, code: int, message: str, data: Optional[JSONObject] = None) -> None:
        super().__init__(message)
        self.error: JSONObject = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data


class _ConnectionState:
    """What the service tracks for one accepted connection."""

    __slots__ = ("websocket", "requests_received", "in_flight", "delayed_replies")

    def __init__(self, websocket: ServerConnection) -> None:
        self.websocket = websocket
        self.requests_received = 0
        self.in_flight = 0
        self.delayed_replies: Set[asyncio.Future[None]] = set()


def _parse_envelope(message: Union[str, bytes]) -> JSONObject:
    """Return the request object, or raise for a frame that cannot carry a request id."""
    if not isinstance(message, str):
        raise _RequestError(400, "binary frames are not used; send one JSON object per text frame")
    try:
        request = json.loads(message)
    except (ValueError, RecursionError):
        raise _RequestError(400, "the request is not JSON") from None
    if type(request) is not dict:
        raise _RequestError(400, "a request must be a JSON object")
    request_id = request.get("id")
    # type() rather than isinstance(): True is an int, but not a request id.
    if type(request_id) is not int or request_id <= 0:
        raise _RequestError(400, "a request needs an id that is a positive integer")
    return request


def _junk_frame(kind: str, unused_id: int) -> Union[str, bytes]:
    if kind == "text":
        return "this frame is not JSON {"
    if kind == "array":
        return "[1,2]"
    if kind == "unknown_id":
        return _encode({"id": unused_id, "result": {"id": "doc-1", "type": "biDashboard"}})
    if kind == "binary":
        return b"\x00\xffnot a text frame"
    if kind == "nan":
        return f'{{"id":{unused_id},"result":NaN}}'
    return "[" * _DEEP_NESTING + "]" * _DEEP_NESTING  # "deep"


def _header_dict(headers: Headers) -> Dict[str, str]:
    collected: Dict[str, str] = {}
    for name, value in headers.raw_items():
        key = name.lower()
        collected[key] = f"{collected[key]}, {value}" if key in collected else value
    return collected


def _bearer_token(headers: Headers) -> Optional[str]:
    values = headers.get_all("Authorization")
    if len(values) != 1:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _registering_connection_class(registry: Set[ServerConnection]) -> Type[ServerConnection]:
    """Make a connection class that keeps ``registry`` = every TCP connection still open.

    websockets tracks only connections whose handshake completed; stopping the server must
    also abort those still in the handshake (a slow or silent client, a handshake_delay).
    """

    class _RegisteredConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            registry.add(self)
            super().connection_made(transport)

        def connection_lost(self, exc: Optional[Exception]) -> None:
            registry.discard(self)
            super().connection_lost(exc)

    return _RegisteredConnection


class _DocumentsService:
    """The loop side of one server: answers handshakes and requests, applies the faults."""

    def __init__(
        self,
        catalog: LiveCatalog,
        faults: Faults,
        stats: ServerStats,
        tokens: Optional[Mapping[str, bool]],
        mutate_every: Optional[float] = None,
    ) -> None:
        self.faults = faults
        self.stats = stats
        self._catalog = catalog
        self._tokens = tokens
        self._mutate_every = mutate_every
        # The reply to ListDocuments {}, and the listing version it was made for.
        self._every_id: Tuple[int, JSONObject] = (-1, {})
        self._handlers: Dict[str, Callable[[JSONObject], JSONObject]] = {
            "GetDocument": self._get_document,
            "GetWidgetContainer": self._get_widget_container,
            "GetWidgetProperties": self._get_widget_properties,
            "ListDocuments": self._list_documents,
        }
        self._connections: Set[_ConnectionState] = set()
        self._tcp_connections: Set[ServerConnection] = set()
        self._request_number = 0
        self._reply_number = 0
        self._junk_number = 0
        self._random = random.Random()
        self._closing: Optional[asyncio.Event] = None

    # Methods. Each takes the request's params (a dict) and returns the result.

    def _get_document(self, params: JSONObject) -> JSONObject:
        return _found(self._catalog.document(_object_id(params)), "document", params)

    def _get_widget_container(self, params: JSONObject) -> JSONObject:
        return _found(self._catalog.container(_object_id(params)), "widget container", params)

    def _get_widget_properties(self, params: JSONObject) -> JSONObject:
        return _found(self._catalog.widget(_object_id(params)), "widget", params)

    def _list_documents(self, params: JSONObject) -> JSONObject:
        if self.faults.ignore_paging:
            return self._every_document_id()
        cursor, limit = _paging_params(params)
        if cursor is None and limit is None:
            return self._every_document_id()
        try:
            ids, next_cursor = self._catalog.listing.page(cursor, limit)
        except InvalidArgument:
            raise _RequestError(
                400, "params.cursor is not a cursor this server gave", {"param": "cursor"}
            ) from None
        return {"documentIds": ids, "nextCursor": next_cursor}

    def _every_document_id(self) -> JSONObject:
        listing = self._catalog.listing
        version, reply = self._every_id
        if version != listing.version:
            reply = {"documentIds": listing.ids()}
            self._every_id = (listing.version, reply)
        return reply

    # Changes.

    async def mutate(
        self, document_id: Optional[str], kind: Optional[str], notify: bool
    ) -> Mutation:
        """Change a document (see LiveCatalog.mutate) and tell every open connection."""
        mutation = self._catalog.mutate(time.time(), document_id, kind)
        self.stats.mutations += 1
        if notify:
            await self.broadcast(_encode(mutation.notification()), notification=True)
        return mutation

    async def document_ids(self) -> List[str]:
        """Return the ids listed now (a copy)."""
        return self._catalog.listing.ids()

    async def _mutate_periodically(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            mutation = await self.mutate(None, None, notify=True)
            logger.info("%s %s %s", mutation.kind, mutation.document_id, mutation.object_id or "")

    # Serving.

    async def serve_until(
        self,
        stop: asyncio.Event,
        *,
        host: str,
        port: int,
        ssl_context: Optional[ssl.SSLContext],
        ready: Callable[[int], None],
    ) -> None:
        """Listen, call ``ready(port)``, serve until ``stop`` is set, then close everything."""
        self._closing = asyncio.Event()
        server = await serve(
            self._handle_connection,
            host,
            port,
            ssl=ssl_context,
            process_request=self._process_request,
            compression=None,
            max_size=_MAX_MESSAGE_SIZE,
            max_queue=_MAX_QUEUE,
            write_limit=_WRITE_LIMIT,
            open_timeout=_OPEN_TIMEOUT,
            close_timeout=_CLOSE_TIMEOUT,
            create_connection=_registering_connection_class(self._tcp_connections),
            logger=_websockets_logger,
        )
        mutating: Optional[asyncio.Future[None]] = None
        try:
            ready(server.sockets[0].getsockname()[1])
            if self._mutate_every is not None:
                mutating = asyncio.ensure_future(self._mutate_periodically(self._mutate_every))
            await stop.wait()
        finally:
            if mutating is not None:
                mutating.cancel()
                # Raises what made it stop early, if anything did.
                with contextlib.suppress(asyncio.CancelledError):
                    await mutating
            await self._shut_down(server)

    async def _shut_down(self, server: Server) -> None:
        assert self._closing is not None
        # Open connections get a 1001 close frame, handshakes in progress a 503.
        server.close()
        self._closing.set()  # cut short every handshake_delay
        # websockets would wait open_timeout for a handshake request that may never come.
        for connection in list(self._tcp_connections):
            if connection.request is None:
                connection.transport.abort()
        # A client that does not answer the closing handshake holds this up for _CLOSE_TIMEOUT
        # (twice: close frame, then TCP close).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2 * _CLOSE_TIMEOUT + 1)
        # Left over: handshakes that never got a request, connections accepted while closing.
        # Abort them, and let their handlers see it, so that no socket outlives the loop.
        for connection in list(self._tcp_connections):
            connection.transport.abort()
        if server.handler_tasks:
            await asyncio.wait(list(server.handler_tasks), timeout=_CLOSE_TIMEOUT)

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Optional[Response]:
        stats = self.stats
        stats.handshakes += 1
        recorded = stats.handshake_headers
        if len(recorded) >= _MAX_HANDSHAKES_RECORDED:
            del recorded[0]  # a long-running server must not grow without bound
        recorded.append(_header_dict(request.headers))
        delay = self.faults.handshake_delay
        if delay > 0:
            assert self._closing is not None
            # Wait on the closing event rather than sleep, so that stopping is not held up.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
        response = self._refusal(connection, request)
        if response is not None:
            stats.handshakes_refused += 1
        return response

    def _refusal(self, connection: ServerConnection, request: Request) -> Optional[Response]:
        """Return the response refusing this handshake, or None to accept it."""
        faults = self.faults
        if faults.redirect_to is not None:
            response = connection.respond(http.HTTPStatus.FOUND, "Moved.\n")
            response.headers["Location"] = faults.redirect_to
            return response
        status = faults.refuse_status
        count = faults.refuse_count
        if status is not None and (count is None or count > 0):
            if count is not None:
                faults.refuse_count = count - 1
            response = connection.respond(status, f"Refused on purpose ({status}).\n")
            if status in (429, 503):
                response.headers["Retry-After"] = "1"
            elif status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if self._tokens is not None:
            token = _bearer_token(request.headers)
            may_read = None if token is None else self._tokens.get(token)
            if may_read is None:
                response = connection.respond(
                    http.HTTPStatus.UNAUTHORIZED, "Missing or unknown token.\n"
                )
                response.headers["WWW-Authenticate"] = 'Bearer realm="documents"'
                return response
            if not may_read:
                return connection.respond(http.HTTPStatus.FORBIDDEN, "This token may not read.\n")
        return None

    async def _handle_connection(self, websocket: ServerConnection) -> None:
        connection = _ConnectionState(websocket)
        stats = self.stats
        self._connections.add(connection)
        stats.connections_opened += 1
        stats.open_connections += 1
        if stats.open_connections > stats.max_open_connections:
            stats.max_open_connections = stats.open_connections
        try:
            while True:
                idle_timeout = self.faults.idle_timeout
                if idle_timeout is None:
                    message = await websocket.recv()
                else:
                    try:
                        # Cancelling recv() loses nothing (websockets guarantees it).
                        message = await asyncio.wait_for(websocket.recv(), idle_timeout)
                    except asyncio.TimeoutError:
                        stats.idle_closes += 1
                        await websocket.close(CloseCode.GOING_AWAY, "idle timeout")
                        return
                await self._on_message(connection, message)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)
            stats.open_connections -= 1
            for delayed in list(connection.delayed_replies):
                delayed.cancel()

    async def _on_message(self, connection: _ConnectionState, message: Union[str, bytes]) -> None:
        faults = self.faults
        stats = self.stats
        self._request_number += 1
        number = self._request_number
        stats.requests += 1
        connection.requests_received += 1
        if faults.drop_after and connection.requests_received >= faults.drop_after:
            stats.connections_dropped += 1
            connection.websocket.transport.abort()
            return

        request_id, object_id, reply = self._reply_for(message)
        silent_every = faults.silent_every
        if (silent_every and number % silent_every == 0) or (
            object_id is not None and object_id in faults.silent_ids
        ):
            stats.requests_silenced += 1
            return
        if faults.max_in_flight and connection.in_flight >= faults.max_in_flight:
            busy = _error_reply(request_id, 429, "too many requests in flight on this connection")
            await self._send_reply(connection, _encode(busy), None)
            return
        text = _encode(reply)

        delay = faults.latency
        if faults.jitter:
            delay += self._random.uniform(0.0, faults.jitter)
        if delay > 0:
            connection.in_flight += 1
            delayed = asyncio.ensure_future(self._send_later(connection, delay, text, object_id))
            connection.delayed_replies.add(delayed)
            delayed.add_done_callback(connection.delayed_replies.discard)
        else:
            await self._send_reply(connection, text, object_id)

    def _reply_for(
        self, message: Union[str, bytes]
    ) -> Tuple[Optional[int], Optional[str], JSONObject]:
        """Return (request id, object id the request is about, reply) for one frame."""
        by_method = self.stats.requests_by_method
        try:
            request = _parse_envelope(message)
        except _RequestError as exc:
            by_method["(invalid)"] = by_method.get("(invalid)", 0) + 1
            return None, None, {"id": None, "error": exc.error}
        request_id: int = request["id"]
        method: Any = request.get("method")
        handler = self._handlers.get(method) if type(method) is str else None
        name: str = method if handler is not None else "(unknown)"
        by_method[name] = by_method.get(name, 0) + 1
        params = request.get("params", {})
        if type(params) is not dict:
            return request_id, None, _error_reply(request_id, 400, "params must be a JSON object")
        object_id = params.get("id")
        if type(object_id) is not str:
            object_id = None
        if handler is None:
            return (
                request_id,
                object_id,
                _error_reply(request_id, 400, "unknown method", {"method": method}),
            )
        error_code = self.faults.error_for.get(object_id) if object_id is not None else None
        if error_code is not None:
            reply = _error_reply(request_id, error_code, "error on purpose", {"id": object_id})
            return request_id, object_id, reply
        if object_id in self.faults.result_for:
            result = self.faults.result_for[object_id]
            return request_id, object_id, {"id": request_id, "result": result}
        try:
            return request_id, object_id, {"id": request_id, "result": handler(params)}
        except _RequestError as exc:
            return request_id, object_id, {"id": request_id, "error": exc.error}

    async def _send_later(
        self, connection: _ConnectionState, delay: float, text: str, object_id: Optional[str]
    ) -> None:
        try:
            await asyncio.sleep(delay)
            await self._send_reply(connection, text, object_id)
        except ConnectionClosed:
            pass
        finally:
            connection.in_flight -= 1

    async def _send_reply(
        self, connection: _ConnectionState, text: str, object_id: Optional[str]
    ) -> None:
        # Each counter goes up before its frame is sent, so that a client that has seen the
        # frame can rely on the counter (the loop thread may pause right after a send).
        websocket = connection.websocket
        faults = self.faults
        stats = self.stats
        self._reply_number += 1
        number = self._reply_number
        if faults.junk_every and number % faults.junk_every == 0 and faults.junk_kinds:
            kinds = faults.junk_kinds
            self._junk_number += 1
            stats.junk_frames_sent += 1
            kind = kinds[(self._junk_number - 1) % len(kinds)]
            await websocket.send(_junk_frame(kind, _UNUSED_ID_BASE + self._junk_number))
        stats.replies_sent += 1
        await websocket.send(text)
        if faults.duplicate_every and number % faults.duplicate_every == 0:
            stats.duplicates_sent += 1
            await websocket.send(text)
        if faults.notify_every and number % faults.notify_every == 0:
            document_id = object_id.split("/", 1)[0] if object_id else self._first_document_id
            changed = {"method": "DocumentChanged", "params": {"id": document_id}}
            stats.notifications_sent += 1
            await websocket.send(_encode(changed))

    @property
    def _first_document_id(self) -> str:
        first = self._catalog.listing.page(None, 1)[0]
        return first[0] if first else "doc-1"

    # Calls from other threads, run on the loop.

    async def broadcast(self, data: Union[str, bytes], *, notification: bool = False) -> int:
        """Send one frame to every open connection; return how many were sent to."""
        connections = list(self._connections)
        if notification:
            self.stats.notifications_sent += len(connections)
        await asyncio.gather(*(_send_quietly(c.websocket, data) for c in connections))
        return len(connections)

    async def drop_connections(self) -> int:
        """Abort every open connection's TCP connection; return how many."""
        connections = list(self._connections)
        for connection in connections:
            connection.websocket.transport.abort()
        self.stats.connections_dropped += len(connections)
        return len(connections)


def _error_reply(
    request_id: Optional[int], code: int, message: str, data: Optional[JSONObject] = None
) -> JSONObject:
    return {"id": request_id, "error": _RequestError(code, message, data).error}


def _object_id(params: JSONObject) -> str:
    object_id = params.get("id")
    if type(object_id) is not str:
        raise _RequestError(400, "params.id must be a string")
    return object_id


def _paging_params(params: JSONObject) -> Tuple[Optional[str], Optional[int]]:
    """Return ListDocuments' (cursor, limit), or raise for a value of the wrong type."""
    cursor = params.get("cursor")
    limit = params.get("limit")
    if cursor is not None and type(cursor) is not str:
        raise _RequestError(400, "params.cursor must be a string or null", {"param": "cursor"})
    # type() rather than isinstance(): True is an int, but not a limit.
    if limit is not None and (type(limit) is not int or limit < 1):
        raise _RequestError(400, "params.limit must be an integer >= 1 or null", {"param": "limit"})
    return cursor, limit


def _found(found: Optional[JSONObject], what: str, params: JSONObject) -> JSONObject:
    if found is None:
        raise _RequestError(404, f"no such {what}", {"id": params["id"]})
    return found


async def _send_quietly(websocket: ServerConnection, data: Union[str, bytes]) -> None:
    with contextlib.suppress(ConnectionClosed):
        await websocket.send(data)


@functools.lru_cache(maxsize=1)
def _shared_catalog() -> SampleCatalog:
    # Read-only, so every server in the process shares one copy.
    return load_catalog()


def _make_service(
    faults: Faults,
    stats: ServerStats,
    tokens: Optional[Mapping[str, bool]],
    generated: int,
    mutate_every: Optional[float],
    seed: Optional[int],
) -> _DocumentsService:
    """Build one server's service over its own changeable copy of the catalog.

    Raises:
        InvalidArgument: ``generated``, ``mutate_every`` or ``seed`` is out of range.
    """
    if mutate_every is not None and (
        isinstance(mutate_every, bool)
        or not isinstance(mutate_every, (int, float))
        or not 0 < mutate_every < float("inf")
    ):
        raise InvalidArgument(f"mutate_every must be seconds > 0 or None, got {mutate_every!r}")
    if seed is not None and type(seed) is not int:
        raise InvalidArgument(f"seed must be an integer or None, got {seed!r}")
    catalog = LiveCatalog(_shared_catalog(), generated=generated, seed=seed)
    every = None if mutate_every is None else float(mutate_every)
    return _DocumentsService(catalog, faults, stats, tokens, every)


def _url(host: str, port: int, secure: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'wss' if secure else 'ws'}://{shown}:{port}"


class SampleServer:
    """A sample server running on its own asyncio loop in one named daemon thread.

    Use :func:`run_sample_server` rather than calling :meth:`start` and :meth:`stop` yourself.

    Args:
        faults: The faults to apply; a fresh, all-off :class:`Faults` if None.
        tokens: Accepted bearer tokens -> whether each may read; None = no authentication.
        ssl_context: Serve ``wss://`` with this server-side context.
        host: The address to listen on.
        port: The port to listen on; 0 picks a free one.
        generated: List this many generated documents (``gen-2x2-n0000001`` ...) after the
            catalog's, up to 1,000,000.
        mutate_every: Change a random document every this many seconds (see :meth:`mutate`);
            None = never.
        seed: Seeds the random choices of :meth:`mutate`; None = a random seed.

    Raises:
        InvalidArgument: ``generated``, ``mutate_every`` or ``seed`` is out of range.

    Attributes:
        url: ``ws://host:port`` (``wss://`` with TLS), once started.
        port: The port actually listened on, once started.
        faults: The live :class:`Faults`; assign its attributes to change behaviour.
        stats: The live :class:`ServerStats`.
    """

    def __init__(
        self,
        *,
        faults: Optional[Faults] = None,
        tokens: Optional[Mapping[str, bool]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        generated: int = 0,
        mutate_every: Optional[float] = None,
        seed: Optional[int] = None,
    ) -> None:
        self.faults = faults if faults is not None else Faults()
        self.stats = ServerStats()
        self.url = ""
        self.port = 0
        self._host = host
        self._requested_port = port
        self._ssl_context = ssl_context
        self._service = _make_service(
            self.faults, self.stats, tokens, generated, mutate_every, seed
        )
        self._started = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_requested: Optional[asyncio.Event] = None
        self._run_error: Optional[BaseException] = None
        self._thread = threading.Thread(
            target=self._run, name=f"inspector-sample-server-{next(_thread_numbers)}", daemon=True
        )

    def start(self) -> None:
        """Start listening; return once the server accepts connections.

        Raises:
            OSError: The address could not be listened on.
            RuntimeError: The server was started before.
        """
        if self._thread.ident is not None:
            raise RuntimeError("Cannot restart a sample server; create a new one")
        self._thread.start()
        self._started.wait()
        if self._run_error is not None:
            self._thread.join()
            raise self._run_error

    def stop(self, timeout: Optional[float] = 30.0) -> None:
        """Close every connection, stop listening and join the thread; safe to call twice.

        Args:
            timeout: How long to wait for the thread; None = no limit.

        Raises:
            RuntimeError: The thread did not stop in time.
        """
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            # The loop is gone if the thread already finished; nothing left to stop then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_requested.set)
        if self._thread.ident is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"sample server thread {self._thread.name} did not stop")

    def notify(self, method: str, params: Optional[Mapping[str, Any]] = None) -> int:
        """Send the notification ``{"method": method, "params": params}`` to every connection.

        Returns:
            The number of open connections it was sent to.
        """
        message = _encode({"method": method, "params": dict(params or {})})
        return self._call(self._service.broadcast(message, notification=True))

    def send_raw(self, data: Union[str, bytes]) -> int:
        """Send one text (str) or binary (bytes) frame, as is, to every open connection.

        Returns:
            The number of open connections it was sent to.
        """
        return self._call(self._service.broadcast(data))

    def drop_connections(self) -> int:
        """Abort every open connection's TCP connection at once, with no close frame.

        Returns:
            The number of connections aborted.
        """
        return self._call(self._service.drop_connections())

    def mutate(
        self, document_id: Optional[str] = None, kind: Optional[str] = None, *, notify: bool = True
    ) -> Mutation:
        """Change one document now, bump its ``updatedAt`` and tell every open connection.

        The change is made, and the notification sent, before this returns; a client that then
        sends a request gets the changed document.

        Args:
            document_id: The document to change; None for one chosen at random among those
                ``ListDocuments`` names. Must be None for ``kind="add_document"``.
            kind: ``"sql"`` (a widget's SQL statement), ``"add_widget"``, ``"remove_widget"``,
                ``"add_document"`` (``added-<n>``: 2 containers x 2 widgets) or
                ``"remove_document"``; None for one chosen at random that fits the document.
            notify: Send ``DocumentChanged`` (``DocumentRemoved`` for a removal) to every open
                connection; False changes the document silently, as if the notification were
                lost.

        Returns:
            What changed: kind, document id, its new ``updatedAt`` (None if removed) and the
            widget concerned.

        Raises:
            InvalidArgument: The kind is unknown or does not fit the document, or the document
                does not exist.
            RuntimeError: The server is not running.
        """
        return self._call(self._service.mutate(document_id, kind, notify))

    def document_ids(self) -> List[str]:
        """Return the ids ``ListDocuments {}`` names now, in order: the expected listing.

        Raises:
            RuntimeError: The server is not running.
        """
        return self._call(self._service.document_ids())

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            coroutine.close()  # never to be awaited; closing it avoids a RuntimeWarning
            raise RuntimeError("the sample server is not running")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result(_CALL_TIMEOUT)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start(), or logged if it happens later
            if self._started.is_set():
                logger.error("sample server %s failed", self.url, exc_info=True)
            self._run_error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._stop_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()

        def ready(port: int) -> None:
            self.port = port
            self.url = _url(self._host, port, self._ssl_context is not None)
            self._started.set()

        await self._service.serve_until(
            self._stop_requested,
            host=self._host,
            port=self._requested_port,
            ssl_context=self._ssl_context,
            ready=ready,
        )


@contextlib.contextmanager
def run_sample_server(
    faults: Optional[Faults] = None,
    tokens: Optional[Mapping[str, bool]] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    generated: int = 0,
    mutate_every: Optional[float] = None,
    seed: Optional[int] = None,
) -> Iterator[SampleServer]:
    """Run a sample server for the duration of a ``with`` block.

    Args:
        faults: The faults to apply; a fresh, all-off :class:`Faults` if None.
        tokens: Accepted bearer tokens -> whether each may read; None = no authentication.
        ssl_context: Serve ``wss://`` with this server-side context.
        host: The address to listen on.
        port: The port to listen on; 0 (the default) picks a free one.
        generated: List this many generated documents after the catalog's (up to 1,000,000).
        mutate_every: Change a random document every this many seconds; None = never.
        seed: Seeds the random choices of changes; None = a random seed.

    Yields:
        The running server; it is stopped, and its thread joined, when the block exits.
    """
    server = SampleServer(
        faults=faults,
        tokens=tokens,
        ssl_context=ssl_context,
        host=host,
        port=port,
        generated=generated,
        mutate_every=mutate_every,
        seed=seed,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


# The command line.


def _id_and_code(text: str) -> Tuple[str, int]:
    object_id, sep, code = text.rpartition("=")
    if not sep or not object_id or not code.isdigit():
        raise argparse.ArgumentTypeError(f"expected ID=CODE, got {text!r}")
    return object_id, int(code)


def _junk_kind_list(text: str) -> Tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in JUNK_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(JUNK_KINDS)}, got {text!r}")
    return kinds


# (option, Faults attribute, type, metavar, help); the default is the attribute's default.
_FAULT_OPTIONS: Tuple[Tuple[str, str, Callable[[str], Any], Optional[str], str], ...] = (
    ("--latency", "latency", float, "SECONDS", "wait this long before each reply"),
    ("--jitter", "jitter", float, "SECONDS", "up to this many random seconds more per reply"),
    ("--silent-every", "silent_every", int, "N", "never answer every Nth request"),
    ("--drop-after", "drop_after", int, "N", "abort each connection's TCP on its Nth request"),
    ("--junk-every", "junk_every", int, "N", "send a junk frame before every Nth reply"),
    (
        "--junk-kinds",
        "junk_kinds",
        _junk_kind_list,
        "KIND,...",
        f"junk frames to send in turn, some of {','.join(JUNK_KINDS)}",
    ),
    ("--duplicate-every", "duplicate_every", int, "N", "send every Nth reply twice"),
    ("--notify-every", "notify_every", int, "N", "send DocumentChanged after every Nth reply"),
    ("--idle-timeout", "idle_timeout", float, "SECONDS", "close idle connections with 1001"),
    ("--max-in-flight", "max_in_flight", int, "N", "429 beyond N delayed replies pending"),
    ("--refuse-status", "refuse_status", int, "STATUS", "refuse handshakes with this status"),
    ("--refuse-count", "refuse_count", int, "N", "refuse only the next N handshakes"),
    ("--redirect-to", "redirect_to", str, "URL", "answer handshakes with 302 to this URL"),
    ("--handshake-delay", "handshake_delay", float, "SECONDS", "delay each handshake answer"),
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of the ``serve`` command (address, TLS, token, faults) to ``parser``.

    Args:
        parser: The parser (or subcommand parser) to add them to.
    """
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (%(default)s)")
    parser.add_argument(
        "--token-env",
        metavar="VAR",
        help="require 'Authorization: Bearer <token>', the token read from this environment "
        "variable (a secret never goes on a command line)",
    )
    parser.add_argument("--certfile", help="serve wss:// with this PEM certificate chain")
    parser.add_argument("--keyfile", help="the certificate's private key, if not in --certfile")
    documents = parser.add_argument_group("documents", "more documents, and documents that change")
    documents.add_argument(
        "--generated",
        type=int,
        default=0,
        metavar="N",
        help="list N generated documents after the catalog's, gen-2x2-n0000001 ... "
        "(2 containers x 2 widgets; up to 1000000)",
    )
    documents.add_argument(
        "--mutate-every",
        type=float,
        metavar="SECONDS",
        help="every SECONDS change a random document (a widget's SQL, a widget added or "
        "removed, a document added or removed), bump its updatedAt and send DocumentChanged "
        "(or DocumentRemoved) to every connection",
    )
    documents.add_argument(
        "--seed", type=int, metavar="N", help="seed the random changes, to repeat a run"
    )
    group = parser.add_argument_group("faults", "misbehave on purpose, to test clients")
    defaults = Faults()
    for option, attribute, convert, metavar, help_text in _FAULT_OPTIONS:
        group.add_argument(
            option,
            dest=attribute,
            type=convert,
            default=getattr(defaults, attribute),
            metavar=metavar,
            help=help_text,
        )
    group.add_argument(
        "--silent-id",
        dest="silent_ids",
        action="append",
        default=[],
        metavar="ID",
        help="never answer requests for this object id (repeatable)",
    )
    group.add_argument(
        "--error-for",
        type=_id_and_code,
        action="append",
        default=[],
        metavar="ID=CODE",
        help="answer requests for ID with error CODE (repeatable)",
    )
    group.add_argument(
        "--ignore-paging",
        action="store_true",
        help="answer ListDocuments with every id and no nextCursor, ignoring cursor and limit "
        "(a server that does not page)",
    )


def faults_from_args(args: argparse.Namespace) -> Faults:
    """Build the :class:`Faults` that parsed ``serve`` options ask for.

    Raises:
        ValueError: An option has a value out of range.
    """
    chosen = {attribute: getattr(args, attribute) for _, attribute, *_ in _FAULT_OPTIONS}
    return Faults(
        silent_ids=args.silent_ids,
        error_for=dict(args.error_for),
        ignore_paging=args.ignore_paging,
        **chosen,
    )


def serve_from_args(args: argparse.Namespace) -> int:
    """Run the sample server as parsed ``serve`` options say, until SIGINT or SIGTERM.

    Prints ``listening on ws://HOST:PORT`` (one line, flushed) once connections are accepted.

    Args:
        args: Options added by :func:`add_serve_arguments`, parsed.

    Returns:
        The exit status: 0 after a signal, 1 if it could not listen, 2 for bad options.
    """
    try:
        faults = faults_from_args(args)
        tokens: Optional[Dict[str, bool]] = None
        if args.token_env:
            token = os.environ.get(args.token_env)
            if not token:
                raise ValueError(f"environment variable {args.token_env} is not set")
            tokens = {token: True}
        ssl_context: Optional[ssl.SSLContext] = None
        if args.certfile:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(args.certfile, args.keyfile)
    except (ValueError, OSError) as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    try:
        service = _make_service(
            faults, ServerStats(), tokens, args.generated, args.mutate_every, args.seed
        )
    except InvalidArgument as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2

    def ready(port: int) -> None:
        print(f"listening on {_url(args.host, port, ssl_context is not None)}", flush=True)

    async def serve_until_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            # Not available on Windows: Ctrl-C arrives as KeyboardInterrupt there.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal_number, stop.set)
        await service.serve_until(
            stop, host=args.host, port=args.port, ssl_context=ssl_context, ready=ready
        )

    try:
        asyncio.run(serve_until_signal())
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
