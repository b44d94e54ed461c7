"""SQL storage of device enrollment managers (see `muster.services.enrollment_managers`).

DEM-06's limit holds under concurrent adds: an add first updates its organisation's row (a no-op write), which
PostgreSQL locks until the transaction ends and SQLite takes as its single write lock, so counting and inserting
are serialised per organisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Subquery, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.errors import Conflict
from muster.services.enrollment_managers import DEM_ENROLLMENT_TYPE, DirectoryUser, EnrollmentManagerRow
from muster.store.directory import MAX_NESTING, groups_of_members
from muster.store.tables import devices, organizations, users
from muster.store.tables_corporate_identifiers import device_enrollment_managers
from muster.store.tables_rbac import role_assignments

dem, u, d = device_enrollment_managers.c, users.c, devices.c


def _enrolled_counts(org_id: str) -> Subquery:
    """Devices enrolled by each DEM and still enrolled, by lower-cased UPN."""
    return (
        select(func.lower(d.user_principal_name).label("upn"), func.count().label("devices"))
        .where(d.org_id == org_id, d.enrollment_type == DEM_ENROLLMENT_TYPE, d.unenrolled_at.is_(None))
        .group_by(func.lower(d.user_principal_name))
        .subquery()
    )


def _managers(org_id: str) -> Select[Any]:
    counts = _enrolled_counts(org_id)
    return (
        select(
            dem.user_id,
            u.user_principal_name,
            u.display_name,
            dem.added_at,
            dem.added_by,
            func.coalesce(counts.c.devices, 0).label("enrolled_device_count"),
        )
        .join(users, u.id == dem.user_id)
        .outerjoin(counts, counts.c.upn == func.lower(u.user_principal_name))
        .where(dem.org_id == org_id)
        .order_by(func.lower(u.user_principal_name), dem.user_id)
    )


def _row(found: Mapping[Any, Any]) -> EnrollmentManagerRow:
    return EnrollmentManagerRow(**found)


class SqlEnrollmentManagerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def managers(self, org_id: str) -> list[EnrollmentManagerRow]:
        async with self._engine.connect() as conn:
            return [_row(row._mapping) for row in await conn.execute(_managers(org_id))]

    async def manager(self, org_id: str, user_id: str) -> EnrollmentManagerRow | None:
        async with self._engine.connect() as conn:
            found = (await conn.execute(_managers(org_id).where(dem.user_id == user_id))).first()
        return _row(found._mapping) if found else None

    async def user(self, org_id: str, user_principal_name: str) -> DirectoryUser | None:
        query = select(u.id, u.user_principal_name, u.account_enabled).where(
            u.org_id == org_id, func.lower(u.user_principal_name) == func.lower(user_principal_name)
        )
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return DirectoryUser(**found._mapping) if found else None

    async def is_administrator(self, org_id: str, user_id: str) -> bool:
        async with self._engine.connect() as conn:
            groups = await groups_of_members(conn, org_id, [user_id], levels=MAX_NESTING)
            members = (
                await conn.execute(select(role_assignments.c.members).where(role_assignments.c.org_id == org_id))
            ).scalars()
            principal_ids = {user_id, *groups[user_id]}
            return any(principal_ids & set(assigned) for assigned in members)

    async def add(self, org_id: str, user_id: str, *, actor: str, now: datetime, limit: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(organizations).where(organizations.c.id == org_id).values(id=organizations.c.id))
            count = (await conn.execute(select(func.count()).where(dem.org_id == org_id))).scalar_one()
            if count >= limit:
                raise Conflict(f"the organisation has {limit} device enrollment managers, the most it can have")
            try:
                await conn.execute(
                    insert(device_enrollment_managers).values(
                        user_id=user_id, org_id=org_id, added_by=actor, added_at=now
                    )
                )
            except IntegrityError:
                raise Conflict("the user is a device enrollment manager already") from None

    async def remove(self, org_id: str, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(device_enrollment_managers).where(dem.org_id == org_id, dem.user_id == user_id)
            )
        return bool(result.rowcount)

    async def is_manager(self, org_id: str, user: str) -> bool:
        """For the enrollment decision: whether `user` (a user id or a UPN, any case) is a DEM."""
        query = (
            select(dem.user_id)
            .join(users, u.id == dem.user_id)
            .where(dem.org_id == org_id, or_(u.id == user, func.lower(u.user_principal_name) == func.lower(user)))
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def enrolled_device_count(self, org_id: str, user_principal_name: str) -> int:
        """Devices this DEM enrolled that are still enrolled (DEM-05 counts them against 1,000)."""
        query = select(func.count()).where(
            d.org_id == org_id,
            d.enrollment_type == DEM_ENROLLMENT_TYPE,
            d.unenrolled_at.is_(None),
            func.lower(d.user_principal_name) == func.lower(user_principal_name),
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
