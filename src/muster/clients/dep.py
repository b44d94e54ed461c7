"""Outbound client for Apple's ADE ("DEP") API, one instance per ABM/ASM server token (spec §7.2, §7.3).

Sessions: `GET /session` signed with OAuth 1.0a gives the `X-ADM-Auth-Session` value sent on every other
call; a new value in any response replaces it, and a 401 (or depsim's 403 `FORBIDDEN`) triggers one fresh
session and one retry. 429/503 are retried with jittered exponential back-off, honouring `Retry-After`.
Bodies are encoded and decoded by `muster.protocols.apple.dep` (and `dep_token` for the session); the
exceptions raised are those of `muster.protocols.apple.dep_errors`. Secrets are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TypeVar

import httpx

from muster import __version__
from muster.protocols.apple import dep, dep_token
from muster.protocols.apple.dep import AssignmentResult, AssignmentStatus, DepAccount, DepDevice, DepProfile, FetchPage
from muster.protocols.apple.dep_errors import (
    DepApiError,
    DepAuthError,
    DepBadResponse,
    DepCursorExhausted,
    DepCursorExpired,
    DepError,
    DepErrorKind,
    DepRequestError,
    DepTermsNotSigned,
    DepUnavailable,
    classify_error,
)
from muster.protocols.apple.dep_token import DepCredentials
from muster.protocols.errors import ParseError

logger = logging.getLogger(__name__)

APPLE_DEP_URL = "https://mdmenrollment.apple.com"

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]

_EXCEPTIONS: dict[DepErrorKind, type[DepApiError]] = {
    DepErrorKind.CURSOR_EXPIRED: DepCursorExpired,
    DepErrorKind.CURSOR_INVALID: DepCursorExpired,
    DepErrorKind.CURSOR_EXHAUSTED: DepCursorExhausted,
    DepErrorKind.TERMS_NOT_SIGNED: DepTermsNotSigned,
    DepErrorKind.ACCESS_DENIED: DepAuthError,
    DepErrorKind.UNAUTHORIZED: DepAuthError,
    DepErrorKind.SESSION_STALE: DepAuthError,
    DepErrorKind.SERVER_ERROR: DepUnavailable,
}
_STALE_SESSION = (DepErrorKind.UNAUTHORIZED, DepErrorKind.SESSION_STALE)


class DepClient:
    """Talks to one MDM server's DEP API; safe to share between tasks of one event loop."""

    def __init__(
        self,
        *,
        base_url: str = APPLE_DEP_URL,
        credentials: DepCredentials,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = f"muster/{__version__}",
        protocol_version: int = 7,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = 5,
        clock: Clock = lambda: datetime.now(UTC),
        backoff_base: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 30.0,
    ) -> None:
        """`max_backoff` bounds every wait; a longer `Retry-After` is raised as `DepUnavailable` for the
        caller to schedule instead of blocking here."""
        if max_attempts < 1 or backoff_base < 0 or max_backoff < 0:
            raise ValueError("max_attempts must be >= 1, backoff_base and max_backoff >= 0")
        self._credentials = credentials
        self._sleep = sleep
        self._clock = clock
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._max_backoff = max_backoff
        self._session: str | None = None
        self._session_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={
                "User-Agent": user_agent,
                dep.PROTOCOL_VERSION_HEADER: str(protocol_version),
                "Accept": dep.MEDIA_TYPE,
            },
        )

    async def __aenter__(self) -> DepClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- API ------------------------------------------------------------------------------------------

    async def account(self) -> DepAccount:
        return _decode(dep.decode_account, await self._call("GET", "/account"))

    async def fetch_devices(self, cursor: str | None = None, limit: int = dep.MAX_FETCH_LIMIT) -> FetchPage:
        """One page of the full device list; start with no cursor, pass each returned cursor back."""
        body = dep.encode_cursor_request(cursor, limit)
        return _decode(dep.decode_fetch_page, await self._call("POST", "/server/devices", body))

    async def sync_devices(self, cursor: str, limit: int = dep.MAX_FETCH_LIMIT) -> FetchPage:
        """One page of changes since `cursor` (from a finished fetch or an earlier sync)."""
        body = dep.encode_cursor_request(cursor, limit)
        return _decode(dep.decode_fetch_page, await self._call("POST", "/devices/sync", body))

    async def device_details(self, serials: Iterable[str]) -> dict[str, DepDevice]:
        details: dict[str, DepDevice] = {}
        for chunk in _chunks(serials):
            body = await self._call("POST", "/devices", dep.encode_serials_request(chunk))
            details.update(_decode(dep.decode_device_details, body))
        return details

    async def define_profile(self, profile: DepProfile) -> tuple[str, dict[str, str]]:
        """Create a profile (validated first: `ProfileRejected` carries Apple's error names) and assign
        its `devices`; serials beyond the first 1,000 are assigned in further requests."""
        profile.validate()
        first, rest = profile.devices[: dep.MAX_SERIALS_PER_REQUEST], profile.devices[dep.MAX_SERIALS_PER_REQUEST :]
        request = {**profile.to_json(), "devices": list(first)} if first else profile.to_json()
        defined = _decode(dep.decode_assignment, await self._call("POST", "/profile", dep.encode_json(request)))
        if not defined.profile_uuid:
            raise DepBadResponse("define profile answer has no profile_uuid", status=200)
        devices = dict(defined.devices)
        if rest:
            devices.update((await self.assign_profile(defined.profile_uuid, rest)).devices)
        return defined.profile_uuid, devices

    async def get_profile(self, profile_uuid: str) -> DepProfile:
        body = await self._call("GET", "/profile", params={"profile_uuid": profile_uuid})
        return _decode(DepProfile.from_json, body)

    async def assign_profile(self, profile_uuid: str, serials: Iterable[str]) -> AssignmentResult:
        """Assign in requests of at most 1,000 serials. THROTTLED serials are retried after Apple's
        `retry_after_seconds` while attempts remain; FAILED and NOT_ACCESSIBLE are returned as they are."""
        devices: dict[str, str] = {}
        retry_after: int | None = None
        for chunk in _chunks(serials):
            result = await self._assign_chunk(profile_uuid, chunk)
            devices.update(result.devices)
            if result.retry_after_seconds is not None:
                retry_after = max(retry_after or 0, result.retry_after_seconds)
        throttled = any(value == AssignmentStatus.THROTTLED for value in devices.values())
        return AssignmentResult(profile_uuid, devices, retry_after if throttled else None)

    async def remove_profile(self, serials: Iterable[str]) -> dict[str, str]:
        return await self._statuses("DELETE", "/profile/devices", serials)

    async def disown(self, serials: Iterable[str]) -> dict[str, str]:
        """Permanently remove devices from the organisation (§7.3): there is no way back."""
        return await self._statuses("POST", "/devices/disown", serials)

    async def _assign_chunk(self, profile_uuid: str, serials: Sequence[str]) -> AssignmentResult:
        devices: dict[str, str] = {}
        pending = list(serials)
        attempt = 1
        while True:
            body = await self._call("POST", "/profile/devices", dep.encode_serials_request(pending, profile_uuid))
            result = _decode(dep.decode_assignment, body)
            devices.update(result.devices)
            pending = result.serials_with(AssignmentStatus.THROTTLED)
            wait = result.retry_after_seconds
            if not pending or attempt >= self._max_attempts or wait is None or wait > self._max_backoff:
                return AssignmentResult(profile_uuid, devices, wait if pending else None)
            await self._sleep(wait * random.uniform(1.0, 1.2))
            attempt += 1

    async def _statuses(self, method: str, path: str, serials: Iterable[str]) -> dict[str, str]:
        devices: dict[str, str] = {}
        for chunk in _chunks(serials):
            body = await self._call(method, path, dep.encode_serials_request(chunk))
            devices.update(_decode(dep.decode_assignment, body).devices)
        return devices

    # --- transport ------------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, body: bytes | None = None, params: dict[str, str] | None = None
    ) -> bytes:
        """The body of a 200 answer, after at most one re-authentication and the allowed retries."""
        reauthenticated = False
        attempt = 1
        while True:
            session = await self._current_session()
            headers = {dep.SESSION_HEADER: session}
            if body is not None:
                headers["Content-Type"] = dep.MEDIA_TYPE
            response = await self._request(method, path, headers, body, params)
            self._remember_session(response, session)
            if response.status_code == 200:
                return response.content
            error = classify_error(response.status_code, response.content)
            if error.kind in _STALE_SESSION and not reauthenticated:
                reauthenticated = True
                self._forget_session(session)
                continue
            await self._back_off(error, response, f"{method} {path}", attempt)
            attempt += 1

    async def _request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return await self._http.request(method, path, headers=headers, content=body, params=params)
        except httpx.TransportError as error:
            raise DepUnavailable(f"DEP {method} {path}: {type(error).__name__}") from error

    async def _current_session(self) -> str:
        if self._session is not None:
            return self._session
        async with self._session_lock:
            # Another task may have opened a session while this one waited for the lock.
            if self._session is None:
                self._session = await self._open_session()
            return self._session

    async def _open_session(self) -> str:
        url = str(self._http.base_url.join("session"))
        attempt = 1
        while True:
            authorization = dep_token.oauth_authorization_header(
                self._credentials,
                method="GET",
                url=url,
                nonce=secrets.token_hex(16),
                timestamp=int(self._clock().timestamp()),
            )
            # depsim insists on the JSON content type even on this body-less GET (§7).
            headers = {"Authorization": authorization, "Content-Type": dep.MEDIA_TYPE}
            response = await self._request("GET", "/session", headers)
            if response.status_code == 200:
                logger.info("DEP session opened at %s", self._http.base_url)
                return _decode(dep_token.decode_session, response.content)
            error = classify_error(response.status_code, response.content)
            if error.kind in _STALE_SESSION:
                raise DepAuthError("Apple refused the server token", status=error.status, code=error.code)
            await self._back_off(error, response, "GET /session", attempt)
            attempt += 1

    def _forget_session(self, session: str) -> None:
        if self._session == session:
            self._session = None

    def _remember_session(self, response: httpx.Response, sent: str) -> None:
        # Apple may hand out a new session on any answer (§7.2); keep it unless another task already moved on.
        fresh = response.headers.get(dep.SESSION_HEADER)
        if fresh and fresh != sent and self._session == sent:
            self._session = fresh

    async def _back_off(self, error: DepError, response: httpx.Response, call: str, attempt: int) -> None:
        """Sleep before the next attempt, or raise the error when it is final."""
        retry_after = _retry_after(response, self._clock())
        message = f"DEP {call} answered {error.status} {error.code or ''}".rstrip()
        if not error.retryable:
            kind = _EXCEPTIONS.get(error.kind, DepRequestError)
            if kind is DepUnavailable:
                raise DepUnavailable(message, status=error.status, retry_after=retry_after)
            raise kind(message, status=error.status, code=error.code)
        if attempt >= self._max_attempts or (retry_after is not None and retry_after > self._max_backoff):
            raise DepUnavailable(f"{message} ({attempt} attempts)", status=error.status, retry_after=retry_after)
        backoff = min(self._max_backoff, self._backoff_base * 2 ** (attempt - 1))
        # Jitter, so that the servers of many organisations do not come back in lock-step.
        delay = max(retry_after or 0.0, backoff * random.uniform(0.5, 1.5))
        logger.info("DEP %s answered %d; retrying in %.1f s", call, error.status, delay)
        await self._sleep(delay)


def _decode(decoder: Callable[[bytes], T], body: bytes) -> T:
    try:
        return decoder(body)
    except ParseError as error:
        raise DepBadResponse(f"unexpected DEP answer: {error.reason}", status=200) from error


def _chunks(serials: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for serial in serials:
        batch.append(serial)
        if len(batch) == dep.MAX_SERIALS_PER_REQUEST:
            yield batch
            batch = []
    if batch:
        yield batch


def _retry_after(response: httpx.Response, now: datetime) -> float | None:
    """Retry-After in seconds, from either of its forms (RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - now).total_seconds())
