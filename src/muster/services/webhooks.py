"""Webhooks: subscriptions (Graph-style, Muster-only), the outbox publisher and the signed, retried delivery.

Signature (Stripe-style): `Muster-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` where
the key is the subscription secret's UTF-8 bytes, and `Muster-Event-Id` lets receivers drop duplicates (delivery
is at least once: a process dying mid-attempt leaves the row to be retried when its lease ends).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotFound
from muster.pki.secretbox import SecretBox
from muster.services.events import EventType

SECRET_PURPOSE = "webhook-secret"
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 400
MAX_ERROR_LENGTH = 400
BATCH_ROUNDS = 4
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    event_id: str
    event_type: str
    body: str
    attempts: int  # including the attempt now being made
    notification_url: str
    secret_encrypted: bytes


class WebhookStore(Protocol):
    async def add_subscription(self, values: Mapping[str, Any]) -> None: ...
    async def subscriptions(self, org_id: str) -> list[dict[str, Any]]: ...
    async def subscription(self, org_id: str, subscription_id: str) -> dict[str, Any] | None: ...
    async def update_subscription(self, org_id: str, subscription_id: str, values: Mapping[str, Any]) -> None: ...
    async def delete_subscription(self, org_id: str, subscription_id: str) -> bool: ...
    async def deliveries(self, org_id: str, subscription_id: str, limit: int) -> list[dict[str, Any]]: ...

    async def enqueue(self, *, org_id: str, event_id: str, event_type: str, body: str, now: datetime) -> int:
        """One pending delivery per subscription of `org_id` wanting `event_type`; returns how many."""

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[ClaimedDelivery]:
        """Due deliveries (pending and due, or delivering with an expired lease), leased to this caller only."""

    async def finish(
        self,
        delivery_id: str,
        *,
        status: str,
        next_attempt_at: datetime | None,
        status_code: int | None,
        error: str | None,
        now: datetime,
    ) -> None: ...


class WebhookSendError(Exception):
    """The receiver could not be reached or did not answer in time."""


class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> int:
        """POST `body`; the receiver's status code, or WebhookSendError."""


@dataclass(frozen=True)
class SubscriptionRequest:
    notification_url: str | None = None
    events: Sequence[str] | None = None
    description: str | None = None


