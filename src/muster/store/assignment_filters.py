"""SQL storage of assignment filters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.assignment_filters import FilterPlatform
from muster.domain.rbac import Scope, object_tags
from muster.services.assignment_filters import AssignmentFilterRow
from muster.store.scope_tags import scope_clause
from muster.store.tables_assignment_filters import assignment_filters

f = assignment_filters.c
_COLUMNS = [
    f.id,
    f.org_id,
    f.display_name,
    f.description,
    f.platform,
    f.rule,
    f.scope_tag_ids,
    f.created_at,
    f.updated_at,
]


def _row(found: Mapping[Any, Any]) -> AssignmentFilterRow:
    return AssignmentFilterRow(
        **{**found, "platform": FilterPlatform(found["platform"]), "scope_tag_ids": tuple(found["scope_tag_ids"])}
    )


def _values(row: AssignmentFilterRow, name_key: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "org_id": row.org_id,
        "display_name": row.display_name,
        "name_key": name_key,
        "description": row.description,
        "platform": row.platform.value,
        "rule": row.rule,
        "scope_tag_ids": list(object_tags(row.scope_tag_ids)),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class SqlAssignmentFilterStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, row: AssignmentFilterRow, name_key: str) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(assignment_filters).values(**_values(row, name_key)))
        except IntegrityError:  # the (org, name key) unique constraint
            return False
        return True

    async def save(self, row: AssignmentFilterRow, name_key: str) -> bool:
        values = _values(row, name_key)
        del values["id"], values["org_id"], values["platform"], values["created_at"]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(assignment_filters).where(f.org_id == row.org_id, f.id == row.id).values(**values)
                )
        except IntegrityError:
            return False
        return True

    async def all(self, org_id: str, scope: Scope) -> list[AssignmentFilterRow]:
        query = (
            select(*_COLUMNS).where(f.org_id == org_id, scope_clause(f.scope_tag_ids, scope)).order_by(f.name_key, f.id)
        )
        async with self._engine.connect() as conn:
            return [_row(found._mapping) for found in await conn.execute(query)]

    async def get(self, org_id: str, filter_id: str) -> AssignmentFilterRow | None:
        async with self._engine.connect() as conn:
            found = (await conn.execute(select(*_COLUMNS).where(f.org_id == org_id, f.id == filter_id))).first()
        return _row(found._mapping) if found else None

    async def get_many(self, org_id: str, filter_ids: Sequence[str]) -> list[AssignmentFilterRow]:
        """The filters of `org_id` among `filter_ids` (those that exist), in no particular order."""
        if not filter_ids:
            return []
        query = select(*_COLUMNS).where(f.org_id == org_id, f.id.in_(sorted(set(filter_ids))))
        async with self._engine.connect() as conn:
            return [_row(found._mapping) for found in await conn.execute(query)]

    async def delete(self, org_id: str, filter_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(assignment_filters).where(f.org_id == org_id, f.id == filter_id))
