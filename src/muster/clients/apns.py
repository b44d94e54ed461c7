"""Outbound APNs client: wakes MDM devices over HTTP/2 with the push certificate (spec §6.1, §6.2).

Every push is a stream on one long-lived HTTP/2 connection, as Apple asks (`muster.clients.h2_connection`,
built for many small requests). Retries, coalescing and concurrency limits live here; bytes on the wire
come from `muster.protocols.apple.apns`. Given an httpx transport (a simulator in the same process), the
client sends through httpx instead, with the same semantics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Protocol
from urllib.parse import urlsplit

import certifi
import httpx

from muster.clients.h2_connection import H2Client, H2Error, H2Response
from muster.protocols.apple.apns import PushOutcome, PushResult, PushTarget, build_push, classify_response

logger = logging.getLogger(__name__)

APPLE_PRODUCTION_URL = "https://api.push.apple.com"

Sleep = Callable[[float], Awaitable[None]]


class ApnsClient:
    """Sends MDM wake-up pushes; one instance per push certificate, reused for the process lifetime."""

    def __init__(
        self,
        *,
        base_url: str = APPLE_PRODUCTION_URL,
        certificate_pem: bytes,
        key_pem: bytes,
        verify: ssl.SSLContext | str | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int = 64,
        max_attempts: int = 4,
        backoff_base: float = 0.2,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`verify`: True = public CAs, a str = CA file or directory, an SSLContext is used as given
        (the push certificate is loaded into it), False = no server verification (tests only)."""
        if max_concurrency < 1 or max_attempts < 1 or backoff_base < 0:
            raise ValueError("max_concurrency and max_attempts must be >= 1, backoff_base >= 0")
        self._max_concurrency = max_concurrency
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._sleep = sleep
        # Bounds in-flight pushes across concurrent push_many calls, not only within one.
        self._slots = asyncio.Semaphore(max_concurrency)
        context = client_ssl_context(certificate_pem, key_pem, verify)
        self._sender: _Sender = (
            _h2_sender(base_url, context) if transport is None else _HttpxSender(base_url, context, transport)
        )

    async def __aenter__(self) -> ApnsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def push_many(self, targets: Iterable[PushTarget]) -> list[PushResult]:
        """Push once to each distinct device token; one result per token, in first-seen order.

        APNs keeps only the latest notification per device, so duplicates are coalesced and the
        last target given for a token wins. Per-device failures are reported, never raised.
        """
        latest: dict[bytes, PushTarget] = {}
        for target in targets:
            latest[target.token] = target
        results: dict[bytes, PushResult] = {}
        queue = iter(latest.values())

        async def worker() -> None:
            # Workers share one iterator: a fixed number of tasks, however many devices there are.
            for target in queue:
                results[target.token] = await self._push_with_retries(target)

        await asyncio.gather(*(worker() for _ in range(min(self._max_concurrency, len(latest)))))
        ordered = [results[token] for token in latest]
        _log_summary(ordered)
        return ordered

    async def _push_with_retries(self, target: PushTarget) -> PushResult:
        attempt = 1
        while True:
            async with self._slots:
                result = await self._push_once(target)
            if result.outcome is not PushOutcome.RETRY or attempt >= self._max_attempts:
                return result
            # Back off outside the slot: other callers keep pushing while this worker waits.
            await self._sleep(self._backoff_delay(attempt))
            attempt += 1

    def _backoff_delay(self, attempt: int) -> float:
        # Exponential back-off with jitter, so throttled pushes do not return in lock-step.
        return self._backoff_base * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)

    async def _push_once(self, target: PushTarget) -> PushResult:
        try:
            path, headers, body = build_push(target)
        except ValueError:
            # Only an oversized push magic can fail here; APNs would refuse it the same way.
            return PushResult(target, PushOutcome.REJECTED, None, "PayloadTooLarge", None)
        try:
            response = await self._sender.request("POST", path, list(headers.items()), body)
        except (H2Error, httpx.HTTPError) as error:
            return PushResult(target, PushOutcome.RETRY, None, type(error).__name__, None)
        except ValueError:
            # Only the topic can hold what HTTP/2 cannot carry (a line break, say); APNs would call it BadTopic.
            return PushResult(target, PushOutcome.REJECTED, None, "BadTopic", None)
        outcome, reason = classify_response(response.status, response.body)
        return PushResult(target, outcome, response.status, reason, response.headers.get("apns-id"))


class _Sender(Protocol):
    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> H2Response: ...

    async def aclose(self) -> None: ...


def _h2_sender(base_url: str, context: ssl.SSLContext) -> H2Client:
    url = urlsplit(base_url)
    if url.scheme != "https" or not url.hostname:
        raise ValueError("the APNs base URL must be https://host[:port]")
    context.set_alpn_protocols(["h2"])  # APNs speaks only HTTP/2; never fall back silently
    return H2Client(url.hostname, url.port or 443, context, response_timeout=15.0)


class _HttpxSender:
    """The same requests through httpx, for an in-process transport such as `httpx.ASGITransport`."""

    def __init__(self, base_url: str, context: ssl.SSLContext, transport: httpx.AsyncBaseTransport) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, verify=context, transport=transport, timeout=15.0)

    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> H2Response:
        response = await self._http.request(method, path, headers=headers, content=body)
        return H2Response(response.status_code, dict(response.headers), response.content)

    async def aclose(self) -> None:
        await self._http.aclose()


def client_ssl_context(certificate_pem: bytes, key_pem: bytes, verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    """A TLS client context presenting the MDM push certificate (mutual TLS, §6.1)."""
    context = _trust_context(verify)
    context.minimum_version = max(context.minimum_version, ssl.TLSVersion.TLSv1_2)
    _load_client_certificate(context, certificate_pem, key_pem)
    return context


def _trust_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context(cafile=certifi.where())


def _load_client_certificate(context: ssl.SSLContext, certificate_pem: bytes, key_pem: bytes) -> None:
    # The ssl module reads certificates only from files: use a private directory and remove it at once.
    with tempfile.TemporaryDirectory(prefix="muster-apns-") as directory:
        certificate_path = os.path.join(directory, "push.crt")
        key_path = os.path.join(directory, "push.key")
        _write_private(certificate_path, certificate_pem)
        _write_private(key_path, key_pem)
        try:
            context.load_cert_chain(certificate_path, key_path)
        except ssl.SSLError as error:
            raise ValueError("push certificate and key could not be loaded or do not match") from error


def _write_private(path: str, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def _log_summary(results: list[PushResult]) -> None:
    # One line per batch: a bad certificate would otherwise log once per device.
    outcomes = Counter(result.outcome.value for result in results)
    logger.info("APNs push batch finished: %s", dict(outcomes))
    rejections = Counter(f"{r.status} {r.reason}" for r in results if r.outcome is PushOutcome.REJECTED)
    if rejections:
        logger.warning("APNs rejected pushes: %s", dict(rejections))
