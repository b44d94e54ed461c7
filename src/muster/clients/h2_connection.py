"""A small HTTP/2 client (RFC 9113) on the sans-IO `h2` library over asyncio TLS.

Made for many small concurrent requests to one origin, as APNs wants them (spec §6.2: one long-lived
connection, many concurrent streams). Each request is a stream; the frames of a burst of requests leave
in a few transport writes (TLS records), not one per request. `H2Client` keeps one connection and
replaces it after GOAWAY, loss or stream-ID exhaustion.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hpack import HeaderTuple
from hpack import NeverIndexedHeaderTuple as _Unindexed

from muster.protocols.h2_flow import OutboundBodies

_Header = tuple[str, str] | HeaderTuple

# Requests leave in writes of at most this many, so the server starts on the first ones while later
# ones are still being encoded: the two sides work in parallel instead of in turns.
REQUESTS_PER_WRITE = 16
# A request unprocessed by the server (RFC 9113 §8.7) is sent again at once, on a fresh connection.
UNPROCESSED_RESENDS = 2


class H2Error(Exception):
    """The request got no HTTP response."""


class ConnectError(H2Error):
    """No usable HTTP/2 connection could be made (TCP, TLS or ALPN failure)."""


class ConnectionClosed(H2Error):
    """The connection ended before the response arrived; the server may have processed the request."""


class StreamRefused(ConnectionClosed):
    """The server did not process the request (REFUSED_STREAM, or above a GOAWAY's last stream ID)."""


class StreamReset(H2Error):
    """The server reset the stream."""


class ResponseTimeout(H2Error):
    """No complete response within the response timeout."""


class BadResponse(H2Error):
    """The response was malformed or over the size limit; the stream was cancelled."""


@dataclass(frozen=True, slots=True)
class H2Response:
    status: int
    headers: dict[str, str]  # the first value of each field
    body: bytes


@dataclass(slots=True)
class _Stream:
    future: asyncio.Future[H2Response]
    deadline: float
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)
    size: int = 0

    def fail(self, error: H2Error) -> None:
        # A cancelled caller's future is already done; the cancellation is what it sees.
        if not self.future.done():
            self.future.set_exception(error)


_STATUS = re.compile(rb"[1-5][0-9][0-9]")
_METHOD = re.compile(r"[A-Z]+")
_PATH = re.compile(r"/[!-~]*")
_FIELD_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")  # a lowercase token (RFC 9110 §5.1)
_BAD_FIELD_VALUE = re.compile(r"[\0\r\n]|^[ \t]|[ \t]$")  # RFC 9113 §8.2.1
_CONNECTION_SPECIFIC = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})


def _check_fields(method: str, path: str, headers: list[tuple[str, str]]) -> None:
    if not _METHOD.fullmatch(method) or not _PATH.fullmatch(path):
        raise ValueError("invalid method or path")
    for name, value in headers:
        if not _FIELD_NAME.fullmatch(name) or _BAD_FIELD_VALUE.search(value) or name in _CONNECTION_SPECIFIC:
            raise ValueError(f"header field {name!r} cannot be sent over HTTP/2")


