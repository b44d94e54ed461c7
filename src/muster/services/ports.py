"""The narrow storage interfaces the use cases need. `muster.store` implements them; tests may fake them.

The device path (check-in, commands) gets coarse methods, one transaction each, because it is the hot path:
a check-in or command round trip costs one database transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class CertificateBinding:
    """A device identity certificate we issued, and the enrollment it was bound to at Authenticate (if yet)."""

    fingerprint: str
    org_id: str
    enrollment_request_id: str | None
    enrollment_id: str | None


@dataclass(frozen=True)
class AuthenticateRecord:
    org_id: str
    enrollment_id: str
    device_key: str  # UDID, or EnrollmentID for User Enrollment
    kind: str
    topic: str
    certificate_fingerprint: str
    enrollment_request_id: str | None
    device_fields: dict[str, Any]
    raw: bytes
    now: datetime


@dataclass(frozen=True)
class TokenUpdateRecord:
    org_id: str
    enrollment_id: str
    device_key: str
    parent_id: str | None
    kind: str
    topic: str
    push_token: bytes
    push_magic: str
    unlock_token_encrypted: bytes | None
    awaiting_configuration: bool
    user_short_name: str | None
    user_long_name: str | None
    enrollment_request_id: str | None
    raw: bytes
    now: datetime


@dataclass(frozen=True)
class TokenUpdateOutcome:
    device_id: str
    newly_enrolled: bool
    personal: bool = False  # personally owned: inventory collects managed apps only (OWN-06)
    requested_name: str | None = None  # the ADE name template's result, applied once enrolled
    ade_profile_platform: str | None = None  # the device's ADE profile, whose Shared iPad settings are applied
    ade_profile_settings: dict[str, Any] | None = None


@dataclass(frozen=True)
class QueuedCommand:
    command_uuid: str
    body: bytes


@dataclass(frozen=True)
class ResultRecord:
    enrollment_id: str
    command_uuid: str
    status: str  # a DeliveryStatus value
    raw: bytes
    error_chain: list[dict[str, Any]] | None
    now: datetime


@dataclass(frozen=True)
class CompletedCommand:
    """What the device path needs to know about a command whose result just arrived."""

    device_id: str
    request_type: str
    action: str | None
    first_result: bool
    command: bytes  # the command as sent, for results that only make sense with it (Settings)


@dataclass(frozen=True)
class PushTargetRecord:
    enrollment_id: str
    topic: str
    push_token: bytes
    push_magic: str


@dataclass(frozen=True)
class NewCommand:
    command_uuid: str
    request_type: str
    body: bytes
    action: str | None = None
    priority: int = 0
    enrollment_ids: Sequence[str] = field(default_factory=tuple)


class MdmStore(Protocol):
    async def certificate_binding(self, fingerprint: str) -> CertificateBinding | None: ...

    async def authenticate(self, record: AuthenticateRecord) -> None:
        """Create or reset the device and its enrollment (disabled until TokenUpdate), cancel whatever was
        queued for it and its user channels, bind the certificate, keep the raw message."""

    async def token_update(self, record: TokenUpdateRecord) -> TokenUpdateOutcome: ...

    async def check_out(self, *, enrollment_id: str, raw: bytes, now: datetime) -> None: ...

    async def save_checkin(self, *, enrollment_id: str, message_type: str, raw: bytes, now: datetime) -> None: ...

    async def set_bootstrap_token(
        self, *, enrollment_id: str, encrypted: bytes | None, raw: bytes, now: datetime
    ) -> None: ...

    async def bootstrap_token(self, enrollment_id: str) -> bytes | None: ...

    async def report_and_next(
        self, result: ResultRecord | None, *, enrollment_id: str, after_idle: bool, now: datetime
    ) -> tuple[CompletedCommand | None, QueuedCommand | None]:
        """Store the device's result (None after Idle) and hand out the next eligible command exactly once (row
        locks across server processes), in one transaction. The completed command is None when the delivery is
        unknown or already final (a repeated result)."""

    async def enqueue(self, batch: Sequence[NewCommand], *, org_id: str, created_by: str, now: datetime) -> int:
        """Queue commands in one transaction, delivered in the order given."""

    async def push_targets(self, enrollment_ids: Sequence[str]) -> list[PushTargetRecord]: ...

    async def mark_push_unregistered(self, enrollment_ids: Sequence[str]) -> None: ...

    async def apply_inventory(self, *, device_id: str, columns: dict[str, Any], inventory: dict[str, Any]) -> None: ...

    async def set_management_state(self, *, device_id: str, state: str, now: datetime, unenrolled: bool) -> None: ...
