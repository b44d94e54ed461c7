"""A minimal HTTP/2 server (RFC 9113) over asyncio TLS for the simulators: plain synchronous handlers.

Fake Apple services must stay out of the way of load runs, so there is no ASGI layer and no task per
request: a request is answered in the event-loop turn that brings its last frame, and answers leave in
a few large transport writes, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from muster.protocols.h2_flow import OutboundBodies

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 2.0
# Answers leave in writes of at most this many, so the client reads the first while later ones are made.
ANSWERS_PER_WRITE = 16


@dataclass(frozen=True, slots=True)
class H2Request:
    """One request. `headers` excludes pseudo-headers; `body` is cut to the server's limit + 1 byte."""

    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True, slots=True)
class H2Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""


Handler = Callable[[H2Request], H2Reply]


class _PendingRequest:
    __slots__ = ("body", "headers", "size")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body: list[bytes] = []
        self.size = 0


class _ServerConnection(asyncio.Protocol):
    def __init__(
        self, handler: Handler, max_concurrent_streams: int, max_body_bytes: int, registry: set[_ServerConnection]
    ) -> None:
        self._handler = handler
        self._registry = registry
        self._max_body_bytes = max_body_bytes
        # Requests are checked (the fake must be as strict as Apple); replies come from our own handlers.
        config = h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False
        )
        self._h2 = h2.connection.H2Connection(config)
        self._h2.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams}
        )
        self._pending: dict[int, _PendingRequest] = {}
        self._bodies = OutboundBodies(self._h2)  # reply bodies waiting for flow-control window
        self._transport: asyncio.Transport | None = None
        self._unflushed = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is not an asyncio.Transport subclass
        self._registry.add(self)  # only now: a connection that failed its TLS handshake never gets here
        if transport.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
            transport.close()  # HTTP/2 only, like APNs
            return
        self._h2.initiate_connection()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            logger.warning("closing an HTTP/2 connection after a protocol error: %s", error)
            self.shut_down()
            return
        for event in events:
            self._dispatch(event)
            if self._unflushed >= ANSWERS_PER_WRITE:
                self._flush()
        self._flush()

    def shut_down(self) -> None:
        """GOAWAY naming the last request answered, then close."""
        if self._transport is None or self._transport.is_closing():
            return
        with contextlib.suppress(h2.exceptions.H2Error):
            self._h2.close_connection()
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._pending[event.stream_id or 0] = _PendingRequest(list(event.headers or ()))
        elif isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.StreamEnded):
            self._answer(event.stream_id or 0)
        elif isinstance(event, h2.events.StreamReset):
            self._pending.pop(event.stream_id or 0, None)
            self._bodies.forget(event.stream_id or 0)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._bodies.resume()

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id or 0
        self._h2.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        pending = self._pending.get(stream_id)
        if pending is None or not event.data:
            return
        # Keep one byte past the limit at most: the handler can tell "too large" without a flood in memory.
        room = self._max_body_bytes + 1 - pending.size
        if room > 0:
            pending.body.append(event.data[:room])
            pending.size += min(room, len(event.data))

    def _answer(self, stream_id: int) -> None:
        pending = self._pending.pop(stream_id, None)
        if pending is None:
            return
        reply = self._handle(_request(pending))
        headers = [(b":status", str(reply.status).encode()), *reply.headers]
        # The client may have reset the stream in the same read (h2 has then closed it already).
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            if reply.body:
                headers.append((b"content-length", str(len(reply.body)).encode()))
                self._h2.send_headers(stream_id, headers)
                self._bodies.send(stream_id, reply.body)
            else:
                self._h2.send_headers(stream_id, headers, end_stream=True)
        self._unflushed += 1

    def _handle(self, request: H2Request) -> H2Reply:
        try:
            return self._handler(request)
        except Exception:
            logger.exception("HTTP/2 handler failed for %s %s", request.method, request.path)
            return H2Reply(500, [])

    def _flush(self) -> None:
        self._unflushed = 0
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


def _request(pending: _PendingRequest) -> H2Request:
    pseudo = {name: value for name, value in pending.headers if name.startswith(b":")}
    regular = [(name, value) for name, value in pending.headers if not name.startswith(b":")]
    method, path = pseudo.get(b":method", b""), pseudo.get(b":path", b"")
    return H2Request(method.decode("latin-1"), path.decode("latin-1"), regular, b"".join(pending.body))


@asynccontextmanager
async def serve_h2(
    handler: Handler,
    ssl_context: ssl.SSLContext,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_concurrent_streams: int = 1000,
    max_body_bytes: int = 64 * 1024,
) -> AsyncIterator[int]:
    """Serve `handler` over TLS + HTTP/2 (the context must offer ALPN "h2"); yields the bound port.

    On exit, every connection gets a GOAWAY and is closed.
    """
    connections: set[_ServerConnection] = set()

    def accept() -> _ServerConnection:
        return _ServerConnection(handler, max_concurrent_streams, max_body_bytes, connections)

    server = await asyncio.get_running_loop().create_server(accept, host, port, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await _close_all(list(connections))
        await server.wait_closed()


async def _close_all(connections: list[_ServerConnection]) -> None:
    for connection in connections:
        connection.shut_down()
    if connections:
        await asyncio.wait([connection.closed for connection in connections], timeout=SHUTDOWN_GRACE_SECONDS)
    for connection in connections:
        if not connection.closed.done():
            connection.abort()  # a peer that never completes the TLS close
