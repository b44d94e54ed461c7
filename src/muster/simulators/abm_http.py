"""HTTP plumbing of the simulated ABM: a minimal ASGI request/answer pair, fast enough for 200,000-device runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from muster.protocols.apple import dep

AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]

ERROR_TYPE = "text/plain;charset=UTF8"


class Refusal(Exception):
    def __init__(self, status: int, code: str = "", headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(code)
        self.answer = error(status, code, headers)


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = dep.MEDIA_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    url: str  # as the client addressed it: what its OAuth signature covers
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def protocol_version(self) -> int:
        value = self.headers.get(dep.PROTOCOL_VERSION_HEADER.lower(), "1")
        return int(value) if value.isdigit() else 1


def error(status: int, code: str = "", headers: Sequence[tuple[str, str]] = ()) -> Answer:
    """A refusal as Apple sends it: the bare error code as plain text."""
    return Answer(status, code.encode(), ERROR_TYPE, list(headers))


async def read_request(scope: MutableMapping[str, Any], receive: Receive) -> Request:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > dep.MAX_JSON_BYTES:
            raise Refusal(413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    headers = single_headers(scope["headers"])
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("root_path", "") + scope["path"]
    host = headers.get("host", "localhost")
    url = f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")
    return Request(scope["method"], scope["path"], url, dict(parse_qsl(query)), headers, b"".join(chunks))


def single_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


async def respond(send: Send, answer: Answer) -> None:
    headers = [(b"content-type", answer.content_type.encode())]
    headers += [(name.encode(), value.encode()) for name, value in answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
