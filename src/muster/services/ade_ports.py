"""What the ADE use cases need from storage and from Apple (implemented in `muster.store` and `muster.clients`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from muster.protocols.apple.dep import AssignmentResult, DepAccount, DepProfile, FetchPage
from muster.protocols.apple.dep_token import DepCredentials


@dataclass(frozen=True)
class SyncedDevice:
    """One device as ABM reported it in a fetch or sync page."""

    serial_number: str
    model: str | None
    description: str | None
    color: str | None
    asset_tag: str | None
    os: str | None
    device_family: str | None
    profile_uuid: str | None
    profile_status: str | None
    profile_assign_time: datetime | None
    profile_push_time: datetime | None
    device_assigned_date: datetime | None
    device_assigned_by: str | None
    op_type: str | None
    op_date: datetime | None


@dataclass(frozen=True)
class TokenSyncRow:
    id: str
    org_id: str
    credentials_encrypted: bytes | None
    token_expires_at: datetime | None
    cursor: str | None
    cursor_kind: str | None
    fetch_generation: str | None
    full_sync_required: bool
    last_sync_started_at: datetime | None
    last_full_sync_at: datetime | None
    last_manual_sync_at: datetime | None
    last_sync_outcome: str | None
    sync_started_at: datetime | None
    sync_lease_expires_at: datetime | None
    sync_kind: str | None
    device_count: int


@dataclass(frozen=True)
class PageWrite:
    """A page of devices and the cursor that follows it, written together or not at all."""

    token_id: str
    org_id: str
    owner: str
    run_id: str
    devices: Sequence[SyncedDevice]
    cursor: str
    cursor_kind: str  # fetch | sync
    fetch_generation: str
    create_missing: bool  # a full fetch creates rows; a delta creates them only for `added`
    fetch_complete: bool  # the last page of a full fetch: devices not listed in it were released
    now: datetime
    lease: timedelta


class AdeSyncStore(Protocol):
    async def token_sync_row(self, token_id: str) -> TokenSyncRow | None: ...

    async def tokens_for_sync(self) -> list[TokenSyncRow]: ...

    async def acquire(
        self, token_id: str, *, owner: str, run_id: str, kind: str, manual: bool, now: datetime, lease: timedelta
    ) -> bool:
        """Take the token's sync lease unless a live run holds it (one sync per token across processes)."""

    async def save_page(self, page: PageWrite) -> bool:
        """False when this run lost its lease: nothing was written."""

    async def finish(
        self,
        token_id: str,
        *,
        owner: str,
        run_id: str,
        outcome: str,
        error: str | None,
        full_sync_required: bool,
        reset_cursor: bool,
        now: datetime,
    ) -> None: ...

    async def purge_released(self, before: datetime) -> int: ...


class DepApi(Protocol):
    """The slice of Apple's DEP API the use cases call (`muster.clients.dep.DepClient`)."""

    async def account(self) -> DepAccount: ...

    async def fetch_devices(self, cursor: str | None = None, limit: int = ...) -> FetchPage: ...

    async def sync_devices(self, cursor: str, limit: int = ...) -> FetchPage: ...

    async def define_profile(self, profile: DepProfile) -> tuple[str, dict[str, str]]: ...

    async def assign_profile(self, profile_uuid: str, serials: Iterable[str]) -> AssignmentResult: ...

    async def aclose(self) -> None: ...


DepApiFactory = Callable[[DepCredentials], DepApi]
