import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.clients.h2_connection import (
    REQUESTS_PER_WRITE,
    BadResponse,
    ConnectError,
    ConnectionClosed,
    H2Client,
    H2Connection,
    H2Error,
    ResponseTimeout,
    StreamRefused,
    StreamReset,
    open_h2_connection,
)
from muster.simulators.apns import issue_server_certificate, simulator_ca_pem

Request = tuple[int, dict[bytes, bytes], bytes]  # stream ID, headers, body
Contexts = tuple[ssl.SSLContext, ssl.SSLContext]  # server, client


class ScriptedServer(asyncio.Protocol):
    """An HTTP/2 server whose every move the test scripts: `script(server, request)` runs per request."""

    def __init__(self, script: Callable[["ScriptedServer", Request], None], settings: dict[SettingCodes, int]) -> None:
        self.script = script
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self.requests: list[Request] = []
        self.resets: list[tuple[int, int]] = []
        self.open: dict[int, tuple[dict[bytes, bytes], bytearray]] = {}
        self.peak_open = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.open[event.stream_id] = (dict(event.headers), bytearray())
                self.peak_open = max(self.peak_open, len(self.open))
            elif isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                self.open[event.stream_id][1].extend(event.data)
            elif isinstance(event, h2.events.StreamEnded):
                headers, body = self.open[event.stream_id]
                self.requests.append((event.stream_id, headers, bytes(body)))
                self.script(self, (event.stream_id, headers, bytes(body)))
            elif isinstance(event, h2.events.StreamReset):
                self.open.pop(event.stream_id, None)
                self.resets.append((event.stream_id, event.error_code))
        self.flush()

    def answer(self, stream_id: int, status: int = 200, body: bytes = b"") -> None:
        self.open.pop(stream_id, None)
        self.h2.send_headers(stream_id, [(b":status", str(status).encode()), (b"x-stream", str(stream_id).encode())])
        self.h2.send_data(stream_id, body, end_stream=True)

    def flush(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())


def echo(server: ScriptedServer, request: Request) -> None:
    stream_id, headers, body = request
    server.answer(stream_id, 200, headers[b":path"] + b" " + body)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Contexts:
    directory: Path = tmp_path_factory.mktemp("h2")
    certificate, key = issue_server_certificate("127.0.0.1")
    (directory / "server.crt").write_bytes(certificate)
    (directory / "server.key").write_bytes(key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "server.crt", directory / "server.key")
    server.set_alpn_protocols(["h2"])
    client = ssl.create_default_context(cadata=simulator_ca_pem().decode())
    client.set_alpn_protocols(["h2"])
    return server, client


Start = Callable[..., Awaitable[tuple[int, list[ScriptedServer]]]]


@pytest.fixture
async def scripted(tls: Contexts) -> AsyncIterator[Start]:
    """Start a scripted server: `await scripted(script, **settings)` -> (port, its connections)."""
    servers: list[asyncio.Server] = []

    async def start(
        script: Callable[[ScriptedServer, Request], None] = echo, **settings: int
    ) -> tuple[int, list[ScriptedServer]]:
        codes = {SettingCodes[name.upper()]: value for name, value in settings.items()}
        connections: list[ScriptedServer] = []

        def accept() -> ScriptedServer:
            connections.append(ScriptedServer(script, codes))
            return connections[-1]

        server = await asyncio.get_running_loop().create_server(accept, "127.0.0.1", 0, ssl=tls[0])
        servers.append(server)
        return server.sockets[0].getsockname()[1], connections

    yield start
    for server in servers:
        server.close()


async def test_request_and_response(scripted: Start, tls: Contexts) -> None:
    port, _ = await scripted()
    connection = await open_h2_connection("127.0.0.1", port, tls[1])

    response = await connection.request("POST", "/3/device/ab", [("apns-topic", "t")], b"hello")
    await connection.aclose()

    assert (response.status, response.body) == (200, b"/3/device/ab hello")
    assert response.headers["x-stream"] == "1"


async def test_concurrency_peak_matches_the_server_limit(scripted: Start, tls: Contexts) -> None:
    def answer_in_threes(server: ScriptedServer, request: Request) -> None:
        if len(server.open) == 3 or len(server.requests) == 10:
            for stream_id in list(server.open):
                server.answer(stream_id)

    port, connections = await scripted(answer_in_threes, max_concurrent_streams=3)
    client = H2Client("127.0.0.1", port, tls[1])

    await asyncio.gather(*(client.request("POST", f"/{n}", [], b"x") for n in range(10)))
    await client.aclose()

    assert [c.peak_open for c in connections] == [3]
    assert len(connections[0].requests) == 10


