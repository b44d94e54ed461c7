"""SQL storage of Apple enrollment type profiles, with priorities kept the permutation 1..N under concurrency.

Every change to the priority list (insert, delete, move) first rewrites the organisation's row with its own
values: on PostgreSQL that takes the row's lock, on SQLite the database write lock, before anything is read. List
changes of one organisation are thus serialised, and the reads that compute the new priorities see the committed
list. (The profiles have no default row to lock, as enrollment restrictions do.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.domain.assignments import AssignmentTarget
from muster.domain.enrollment_type_profiles import (
    EnrollmentType,
    EnrollmentTypeProfile,
    EnrollmentTypeSetting,
    OwnerType,
    insertion_priority,
    reordered,
)
from muster.domain.membership_rules import parse_rule
from muster.domain.rbac import Scope, object_tags
from muster.services.directory import rule_target
from muster.services.enrollment_type_profiles import ProfileRow
from muster.store.directory import MAX_NESTING, groups_of_members
from muster.store.priority_lists import ordered_ids, renumber
from muster.store.scope_tags import scope_clause
from muster.store.tables import group_members, groups, organizations, users
from muster.store.tables_enrollment_type_profiles import enrollment_type_profiles

p = enrollment_type_profiles.c
m = group_members.c


def _row(found: Mapping[Any, Any]) -> ProfileRow:
    choices = tuple((OwnerType(owner), EnrollmentType(kind)) for owner, kind in found["enrollment_type_options"])
    setting = EnrollmentTypeSetting(EnrollmentType(found["default_enrollment_type"]), choices)
    return ProfileRow(
        id=found["id"],
        org_id=found["org_id"],
        profile=EnrollmentTypeProfile(found["display_name"], found["description"], found["platform"], setting),
        priority=found["priority"],
        targets=tuple(AssignmentTarget.from_row(target) for target in found["targets"]),
        scope_tag_ids=tuple(found["scope_tag_ids"]),
        created_at=found["created_at"],
        updated_at=found["updated_at"],
    )


def _values(row: ProfileRow) -> dict[str, Any]:
    setting = row.profile.setting
    return {
        "id": row.id,
        "org_id": row.org_id,
        "display_name": row.profile.display_name,
        "description": row.profile.description,
        "platform": row.profile.platform,
        "default_enrollment_type": setting.default.value,
        "enrollment_type_options": [[owner.value, kind.value] for owner, kind in setting.choices],
        "priority": row.priority,
        "targets": [target.to_row() for target in row.targets],
        "scope_tag_ids": list(object_tags(row.scope_tag_ids)),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def _lock_list(conn: AsyncConnection, org_id: str) -> None:
    """Serialise changes to the organisation's list (see the module docstring)."""
    o = organizations.c
    await conn.execute(update(organizations).where(o.id == org_id).values(name=o.name))


async def _ordered(conn: AsyncConnection, org_id: str) -> list[str]:
    return await ordered_ids(conn, enrollment_type_profiles, p.org_id == org_id)


class SqlEnrollmentTypeProfileStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def all(self, org_id: str, scope: Scope) -> list[ProfileRow]:
        query = (
            select(enrollment_type_profiles)
            .where(p.org_id == org_id, scope_clause(p.scope_tag_ids, scope))
            .order_by(p.priority, p.id)
        )
        async with self._engine.connect() as conn:
            return [_row(found._mapping) for found in await conn.execute(query)]

    async def get(self, org_id: str, profile_id: str) -> ProfileRow | None:
        query = select(enrollment_type_profiles).where(p.org_id == org_id, p.id == profile_id)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return _row(found._mapping) if found else None

    async def add(self, row: ProfileRow) -> ProfileRow:
        async with self._engine.begin() as conn:
            await _lock_list(conn, row.org_id)
            stored = replace(row, priority=insertion_priority(len(await _ordered(conn, row.org_id))))
            await conn.execute(insert(enrollment_type_profiles).values(**_values(stored)))
        return stored

    async def update(self, row: ProfileRow) -> None:
        values = _values(row)
        for fixed in ("id", "org_id", "priority", "created_at"):
            del values[fixed]
        async with self._engine.begin() as conn:
            await conn.execute(
                update(enrollment_type_profiles).where(p.org_id == row.org_id, p.id == row.id).values(**values)
            )

    async def delete(self, row: ProfileRow) -> None:
        async with self._engine.begin() as conn:
            await _lock_list(conn, row.org_id)
            before = await _ordered(conn, row.org_id)
            await conn.execute(delete(enrollment_type_profiles).where(p.org_id == row.org_id, p.id == row.id))
            await renumber(
                conn, enrollment_type_profiles, before, [profile_id for profile_id in before if profile_id != row.id]
            )

    async def set_priority(self, row: ProfileRow, priority: int) -> None:
        async with self._engine.begin() as conn:
            await _lock_list(conn, row.org_id)
            before = await _ordered(conn, row.org_id)
            await renumber(conn, enrollment_type_profiles, before, reordered(before, row.id, priority))

    async def unknown_groups(self, org_id: str, group_ids: Iterable[str]) -> set[str]:
        wanted = set(group_ids)
        if not wanted:
            return set()
        query = select(groups.c.id).where(groups.c.org_id == org_id, groups.c.id.in_(wanted))
        async with self._engine.connect() as conn:
            return wanted - set((await conn.execute(query)).scalars())

    async def groups_holding_devices(self, org_id: str, group_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        async with self._engine.connect() as conn:
            for group_id in sorted(set(group_ids)):
                if await _holds_devices(conn, org_id, group_id):
                    found.add(group_id)
        return found

    async def user_and_groups(self, org_id: str, upn: str) -> tuple[str, frozenset[str]] | None:
        u = users.c
        query = select(u.id).where(u.org_id == org_id, func.lower(u.user_principal_name) == func.lower(upn))
        async with self._engine.connect() as conn:
            user_id = (await conn.execute(query)).scalar_one_or_none()
            if user_id is None:
                return None
            return user_id, (await groups_of_members(conn, org_id, [user_id]))[user_id]


async def _holds_devices(conn: AsyncConnection, org_id: str, group_id: str) -> bool:
    """Whether the group or one of its nested groups (up to MAX_NESTING levels) has a device member or a dynamic
    rule about devices (its members may be none yet, but will be devices)."""
    seen, frontier = {group_id}, {group_id}
    for _ in range(MAX_NESTING):
        rules = select(groups.c.membership_rule).where(
            groups.c.org_id == org_id, groups.c.id.in_(frontier), groups.c.membership_type == "dynamic"
        )
        if any(rule and rule_target(parse_rule(rule)) == "device" for rule in (await conn.execute(rules)).scalars()):
            return True
        members = (await conn.execute(select(m.member_id, m.member_type).where(m.group_id.in_(frontier)))).all()
        if any(member_type == "device" for _, member_type in members):
            return True
        frontier = {member_id for member_id, member_type in members if member_type == "group"} - seen
        if not frontier:
            return False
        seen |= frontier
    return False