class H2Connection(asyncio.Protocol):
    """One client HTTP/2 connection; open it with `open_h2_connection`."""

    def __init__(self, authority: str, *, response_timeout: float, max_response_bytes: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._authority = authority
        self._response_timeout = response_timeout
        self._max_response_bytes = max_response_bytes
        # `_check_fields` stands in for h2's outbound checks, which cost a fifth of the CPU per request.
        config = h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False
        )
        self._h2 = h2.connection.H2Connection(config)
        self._h2.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.ENABLE_PUSH: 0}
        )
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._bodies = OutboundBodies(self._h2)  # request bodies waiting for flow-control window
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._max_streams = 1  # until the server's SETTINGS say otherwise
        self.settled: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._flush_scheduled = False
        self._unflushed = 0
        self._sweep_scheduled = False
        self.usable = True

    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> H2Response:
        """Send one request as a new stream and wait for its complete response.

        Raises ValueError, before sending anything, for a header field HTTP/2 does not allow.
        """
        _check_fields(method, path, headers)
        while len(self._streams) >= self._max_streams and self.usable:
            await self._wait_for_slot()
        if not self.usable:
            raise StreamRefused("the connection takes no new requests")
        try:
            stream_id = self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self._retire()
            raise StreamRefused("stream IDs exhausted on this connection") from None
        # Paths are unique per request (APNs: the device token): indexing them would only churn HPACK tables.
        fields: list[_Header] = [(":method", method), (":scheme", "https"), (":authority", self._authority)]
        fields += [_Unindexed(":path", path), *headers]
        try:
            self._h2.send_headers(stream_id, fields, end_stream=not body)
        except h2.exceptions.ProtocolError as error:  # e.g. the server lowered its stream limit meanwhile
            raise StreamRefused(f"cannot open a stream: {error}") from None
        stream = _Stream(self._loop.create_future(), self._loop.time() + self._response_timeout)
        self._streams[stream_id] = stream
        if body:
            self._bodies.send(stream_id, body)
        self._unflushed += 1
        if self._unflushed >= REQUESTS_PER_WRITE:
            self._flush()
        else:
            self._schedule_flush()
        self._schedule_sweep()
        try:
            return await stream.future
        except asyncio.CancelledError:
            self._cancel_stream(stream_id)
            raise

    async def _wait_for_slot(self) -> None:
        waiter = self._loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_waiter()  # pass the slot on rather than lose it
            raise

    def _wake_waiter(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _cancel_stream(self, stream_id: int) -> None:
        if self._streams.pop(stream_id, None) is None:
            return
        self._bodies.forget(stream_id)
        with contextlib.suppress(h2.exceptions.H2Error):
            self._h2.reset_stream(stream_id, ErrorCodes.CANCEL)
        self._schedule_flush()
        self._stream_finished()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is not an asyncio.Transport subclass
        self._h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            self._abandon(ConnectionClosed(f"HTTP/2 protocol error from the server: {error}"))
            return
        for event in events:
            self._dispatch(event)
        # Scheduled after the woken requests: their follow-up requests leave in the same write.
        self._schedule_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._abandon(ConnectionClosed("the connection was lost"))
        if not self.settled.done():
            self.settled.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            self._on_response_headers(event)
        elif isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.StreamEnded):
            self._on_stream_ended(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._on_stream_reset(event)
        elif isinstance(event, h2.events.WindowUpdated):
            self._bodies.resume()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._on_settings()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._on_goaway(event.last_stream_id or 0)

    def _on_response_headers(self, event: h2.events.ResponseReceived) -> None:
        stream = self._streams.get(event.stream_id or 0)
        if stream is None:
            return
        for name, value in event.headers or ():
            if name != b":status":
                stream.headers.setdefault(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
            elif _STATUS.fullmatch(bytes(value)):  # h2 checks it is there, not what it holds
                stream.status = int(value)
            else:
                self._refuse_response(event.stream_id or 0, "malformed :status")
                return

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id or 0
        self._h2.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        stream = self._streams.get(stream_id)
        if stream is None or event.data is None:
            return
        stream.size += len(event.data)
        if stream.size > self._max_response_bytes:
            self._refuse_response(stream_id, f"response body over {self._max_response_bytes} bytes")
            return
        stream.body.append(event.data)

    def _refuse_response(self, stream_id: int, reason: str) -> None:
        self._streams[stream_id].fail(BadResponse(reason))
        self._cancel_stream(stream_id)

    def _on_stream_ended(self, stream_id: int | None) -> None:
        stream = self._streams.pop(stream_id or 0, None)
        if stream is None:
            return
        if not stream.future.done():
            stream.future.set_result(H2Response(stream.status, stream.headers, b"".join(stream.body)))
        self._stream_finished()

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self._streams.pop(event.stream_id or 0, None)
        self._bodies.forget(event.stream_id or 0)
        if stream is None:
            return
        if event.error_code == ErrorCodes.REFUSED_STREAM:
            stream.fail(StreamRefused("the server refused the stream"))
        else:
            stream.fail(StreamReset(f"the server reset the stream: {event.error_code!r}"))
        self._stream_finished()

    def _on_settings(self) -> None:
        self._max_streams = max(1, self._h2.remote_settings.max_concurrent_streams)
        self._bodies.resume()  # INITIAL_WINDOW_SIZE may have grown
        free = self._max_streams - len(self._streams)
        while free > 0 and self._slot_waiters:
            self._wake_waiter()
            free -= 1
        if not self.settled.done():
            self.settled.set_result(None)

    def _on_goaway(self, last_stream_id: int) -> None:
        # h2 accepts no frames after GOAWAY, so even the streams the server did process cannot finish.
        self._abandon(ConnectionClosed("the server sent GOAWAY"), last_stream_id)

    def _stream_finished(self) -> None:
        self._wake_waiter()
        if not self.usable and not self._streams:
            self._close_transport()

    def _retire(self) -> None:
        """Take no new requests (waiters wake to find out); close once the streams in flight have finished."""
        self.usable = False
        while self._slot_waiters:
            self._wake_waiter()
        if not self._streams:
            self._close_transport()

    def _abandon(self, error: ConnectionClosed, last_processed: int | None = None) -> None:
        """Fail every stream in flight, those above `last_processed` as unprocessed, and close."""
        streams, self._streams = self._streams, {}
        self._bodies.clear()
        unprocessed = StreamRefused(f"{error}; the request was not processed")
        for stream_id, stream in streams.items():
            refused = last_processed is not None and stream_id > last_processed
            stream.fail(unprocessed if refused else error)
        self._retire()

    def _close_transport(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            with contextlib.suppress(h2.exceptions.H2Error):
                self._h2.close_connection()
            self._flush()
            self._transport.close()

    async def aclose(self) -> None:
        """Fail the requests in flight, say GOAWAY and wait (briefly) for the TLS close."""
        self._abandon(ConnectionClosed("the client closed the connection"))
        self._close_transport()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout=2.0)
        except TimeoutError:
            if self._transport is not None:
                self._transport.abort()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._unflushed = 0
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _schedule_sweep(self) -> None:
        # One timer per connection, not one per request: streams are kept in the order they started.
        if not self._sweep_scheduled:
            self._sweep_scheduled = True
            self._loop.call_later(min(1.0, self._response_timeout), self._sweep)

    def _sweep(self) -> None:
        self._sweep_scheduled = False
        now = self._loop.time()
        for stream_id, stream in list(self._streams.items()):
            if stream.deadline > now:
                break
            stream.fail(ResponseTimeout(f"no response within {self._response_timeout} s"))
            self._cancel_stream(stream_id)
        if self._streams:
            self._schedule_sweep()


async def open_h2_connection(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    connect_timeout: float = 10.0,
    response_timeout: float = 15.0,
    max_response_bytes: int = 64 * 1024,
) -> H2Connection:
    """Connect with TLS, insist on ALPN "h2" and wait for the server's SETTINGS (its stream limit)."""
    loop = asyncio.get_running_loop()
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def protocol() -> H2Connection:
        return H2Connection(authority, response_timeout=response_timeout, max_response_bytes=max_response_bytes)

    try:
        async with asyncio.timeout(connect_timeout):
            transport, connection = await loop.create_connection(protocol, host, port, ssl=ssl_context)
            try:
                await _settle(connection, transport.get_extra_info("ssl_object").selected_alpn_protocol())
            except BaseException:
                transport.abort()
                raise
    except (OSError, TimeoutError) as error:  # ssl.SSLError is an OSError
        raise ConnectError(f"cannot connect to {authority}: {error!r}") from error
    return connection


async def _settle(connection: H2Connection, alpn: str | None) -> None:
    if alpn != "h2":
        raise ConnectError(f"the server does not speak HTTP/2 (ALPN {alpn!r})")
    await connection.settled  # the first SETTINGS: the server's stream limit
    if not connection.usable:
        raise ConnectError("the server closed the connection before its SETTINGS")


class H2Client:
    """Requests to one origin over one HTTP/2 connection at a time, reconnecting when it ends.

    Requests the server did not process (GOAWAY, REFUSED_STREAM) are sent again on a new connection;
    any other failure is raised as an `H2Error` for the caller to judge.
    """

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext, *, response_timeout: float = 15.0) -> None:
        self._host, self._port, self._ssl_context = host, port, ssl_context
        self._response_timeout = response_timeout
        self._current: H2Connection | None = None
        self._connecting: asyncio.Future[H2Connection] | None = None
        self._connections: set[H2Connection] = set()
        self._closed = False

    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> H2Response:
        resends = 0
        while True:
            connection = await self._connection()
            try:
                return await connection.request(method, path, headers, body)
            except StreamRefused:
                resends += 1
                if resends > UNPROCESSED_RESENDS:
                    raise

    async def _connection(self) -> H2Connection:
        current = self._current
        if current is not None and current.usable:
            return current
        if self._closed:
            raise ConnectionClosed("the client is closed")
        if self._connecting is None:
            # One connection attempt shared by every waiting request; a failure fails them all at once.
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connect_finished)
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> H2Connection:
        connection = await open_h2_connection(
            self._host, self._port, self._ssl_context, response_timeout=self._response_timeout
        )
        self._current = connection
        self._connections.add(connection)
        connection.closed.add_done_callback(lambda _: self._connections.discard(connection))
        return connection

    def _connect_finished(self, attempt: asyncio.Future[H2Connection]) -> None:
        self._connecting = None
        if not attempt.cancelled():
            attempt.exception()  # retrieved here, so nobody waiting is not an unhandled error

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, H2Error):
                await self._connecting
        await asyncio.gather(*(connection.aclose() for connection in list(self._connections)))