async def test_bodies_wait_for_flow_control_window(scripted: Start, tls: Contexts) -> None:
    port, _ = await scripted(initial_window_size=10)
    client = H2Client("127.0.0.1", port, tls[1])
    bodies = [bytes([n]) * 1000 for n in range(5)]

    responses = await asyncio.gather(*(client.request("POST", "/", [], body) for body in bodies))
    await client.aclose()

    assert [r.body for r in responses] == [b"/ " + body for body in bodies]


async def test_unprocessed_requests_are_resent_on_a_new_connection(scripted: Start, tls: Contexts) -> None:
    def goaway_on_first_connection(server: ScriptedServer, request: Request) -> None:
        if server is connections[0]:
            server.h2.close_connection(last_stream_id=0)  # nothing processed: safe to send again
        else:
            echo(server, request)

    port, connections = await scripted(goaway_on_first_connection)
    client = H2Client("127.0.0.1", port, tls[1])

    response = await client.request("POST", "/again", [], b"")
    await client.aclose()

    assert response.body == b"/again "
    assert len(connections) == 2


async def test_goaway_after_processing_fails_the_request(scripted: Start, tls: Contexts) -> None:
    def goaway(server: ScriptedServer, request: Request) -> None:
        server.h2.close_connection(last_stream_id=request[0], additional_data=b'{"reason":"Shutdown"}')

    port, connections = await scripted(goaway)
    client = H2Client("127.0.0.1", port, tls[1])

    with pytest.raises(ConnectionClosed) as failure:
        await client.request("POST", "/", [], b"")
    await client.aclose()

    assert not isinstance(failure.value, StreamRefused)
    assert len(connections) == 1


async def test_reset_stream_is_an_error(scripted: Start, tls: Contexts) -> None:
    port, _ = await scripted(lambda server, request: server.h2.reset_stream(request[0], ErrorCodes.INTERNAL_ERROR))
    client = H2Client("127.0.0.1", port, tls[1])

    with pytest.raises(StreamReset, match="INTERNAL_ERROR"):
        await client.request("POST", "/", [], b"")
    await client.aclose()


async def test_refused_stream_is_resent_then_reported(scripted: Start, tls: Contexts) -> None:
    def refuse(server: ScriptedServer, request: Request) -> None:
        server.h2.reset_stream(request[0], ErrorCodes.REFUSED_STREAM)

    port, connections = await scripted(refuse)
    client = H2Client("127.0.0.1", port, tls[1])

    with pytest.raises(StreamRefused):
        await client.request("POST", "/", [], b"")
    await client.aclose()

    assert len(connections[0].requests) == 3  # the first try and two resends


async def test_lost_connection_fails_in_flight_requests_then_reconnects(scripted: Start, tls: Contexts) -> None:
    def drop_first(server: ScriptedServer, request: Request) -> None:
        if len(connections) == 1:
            server.transport.abort()
        else:
            echo(server, request)

    port, connections = await scripted(drop_first)
    client = H2Client("127.0.0.1", port, tls[1])

    with pytest.raises(ConnectionClosed):
        await client.request("POST", "/lost", [], b"")
    response = await client.request("POST", "/next", [], b"")
    await client.aclose()

    assert response.body == b"/next "
    assert len(connections) == 2


async def test_response_timeout_cancels_the_stream(scripted: Start, tls: Contexts) -> None:
    port, connections = await scripted(lambda server, request: None)
    client = H2Client("127.0.0.1", port, tls[1], response_timeout=0.05)

    with pytest.raises(ResponseTimeout):
        await client.request("POST", "/", [], b"")
    await client.aclose()

    assert connections[0].resets == [(1, ErrorCodes.CANCEL)]


async def test_oversized_response_is_refused(scripted: Start, tls: Contexts) -> None:
    port, _ = await scripted(lambda server, request: server.answer(request[0], 200, b"x" * 5000))
    connection = await open_h2_connection("127.0.0.1", port, tls[1], max_response_bytes=4096)

    with pytest.raises(BadResponse):
        await connection.request("POST", "/", [], b"")
    await connection.aclose()


async def test_malformed_status_is_refused(scripted: Start, tls: Contexts) -> None:
    def bad_status(server: ScriptedServer, request: Request) -> None:
        server.h2.send_headers(request[0], [(b":status", b"2x0")], end_stream=True)

    port, _ = await scripted(bad_status)
    connection = await open_h2_connection("127.0.0.1", port, tls[1])

    with pytest.raises(BadResponse, match="status"):
        await connection.request("POST", "/", [], b"")
    await connection.aclose()


