"""The audit trail: who did what to which object, with secrets redacted (Graph `auditEvents` shape)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

_SECRET_HINTS = ("password", "secret", "token", "key", "challenge", "magic", "passcode", "pin")
REDACTED = "[redacted]"


def redact(detail: Mapping[str, Any]) -> dict[str, Any]:
    """Copy `detail`, replacing values whose key names a secret (recursively)."""
    clean: dict[str, Any] = {}
    for key, value in detail.items():
        if any(hint in key.lower() for hint in _SECRET_HINTS):
            clean[key] = REDACTED
        elif isinstance(value, Mapping):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


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
        """An administrator's change."""