class WebhookSubscriptions:
    def __init__(self, *, store: WebhookStore, secrets: SecretBox, clock: Clock, allow_loopback_http: bool) -> None:
        self._store = store
        self._secrets = secrets
        self._clock = clock
        self._allow_loopback_http = allow_loopback_http

    async def create(self, *, org_id: str, actor: str, request: SubscriptionRequest) -> tuple[dict[str, Any], str]:
        """The new subscription and its secret (shown this once)."""
        if request.notification_url is None or request.events is None:
            raise InvalidInput("notificationUrl and events are required")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        subscription_id = str(uuid.uuid4())
        values = {
            "id": subscription_id,
            "org_id": org_id,
            "notification_url": self._checked_url(request.notification_url),
            "events": _events_column(request.events),
            "description": _checked_description(request.description),
            "secret_encrypted": self._secrets.encrypt(secret.encode(), purpose=SECRET_PURPOSE),
            "created_by": actor,
            "created_at": now,
            "updated_at": now,
        }
        await self._store.add_subscription(values)
        return await self.get(org_id, subscription_id), secret

    async def all(self, org_id: str) -> list[dict[str, Any]]:
        return await self._store.subscriptions(org_id)

    async def get(self, org_id: str, subscription_id: str) -> dict[str, Any]:
        found = await self._store.subscription(org_id, subscription_id)
        if found is None:
            raise NotFound(f"webhook subscription {subscription_id} not found")
        return found

    async def update(self, org_id: str, subscription_id: str, request: SubscriptionRequest) -> dict[str, Any]:
        await self.get(org_id, subscription_id)
        values: dict[str, Any] = {"updated_at": self._clock.now()}
        if request.notification_url is not None:
            values["notification_url"] = self._checked_url(request.notification_url)
        if request.events is not None:
            values["events"] = _events_column(request.events)
        if request.description is not None:
            values["description"] = _checked_description(request.description)
        await self._store.update_subscription(org_id, subscription_id, values)
        return await self.get(org_id, subscription_id)

    async def rotate_secret(self, org_id: str, subscription_id: str) -> tuple[dict[str, Any], str]:
        await self.get(org_id, subscription_id)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        encrypted = self._secrets.encrypt(secret.encode(), purpose=SECRET_PURPOSE)
        await self._store.update_subscription(
            org_id, subscription_id, {"secret_encrypted": encrypted, "updated_at": self._clock.now()}
        )
        return await self.get(org_id, subscription_id), secret

    async def delete(self, org_id: str, subscription_id: str) -> None:
        if not await self._store.delete_subscription(org_id, subscription_id):
            raise NotFound(f"webhook subscription {subscription_id} not found")

    async def deliveries(self, org_id: str, subscription_id: str, limit: int = 100) -> list[dict[str, Any]]:
        await self.get(org_id, subscription_id)
        return await self._store.deliveries(org_id, subscription_id, limit)

    def _checked_url(self, url: str) -> str:
        if len(url) > MAX_URL_LENGTH:
            raise InvalidInput(f"notificationUrl is longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018  # raises on a malformed port
        except ValueError:
            raise InvalidInput("notificationUrl is not a valid URL") from None
        if not host or parts.username is not None or parts.password is not None or parts.fragment:
            raise InvalidInput("notificationUrl needs a host, and no credentials or fragment")
        if parts.scheme == "https":
            return url
        if parts.scheme == "http" and host in LOOPBACK_HOSTS and self._allow_loopback_http:
            return url
        raise InvalidInput("notificationUrl must use https (http is accepted for localhost only in development)")


def _events_column(events: Sequence[str]) -> str:
    known = {event.value for event in EventType}
    unknown = [event for event in events if event not in known]
    if unknown or not events:
        raise InvalidInput(f"events must be a non-empty list among {', '.join(sorted(known))}; got {unknown[:3]}")
    return "," + ",".join(dict.fromkeys(events)) + ","


def _checked_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    return description


class WebhookEvents:
    """The `EventPublisher` of webhooks: one outbox row per interested subscription."""

    def __init__(self, *, store: WebhookStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def publish(self, *, org_id: str, event_type: EventType, data: Mapping[str, Any]) -> None:
        now = self._clock.now()
        event_id = str(uuid.uuid4())
        body = {
            "id": event_id,
            "type": event_type.value,
            "occurredDateTime": now.isoformat().replace("+00:00", "Z"),
            "organizationId": org_id,
            "data": dict(data),
        }
        text = json.dumps(body, separators=(",", ":"), default=str)
        await self._store.enqueue(org_id=org_id, event_id=event_id, event_type=event_type.value, body=text, now=now)


class WebhookDispatcher:
    """Sends due deliveries, `concurrency` at a time, and schedules retries after `schedule` (then `failed`)."""

    def __init__(
        self,
        *,
        store: WebhookStore,
        sender: WebhookSender,
        secrets: SecretBox,
        clock: Clock,
        schedule: Sequence[timedelta],
        timeout: float,
        concurrency: int,
    ) -> None:
        self._store = store
        self._sender = sender
        self._secrets = secrets
        self._clock = clock
        self._schedule = schedule
        self._timeout = timeout
        self._concurrency = concurrency
        # A batch is 4 rounds of `concurrency` attempts: its rows stay leased until the slowest could have ended.
        self._lease = timedelta(seconds=BATCH_ROUNDS * timeout + 30)

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Attempt everything due (at `now`, default the clock's), batch after batch; returns how many attempts."""
        now = now or self._clock.now()
        batch = self._concurrency * BATCH_ROUNDS
        gate = asyncio.Semaphore(self._concurrency)

        async def attempt(delivery: ClaimedDelivery) -> None:
            async with gate:
                await self._attempt(delivery, now)

        attempted = 0
        while True:
            claimed = await self._store.claim_due(now=now, lease_until=now + self._lease, limit=batch)
            await asyncio.gather(*(attempt(delivery) for delivery in claimed))
            attempted += len(claimed)
            if len(claimed) < batch:
                return attempted

    async def _attempt(self, delivery: ClaimedDelivery, now: datetime) -> None:
        secret = self._secrets.decrypt(delivery.secret_encrypted, purpose=SECRET_PURPOSE).decode()
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "Muster-Event-Id": delivery.event_id,
            "Muster-Event-Type": delivery.event_type,
            "Muster-Signature": signature_header(secret, int(now.timestamp()), body),
        }
        status_code: int | None = None
        try:
            status_code = await self._sender.send(delivery.notification_url, body, headers, timeout=self._timeout)
            error = None if 200 <= status_code < 300 else f"the receiver answered HTTP {status_code}"
        except WebhookSendError as failure:
            error = str(failure)[:MAX_ERROR_LENGTH] or type(failure).__name__
        if error is None:
            status, next_at = "succeeded", None
        elif delivery.attempts > len(self._schedule):
            status, next_at = "failed", None
        else:
            status, next_at = "pending", now + self._schedule[delivery.attempts - 1]
        await self._store.finish(
            delivery.id, status=status, next_attempt_at=next_at, status_code=status_code, error=error, now=now
        )