async def test_cancelled_request_resets_its_stream(scripted: Start, tls: Contexts) -> None:
    port, connections = await scripted(lambda server, request: None)
    connection = await open_h2_connection("127.0.0.1", port, tls[1])
    request = asyncio.ensure_future(connection.request("POST", "/", [], b"x"))
    while not connections[0].requests:
        await asyncio.sleep(0.01)

    request.cancel()
    while not connections[0].resets:
        await asyncio.sleep(0.01)
    await connection.aclose()

    assert connections[0].resets == [(1, ErrorCodes.CANCEL)]


async def test_connect_failures(tls: Contexts, unused_tcp_port: int) -> None:
    with pytest.raises(ConnectError):
        await open_h2_connection("127.0.0.1", unused_tcp_port, tls[1])
    client = H2Client("127.0.0.1", unused_tcp_port, tls[1])
    with pytest.raises(ConnectError):
        await client.request("POST", "/", [], b"")
    await client.aclose()


async def test_server_without_h2_is_refused(tls: Contexts, tmp_path: Path) -> None:
    certificate, key = issue_server_certificate("127.0.0.1")
    (tmp_path / "server.crt").write_bytes(certificate)
    (tmp_path / "server.key").write_bytes(key)
    http1 = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    http1.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    http1.set_alpn_protocols(["http/1.1"])
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=http1)

    with pytest.raises(ConnectError, match="ALPN"):
        await open_h2_connection("127.0.0.1", server.sockets[0].getsockname()[1], tls[1])
    server.close()


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/", [("Upper", "x")]), ("/", [("topic", "a\r\nb")]), ("/", [("connection", "close")]), ("no-slash", [])],
)
async def test_fields_http2_cannot_carry_are_refused_before_sending(
    scripted: Start, tls: Contexts, path: str, headers: list[tuple[str, str]]
) -> None:
    port, connections = await scripted()
    connection = await open_h2_connection("127.0.0.1", port, tls[1])

    with pytest.raises(ValueError):
        await connection.request("POST", path, headers, b"")
    assert (await connection.request("POST", "/", [], b"")).status == 200
    await connection.aclose()

    assert len(connections[0].requests) == 1


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def connected_in_memory() -> tuple[H2Connection, RecordingTransport, h2.connection.H2Connection]:
    """A client connection past its handshake with an in-memory server; nothing written yet after that."""
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    transport = RecordingTransport()
    connection = H2Connection("apns", response_timeout=15.0, max_response_bytes=4096)
    connection.connection_made(transport)
    connection.data_received(server.data_to_send())  # the server's SETTINGS
    await asyncio.sleep(0)
    server.receive_data(b"".join(transport.writes))  # the client's preface and SETTINGS ACK
    transport.writes.clear()
    return connection, transport, server


async def test_requests_of_one_turn_leave_in_few_writes() -> None:
    connection, transport, server = await connected_in_memory()
    count = REQUESTS_PER_WRITE * 2 + 1

    requests = [asyncio.ensure_future(connection.request("POST", f"/{n}", [], b"x")) for n in range(count)]
    for _ in range(3):
        await asyncio.sleep(0)

    assert len(transport.writes) == 3  # two full batches and the remainder, not one write per request
    events = server.receive_data(b"".join(transport.writes))
    assert sum(isinstance(event, h2.events.RequestReceived) for event in events) == count
    for request in requests:
        request.cancel()
    await asyncio.gather(*requests, return_exceptions=True)


@settings(deadline=None, max_examples=200)
@given(garbage=st.binary(max_size=2048))
async def test_garbage_from_the_server_only_fails_requests(garbage: bytes) -> None:
    connection, _, _ = await connected_in_memory()
    request = asyncio.ensure_future(connection.request("POST", "/", [], b"x"))
    await asyncio.sleep(0)

    connection.data_received(garbage)  # must not raise, whatever arrives
    connection.connection_lost(None)
    await asyncio.gather(request, return_exceptions=True)

    assert isinstance(request.exception(), H2Error)


async def test_response_to_a_request_just_cancelled_is_ignored() -> None:
    connection, transport, server = await connected_in_memory()
    request = asyncio.ensure_future(connection.request("POST", "/", [], b"x"))
    for _ in range(3):
        await asyncio.sleep(0)
    events = server.receive_data(b"".join(transport.writes))
    [stream_id] = [e.stream_id for e in events if isinstance(e, h2.events.RequestReceived)]
    server.send_headers(stream_id, [(b":status", b"200")], end_stream=True)

    request.cancel()
    connection.data_received(server.data_to_send())  # before the cancelled request runs again
    await asyncio.gather(request, return_exceptions=True)

    assert request.cancelled()
    assert connection.usable
