"""Apple Business Manager's side of ADE, simulated: the DEP API of mdmenrollment.apple.com and the portal
actions of an ABM administrator.

For tests, demos and load runs. `FakeAbm` is an ASGI app answering like Apple (spec/apple-protocols.md §7):
OAuth-signed sessions that expire, opaque fetch/sync cursors that expire after 7 days, profiles with
per-serial assignment results and Apple's error strings. Its Python API plays the administrator (add an MDM
server, download its token, assign, unassign and release devices) and injects faults. It runs on its own
clock, so that token and cursor expiry are testable without waiting. The devices, their records, cursors
and sync log are `muster.simulators.abm_fleet`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from cryptography import x509

from muster.protocols.apple import dep, dep_token
from muster.protocols.apple.dep import AssignmentStatus, DepProfile
from muster.protocols.apple.dep_errors import DepErrorCode
from muster.protocols.errors import ParseError
from muster.simulators.abm_fleet import CursorRefused, Fleet, ServerHandle
from muster.simulators.abm_http import (
    Answer,
    Receive,
    Refusal,
    Request,
    Send,
    error,
    read_request,
    respond,
    single_headers,
)

MAX_NONCES = 100_000


@dataclass(frozen=True)
class RecordedCall:
    """One request FakeAbm answered, for assertions."""

    method: str
    path: str
    status: int
    headers: dict[str, str]


@dataclass
class _Session:
    server: ServerHandle
    access_token: str
    created: datetime
    rotated: bool = False


@dataclass
class _SerialFault:
    status: str
    remaining: int | None
    retry_after: int | None


class FakeAbm:
    """The DEP API as an ASGI app, plus the ABM administrator's actions and fault injection.

    `stale_session_status` is 401 as Apple answers an expired session; set 403 to answer `FORBIDDEN` as
    Apple's depsim simulator does.
    """

    def __init__(
        self,
        *,
        org_name: str = "Muster Simulated Organisation",
        admin_id: str = "abm-admin@example.com",
        now: datetime | None = None,
        session_lifetime: timedelta = timedelta(minutes=30),
    ) -> None:
        self.org_name = org_name
        self.admin_id = admin_id
        self.org_id = str(random.randrange(10**6, 10**7))
        self.session_lifetime = session_lifetime
        self.stale_session_status = 401
        self.calls: deque[RecordedCall] = deque(maxlen=10_000)
        self._now = now or datetime.now(UTC)
        self._fleet = Fleet(self.now)
        self._sessions: dict[str, _Session] = {}
        self._nonces: dict[tuple[str, str], None] = {}
        self._request_faults: deque[tuple[int, int | None]] = deque()
        self._serial_faults: dict[str, _SerialFault] = {}
        self._delay = 0.0
        self._routes: dict[str, dict[str, Callable[[ServerHandle, Request], Answer]]] = {
            "/account": {"GET": self._account},
            "/server/devices": {"POST": self._fetch},
            "/devices/sync": {"POST": self._sync},
            "/devices": {"POST": self._details},
            "/devices/disown": {"POST": self._disown},
            "/profile": {"POST": self._define_profile, "GET": self._get_profile},
            "/profile/devices": {"POST": self._assign, "PUT": self._assign, "DELETE": self._remove_profile},
        }

    # --- clock ----------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._now

    def set_clock(self, moment: datetime) -> None:
        self._now = moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    # --- the ABM administrator --------------------------------------------------------------------------

    @property
    def servers(self) -> list[ServerHandle]:
        return self._fleet.servers

    def add_server(self, name: str, certificate: x509.Certificate | bytes | None = None) -> ServerHandle:
        """Add an MDM server (its name is only a label, ADE-33), optionally uploading its certificate."""
        return self._fleet.add_server(name, self.admin_id, certificate)

    def seed_devices(
        self, server: ServerHandle, count: int, *, families: Sequence[str] = ("iPhone", "iPad", "Mac"), seed: int = 0
    ) -> list[str]:
        """Assign `count` new devices to `server`, round-robin over `families`; the same seed gives the same
        serial numbers. Returns them in assignment (fetch) order."""
        return self._fleet.seed(server, count, families, seed)

    def assign(self, server: ServerHandle, serials: Iterable[str], *, family: str = "iPhone") -> None:
        """Assign devices to `server` (ABM-04): known devices move from their current server, unknown ones
        arrive as new purchases of `family`. Each produces an `added` sync record."""
        self._fleet.assign(server, serials, family)

    def unassign(self, serials: Iterable[str]) -> None:
        """Take devices off their MDM server; they stay in the organisation (`deleted` sync record)."""
        self._fleet.unassign(serials)

    def release(self, serials: Iterable[str]) -> None:
        """Release devices from the organisation (ADE-20), as `disown` does. To the DEP API this looks like
        `unassign`; the device's traits are kept so that earlier sync records still render."""
        self.unassign(serials)

    def mark_pushed(self, serials: Iterable[str]) -> None:
        """A device in Setup Assistant downloaded its assigned profile: status `pushed`."""
        self._fleet.mark_pushed(serials)

    def server_of(self, serial: str) -> ServerHandle | None:
        return self._fleet.server_of(serial)

    def device(self, serial: str) -> dict[str, Any] | None:
        """The device record as fetch shows it (protocol version 10), or None when not on any server."""
        server = self.server_of(serial)
        return None if server is None else server.record(serial, 10)

    # --- fault injection --------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, *, retry_after: int | None = None) -> None:
        """Answer the next `count` requests, whatever they are, with `status` (and `Retry-After`)."""
        self._request_faults.extend([(status, retry_after)] * count)

    def fail_assignment(
        self,
        serials: Iterable[str],
        status: str = AssignmentStatus.FAILED,
        *,
        times: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Report `status` for these serials in the next `times` assignments (always when None).
        THROTTLED needs protocol version 9 (older clients get FAILED); `retry_after` needs version 10."""
        for serial in serials:
            self._serial_faults[serial] = _SerialFault(status, times, retry_after)

    def expire_token(self, server: ServerHandle) -> None:
        if server.credentials is not None:
            server.credentials = replace(server.credentials, access_token_expiry=self._now - timedelta(seconds=1))

    def expire_sessions(self) -> None:
        self._sessions.clear()

    def invalidate_cursors(self, server: ServerHandle) -> None:
        """Every cursor handed out so far becomes `INVALID_CURSOR`."""
        server.invalidate_cursors()

    def echo_cursor(self, server: ServerHandle, times: int = 1) -> None:
        """The next `times` syncs echo the request cursor with `more_to_follow` true and no devices."""
        server.echo_cursor(times)

    def set_delay(self, seconds: float) -> None:
        """Answer every request only after `seconds` (slow Apple)."""
        self._delay = seconds

    # --- ASGI -------------------------------------------------------------------------------------------

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            request = await read_request(scope, receive)
            if self._delay:
                await asyncio.sleep(self._delay)
            answer = self._answer(request)
        except Refusal as refusal:
            answer = refusal.answer
        except CursorRefused as refused:
            answer = error(400, refused.code)
        headers = single_headers(scope["headers"])
        self.calls.append(RecordedCall(scope["method"], scope["path"], answer.status, headers))
        await respond(send, answer)

    def _answer(self, request: Request) -> Answer:
        if self._request_faults:
            status, retry_after = self._request_faults.popleft()
            raise Refusal(status, headers=[("Retry-After", str(retry_after))] if retry_after is not None else [])
        if not request.headers.get("user-agent", "").strip():
            raise Refusal(400, DepErrorCode.USER_AGENT_MISSING)
        if request.path == "/session":
            if request.method != "GET":
                raise Refusal(405)
            return self._open_session(request)
        methods = self._routes.get(request.path)
        if methods is None:
            raise Refusal(404, DepErrorCode.NOT_FOUND)
        handler = methods.get(request.method)
        if handler is None:
            raise Refusal(405)
        server, fresh_session = self._authenticate(request)
        answer = handler(server, request)
        if fresh_session is not None:
            answer.headers.append((dep.SESSION_HEADER, fresh_session))
        return answer

    # --- sessions (§7.2) --------------------------------------------------------------------------------

    def _open_session(self, request: Request) -> Answer:
        header = request.headers.get("authorization", "")
        try:
            consumer_key, access_token = dep_token.verify_oauth_header(
                header, method="GET", url=request.url, lookup_secrets=self._secrets
            )
        except dep_token.OAuthRejected:
            raise Refusal(401, "UNAUTHORIZED") from None
        except ParseError:
            raise Refusal(400, "BAD_REQUEST") from None
        nonce = (consumer_key, dep_token.parse_oauth_header(header)["oauth_nonce"])
        if nonce in self._nonces:
            raise Refusal(401, "UNAUTHORIZED")  # a replayed request
        self._remember_nonce(nonce)
        server = next(server for server in self.servers if server.accepts(access_token, self._now))
        _check_standing(server)
        return Answer(200, dep_token.encode_session(self._new_session(server, access_token)))

    def _secrets(self, consumer_key: str, access_token: str) -> tuple[str, str] | None:
        for server in self.servers:
            credentials = server.credentials
            if server.accepts(access_token, self._now) and credentials and credentials.consumer_key == consumer_key:
                return credentials.consumer_secret, credentials.access_secret
        return None

    def _remember_nonce(self, nonce: tuple[str, str]) -> None:
        self._nonces[nonce] = None
        if len(self._nonces) > MAX_NONCES:
            del self._nonces[next(iter(self._nonces))]

    def _new_session(self, server: ServerHandle, access_token: str) -> str:
        self._sessions = {
            token: session
            for token, session in self._sessions.items()
            if self._now - session.created < self.session_lifetime
        }
        token = os.urandom(24).hex()
        self._sessions[token] = _Session(server, access_token, self._now)
        return token

    def _authenticate(self, request: Request) -> tuple[ServerHandle, str | None]:
        """The server behind the request's session, and a fresh session once this one is half-used
        (Apple may hand one out on any answer, §7.2)."""
        session = self._sessions.get(request.headers.get(dep.SESSION_HEADER.lower(), ""))
        if (
            session is None
            or self._now - session.created >= self.session_lifetime
            or not session.server.accepts(session.access_token, self._now)
        ):
            stale = self.stale_session_status
            raise Refusal(stale, DepErrorCode.FORBIDDEN if stale == 403 else "UNAUTHORIZED")
        _check_standing(session.server)
        if session.rotated or self._now - session.created < self.session_lifetime / 2:
            return session.server, None
        session.rotated = True
        return session.server, self._new_session(session.server, session.access_token)

    # --- endpoints (§7.3) -------------------------------------------------------------------------------

    def _account(self, server: ServerHandle, request: Request) -> Answer:
        account: dict[str, Any] = {
            "server_name": server.name,
            "server_uuid": server.server_uuid,
            "admin_id": self.admin_id,
            "facilitator_id": self.admin_id,
            "org_name": self.org_name,
            "org_email": self.admin_id,
            "org_phone": "+1 555 0100",
            "org_address": "1 Infinite Loop, Cupertino, CA 95014",
        }
        if request.protocol_version >= 3:
            account["org_id"] = self.org_id
            account["org_id_hash"] = hashlib.sha256(self.org_id.encode()).hexdigest()
            account["org_type"] = "org"
            account["org_version"] = "v1"
            account["urls"] = [
                {"uri": path, "http_method": sorted(methods), "limit": {"default": 100, "maximum": 1000}}
                for path, methods in self._routes.items()
            ]
        return Answer(200, dep.encode_json(account))

    def _fetch(self, server: ServerHandle, request: Request) -> Answer:
        cursor, limit = _cursor_request(request)
        page = server.fetch_page(cursor, limit, request.protocol_version, self._now)
        return Answer(200, dep.encode_json(page))

    def _sync(self, server: ServerHandle, request: Request) -> Answer:
        cursor, limit = _cursor_request(request)
        page = server.sync_page(cursor, limit, request.protocol_version, self._now)
        return Answer(200, dep.encode_json(page))

    def _details(self, server: ServerHandle, request: Request) -> Answer:
        serials = _serials(request)
        devices = {
            serial: {**server.record(serial, request.protocol_version), "response_status": "SUCCESS"}
            if server.has(serial)
            else {"response_status": AssignmentStatus.NOT_ACCESSIBLE}
            for serial in serials
        }
        return Answer(200, dep.encode_json({"devices": devices}))

    def _disown(self, server: ServerHandle, request: Request) -> Answer:
        serials = _serials(request)
        owned = [serial for serial in serials if server.has(serial)]
        self.release(owned)
        return _statuses({serial: AssignmentStatus.SUCCESS for serial in owned}, serials)

    def _define_profile(self, server: ServerHandle, request: Request) -> Answer:
        try:
            profile = DepProfile.from_json(request.body)
            profile.validate()
        except dep.ProfileRejected as rejected:
            raise Refusal(400, rejected.codes[0]) from None
        except ParseError:
            raise Refusal(400, "BAD_REQUEST") from None
        profile_uuid = uuid.uuid4().hex.upper()
        server.profiles[profile_uuid] = replace(profile, devices=(), profile_uuid=profile_uuid)
        result = self._assign_serials(server, profile_uuid, profile.devices, request.protocol_version)
        return Answer(200, dep.encode_assignment(result))

    def _get_profile(self, server: ServerHandle, request: Request) -> Answer:
        profile_uuid = request.query.get("profile_uuid")
        if not profile_uuid:
            raise Refusal(400, DepErrorCode.PROFILE_UUID_REQUIRED)
        if profile_uuid not in server.profiles:
            raise Refusal(404, DepErrorCode.NOT_FOUND)
        return Answer(200, dep.encode_json(server.profiles[profile_uuid].to_json()))

    def _assign(self, server: ServerHandle, request: Request) -> Answer:
        profile_uuid, serials = _decoded(dep.decode_serials_request, request.body)
        if not serials:
            raise Refusal(400, DepErrorCode.DEVICE_ID_REQUIRED)
        if profile_uuid is None:
            raise Refusal(400, DepErrorCode.PROFILE_UUID_REQUIRED)
        if profile_uuid not in server.profiles:
            raise Refusal(404, DepErrorCode.NOT_FOUND)
        result = self._assign_serials(server, profile_uuid, serials, request.protocol_version)
        return Answer(200, dep.encode_assignment(result))

    def _remove_profile(self, server: ServerHandle, request: Request) -> Answer:
        serials = _serials(request)
        removed: dict[str, str] = {}
        for serial in serials:
            if server.has(serial):
                server.remove_profile(serial, self._now)
                removed[serial] = AssignmentStatus.SUCCESS
        return _statuses(removed, serials)

    def _assign_serials(
        self, server: ServerHandle, profile_uuid: str, serials: Iterable[str], version: int
    ) -> dep.AssignmentResult:
        results: dict[str, str] = {}
        retry_after: int | None = None
        for serial in serials:
            status, fault_retry = self._serial_fault(serial)
            if status is None:
                status = AssignmentStatus.SUCCESS if server.has(serial) else AssignmentStatus.NOT_ACCESSIBLE
            if status == AssignmentStatus.THROTTLED and version < 9:
                status = AssignmentStatus.FAILED  # THROTTLED exists from protocol version 9 (§7.2)
            if status == AssignmentStatus.THROTTLED and fault_retry is not None and version >= 10:
                retry_after = max(retry_after or 0, fault_retry)
            if status == AssignmentStatus.SUCCESS:
                server.assign_profile(serial, profile_uuid, self._now)
            results[serial] = status
        return dep.AssignmentResult(profile_uuid, results, retry_after)

    def _serial_fault(self, serial: str) -> tuple[str | None, int | None]:
        fault = self._serial_faults.get(serial)
        if fault is None:
            return None, None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._serial_faults[serial]
        return fault.status, fault.retry_after


def _check_standing(server: ServerHandle) -> None:
    if not server.terms_signed:
        raise Refusal(403, DepErrorCode.T_C_NOT_SIGNED)
    if server.access_denied:
        raise Refusal(403, DepErrorCode.ACCESS_DENIED)


def _decoded(decoder: Callable[[bytes], Any], body: bytes) -> Any:
    try:
        return decoder(body)
    except ParseError:
        raise Refusal(400, "BAD_REQUEST") from None


def _cursor_request(request: Request) -> tuple[str | None, int]:
    cursor, limit = _decoded(dep.decode_cursor_request, request.body)
    if limit is None or limit < 1:
        limit = dep.DEFAULT_FETCH_LIMIT
    return cursor, min(limit, dep.MAX_FETCH_LIMIT)


def _serials(request: Request) -> tuple[str, ...]:
    _, serials = _decoded(dep.decode_serials_request, request.body)
    if not serials:
        raise Refusal(400, DepErrorCode.DEVICE_ID_REQUIRED)
    return tuple(serials)


def _statuses(succeeded: dict[str, str], serials: Iterable[str]) -> Answer:
    devices = {serial: succeeded.get(serial, AssignmentStatus.NOT_ACCESSIBLE) for serial in serials}
    return Answer(200, dep.encode_assignment(dep.AssignmentResult("", devices)))


@asynccontextmanager
async def serve_fake_abm(app: FakeAbm, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `app` over plain HTTP/1.1 with uvicorn; yields the base URL to give `DepClient`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", http="h11", ws="none", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        bound = sock.getsockname()[1]
        yield f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task
        sock.close()
