"""The audit trail: who did what to which object, with secrets redacted (Graph `auditEvents` shape).

Every admin request is recorded once, by the web layer, as an `AdminActivity`. Services that know more (before
and after values) still call `AuditSink.admin_event`; while a request is being served those details are attached
to that request's activity (same correlation id, one event for the admin to read) instead of becoming a second
event. Outside a request (background jobs) the sink writes them as events of their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

# Substrings of field names whose values are secrets, across the API: depToken, privateKey, secretText,
# clientSecret, password, totpSecret, unlockToken, challenge, pushMagic, passcode, pin, assertion...
_SECRET_HINTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "challenge",
    "magic",
    "passcode",
    "pin",
    "totp",
    "otp",
    "credential",
    "assertion",
    "authorization",
    "cookie",
    "pkcs12",
    "pfx",
)
_SECRET_VALUE_MARKERS = ("PRIVATE KEY-----", "BEGIN ENCRYPTED")
_URL_CREDENTIALS = re.compile(r"://[^/@\s]+@")  # user:password@ in a URL
REDACTED = "[redacted]"


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def redact(detail: Mapping[str, Any]) -> dict[str, Any]:
    """Copy `detail`, replacing values whose key names a secret, and any PEM private key (recursively)."""
    return {key: REDACTED if is_secret_name(str(key)) else _redact_value(value) for key, value in detail.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    if isinstance(value, str):
        if any(marker in value for marker in _SECRET_VALUE_MARKERS):
            return REDACTED
        return _URL_CREDENTIALS.sub(f"://{REDACTED}@", value)
    return value


@dataclass(frozen=True)
class ServiceChange:
    """What a service recorded about a change it made (already redacted)."""

    actor: str
    activity: str
    target: str | None
    detail: dict[str, Any]
    result: str


@dataclass
class AdminActivity:
    """The admin request being served: services attach their details to it."""

    correlation_id: str
    changes: list[ServiceChange] = field(default_factory=list)


_current: ContextVar[AdminActivity | None] = ContextVar("muster_admin_activity", default=None)


@contextmanager
def collecting(correlation_id: str) -> Iterator[AdminActivity]:
    """Collect the service details recorded while the admin request `correlation_id` is served (in this context)."""
    activity = AdminActivity(correlation_id)
    token = _current.set(activity)
    try:
        yield activity
    finally:
        _current.reset(token)


def current_activity() -> AdminActivity | None:
    return _current.get()


@dataclass(frozen=True)
class Actor:
    """Graph `auditActor`: `kind` is ItPro (a person), Application (an API client), Device, System or Unknown."""

    kind: str
    name: str
    id: str | None = None
    ip_address: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as stored: every value already redacted."""

    category: str
    activity: str
    activity_type: str
    operation_type: str
    result: str
    actor: Actor
    resources: Sequence[Mapping[str, Any]] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    status_code: int | None = None
    correlation_id: str | None = None
    http_method: str | None = None
    path: str | None = None


def modified_properties(detail: Mapping[str, Any]) -> list[dict[str, str | None]]:
    """Graph `auditProperty` list from a detail: `before`/`after` mappings diff, other keys are new values."""
    before, after = detail.get("before"), detail.get("after")
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        names = [name for name in dict.fromkeys([*before, *after]) if before.get(name) != after.get(name)]
        return [_property(name, before.get(name), after.get(name)) for name in names]
    return [_property(name, None, value) for name, value in redact(detail).items()]


def _property(name: str, old: Any, new: Any) -> dict[str, str | None]:
    if is_secret_name(name):
        old, new = (None if old is None else REDACTED), (None if new is None else REDACTED)
    return {"displayName": name, "oldValue": _text(_redact_value(old)), "newValue": _text(_redact_value(new))}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


class AuditWriter(Protocol):
    async def write(self, record: AuditRecord) -> None:
        """Store one audit event."""


class AuditSink(Protocol):
    async def device_event(self, *, activity: str, target: str, detail: Mapping[str, Any]) -> None:
        """A security-relevant event on the device path (rejected signature, certificate reuse, ...)."""

    async def admin_event(
        self,
        *,
        actor: str,
        activity: str,
        target: str | None,
        detail: Mapping[str, Any],
        result: str = "success",
    ) -> None:
        """An administrator's change (attached to the current admin request when there is one)."""
