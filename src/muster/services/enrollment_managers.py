"""Device enrollment managers (DEM): the non-administrator accounts allowed to enroll many shared devices.

Seeds: seed-catalog-A §2.6 DEM-01..06 and E17 (003_729e51c15a5a5608.txt:1442-1523). Intune has no Graph resource
for them; Muster serves `deviceEnrollmentManagers` in Graph's style. The enrollment decision asks `is_manager` and
`enrolled_device_count` (DEM-05's 1,000 devices is the decision engine's rule, not this module's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotAllowed, NotFound
from muster.services.audit import AuditSink

MAX_MANAGERS = 150  # DEM-06 (003_729e51c15a5a5608.txt:1523): the 151st is refused
DEM_ENROLLMENT_TYPE = "deviceEnrollmentManager"  # managedDevice.deviceEnrollmentType of a DEM's devices


@dataclass(frozen=True)
class EnrollmentManagerRow:
    user_id: str
    user_principal_name: str
    display_name: str | None
    added_at: datetime
    added_by: str
    enrolled_device_count: int


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    account_enabled: bool


class EnrollmentManagerStore(Protocol):
    async def managers(self, org_id: str) -> list[EnrollmentManagerRow]: ...

    async def manager(self, org_id: str, user_id: str) -> EnrollmentManagerRow | None: ...

    async def user(self, org_id: str, user_principal_name: str) -> DirectoryUser | None: ...

    async def is_administrator(self, org_id: str, user_id: str) -> bool:
        """Whether the user, or a group it belongs to (nested too), is a member of any role assignment."""

    async def add(self, org_id: str, user_id: str, *, actor: str, now: datetime, limit: int) -> None:
        """Make the user a DEM; Conflict when it is one already or the organisation has `limit` of them (the
        count and the insert are serialised per organisation, so concurrent adds cannot pass the limit)."""

    async def remove(self, org_id: str, user_id: str) -> bool: ...


class EnrollmentManagers:
    def __init__(self, *, store: EnrollmentManagerStore, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def all(self, org_id: str) -> list[EnrollmentManagerRow]:
        return await self._store.managers(org_id)

    async def get(self, org_id: str, user_id: str) -> EnrollmentManagerRow:
        found = await self._store.manager(org_id, user_id)
        if found is None:
            raise NotFound(f"device enrollment manager {user_id} not found")
        return found

    async def add(self, org_id: str, user_principal_name: str, *, actor: str) -> EnrollmentManagerRow:
        """DEM-01: a directory user, enabled; DEM-04: not an administrator; DEM-06: at most 150."""
        user = await self._store.user(org_id, user_principal_name)
        if user is None:
            raise InvalidInput(f"there is no user {user_principal_name} in the directory")
        if not user.account_enabled:
            raise InvalidInput(f"the account of {user.user_principal_name} is disabled")
        if await self._store.is_administrator(org_id, user.id):
            raise NotAllowed(
                f"{user.user_principal_name} is an administrator (member of a role assignment); "
                "a device enrollment manager must be a non-administrator account"
            )
        await self._store.add(org_id, user.id, actor=actor, now=self._clock.now(), limit=MAX_MANAGERS)
        await self._audit.admin_event(
            actor=actor, activity="addDeviceEnrollmentManager", target=user.id, detail={"upn": user.user_principal_name}
        )
        return await self.get(org_id, user.id)

    async def remove(self, org_id: str, user_id: str, *, actor: str) -> None:
        """DEM-02. The devices it enrolled stay enrolled and corporate-owned."""
        if not await self._store.remove(org_id, user_id):
            raise NotFound(f"device enrollment manager {user_id} not found")
        await self._audit.admin_event(actor=actor, activity="removeDeviceEnrollmentManager", target=user_id, detail={})
