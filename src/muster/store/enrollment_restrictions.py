"""SQL storage of enrollment restrictions, with priority lists kept a permutation 1..N under concurrency.

Every change to a priority list (insert, delete, move) first updates the list's default row, which takes its row
lock on PostgreSQL and the write lock on SQLite before anything is read: list changes of one organisation are
serialised, and the reads that compute the new priorities see the committed list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.domain.assignments import AssignmentTarget
from muster.domain.enrollment_restrictions import (
    DEFAULT_RESTRICTION_PROPERTIES,
    ConfigurationType,
    EnrollmentPolicies,
    LimitPolicy,
    PlatformPolicy,
    PlatformRestriction,
    RestrictionPlatform,
    insertion_priority,
    moved,
)
from muster.domain.rbac import Scope, object_tags
from muster.services.enrollment_restrictions import RestrictionRow, default_id
from muster.store.priority_lists import ordered_ids, renumber
from muster.store.scope_tags import scope_clause
from muster.store.tables import groups
from muster.store.tables_assignment_filters import assignment_filters
from muster.store.tables_enrollment_restrictions import enrollment_restrictions

r = enrollment_restrictions.c
C = ConfigurationType


def _row(found: Mapping[Any, Any]) -> RestrictionRow:
    values = dict(found)
    values["configuration_type"] = C(values["configuration_type"])
    values["platform"] = RestrictionPlatform(values["platform"]) if values["platform"] else None
    values["targets"] = tuple(AssignmentTarget.from_row(target) for target in values["targets"])
    values["scope_tag_ids"] = tuple(values["scope_tag_ids"])
    return RestrictionRow(**values)


def _values(row: RestrictionRow) -> dict[str, Any]:
    values = vars(row).copy()
    values["configuration_type"] = row.configuration_type.value
    values["platform"] = row.platform.value if row.platform else None
    values["targets"] = [target.to_row() for target in row.targets]
    values["scope_tag_ids"] = list(object_tags(row.scope_tag_ids))
    return values


def _list_clause(row: RestrictionRow) -> Any:
    """The rows of `row`'s priority list, its default excepted: the limits, or one platform's restrictions."""
    if row.configuration_type.is_limit:
        return and_(r.org_id == row.org_id, r.configuration_type == C.LIMIT.value)
    return and_(r.org_id == row.org_id, r.configuration_type == C.SINGLE_PLATFORM.value, r.platform == row.platform)


async def _lock_list(conn: AsyncConnection, row: RestrictionRow) -> None:
    """Serialise changes to `row`'s list (see the module docstring)."""
    kind = C.DEFAULT_LIMIT if row.configuration_type.is_limit else C.DEFAULT_PLATFORMS
    lock = update(enrollment_restrictions).where(r.id == default_id(row.org_id, kind)).values(priority=r.priority)
    await conn.execute(lock)


async def _ordered_ids(conn: AsyncConnection, row: RestrictionRow) -> list[str]:
    return await ordered_ids(conn, enrollment_restrictions, _list_clause(row))


class SqlRestrictionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ensure_defaults(self, rows: Iterable[RestrictionRow]) -> None:
        dialect_insert = postgresql_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        statement = dialect_insert(enrollment_restrictions).on_conflict_do_nothing(index_elements=[r.id])
        async with self._engine.begin() as conn:
            await conn.execute(statement, [_values(row) for row in rows])

    async def all(self, org_id: str, scope: Scope) -> list[RestrictionRow]:
        query = (
            select(enrollment_restrictions)
            .where(r.org_id == org_id, scope_clause(r.scope_tag_ids, scope))
            .order_by(r.configuration_type, r.platform, r.priority, r.id)
        )
        async with self._engine.connect() as conn:
            return [_row(found._mapping) for found in await conn.execute(query)]

    async def get(self, org_id: str, restriction_id: str) -> RestrictionRow | None:
        query = select(enrollment_restrictions).where(r.org_id == org_id, r.id == restriction_id)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return _row(found._mapping) if found else None

    async def add(self, row: RestrictionRow) -> RestrictionRow:
        async with self._engine.begin() as conn:
            await _lock_list(conn, row)
            existing = len(await _ordered_ids(conn, row))
            stored = replace(row, priority=insertion_priority(existing))
            await conn.execute(insert(enrollment_restrictions).values(**_values(stored)))
        return stored

    async def update(self, row: RestrictionRow) -> None:
        values = _values(row)
        for fixed in ("id", "org_id", "configuration_type", "platform", "priority", "created_at"):
            del values[fixed]
        async with self._engine.begin() as conn:
            await conn.execute(
                update(enrollment_restrictions).where(r.org_id == row.org_id, r.id == row.id).values(**values)
            )

    async def delete(self, row: RestrictionRow) -> None:
        async with self._engine.begin() as conn:
            await _lock_list(conn, row)
            before = await _ordered_ids(conn, row)
            await conn.execute(delete(enrollment_restrictions).where(r.org_id == row.org_id, r.id == row.id))
            await renumber(
                conn, enrollment_restrictions, before, [policy_id for policy_id in before if policy_id != row.id]
            )

    async def set_priority(self, row: RestrictionRow, priority: int) -> None:
        async with self._engine.begin() as conn:
            await _lock_list(conn, row)
            before = await _ordered_ids(conn, row)
            await renumber(conn, enrollment_restrictions, before, moved(before, row.id, priority))

    async def unknown_groups(self, org_id: str, group_ids: Iterable[str]) -> set[str]:
        wanted = set(group_ids)
        if not wanted:
            return set()
        query = select(groups.c.id).where(groups.c.org_id == org_id, groups.c.id.in_(wanted))
        async with self._engine.connect() as conn:
            return wanted - set((await conn.execute(query)).scalars())

    async def filter_rules(self, org_id: str, filter_ids: Iterable[str], filter_platform: str) -> dict[str, str]:
        wanted = set(filter_ids)
        if not wanted:
            return {}
        f = assignment_filters.c
        query = select(f.id, f.rule).where(f.org_id == org_id, f.platform == filter_platform, f.id.in_(wanted))
        async with self._engine.connect() as conn:
            return {row.id: row.rule for row in await conn.execute(query)}

    async def policies_for(self, org_id: str, platform: RestrictionPlatform) -> EnrollmentPolicies:
        """The default and other restrictions of `platform`, and the limit restrictions: one query. The caller
        (`EnrollmentRestrictions.policies_for`) makes sure the defaults exist."""
        columns = (r.id, r.configuration_type, r.display_name, r.priority, r.settings, r.targets)
        query = select(*columns).where(
            r.org_id == org_id,
            or_(
                r.configuration_type.in_((C.LIMIT.value, C.DEFAULT_LIMIT.value, C.DEFAULT_PLATFORMS.value)),
                and_(r.configuration_type == C.SINGLE_PLATFORM.value, r.platform == platform.value),
            ),
        )
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).all()
        platform_policies: list[PlatformPolicy] = []
        limit_policies: list[LimitPolicy] = []
        for policy_id, kind, name, priority, settings, stored_targets in found:
            targets = tuple(AssignmentTarget.from_row(target) for target in stored_targets)
            if C(kind).is_limit:
                limit_policies.append(LimitPolicy(policy_id, name, priority, settings["limit"], targets))
                continue
            if kind == C.DEFAULT_PLATFORMS.value:
                settings = settings[DEFAULT_RESTRICTION_PROPERTIES[platform]]
            platform_policies.append(
                PlatformPolicy(policy_id, name, priority, PlatformRestriction.from_graph(settings), targets)
            )
        defaults = [p for p in platform_policies if p.is_default], [p for p in limit_policies if p.is_default]
        if not all(defaults):
            raise LookupError(f"organisation {org_id} has no default restrictions yet")
        return EnrollmentPolicies(
            defaults[0][0],
            defaults[1][0],
            tuple(p for p in platform_policies if not p.is_default),
            tuple(p for p in limit_policies if not p.is_default),
        )
