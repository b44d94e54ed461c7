"""SQL storage of terms and conditions, their acceptances and declines."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from muster.domain.assignments import AssignmentTarget
from muster.domain.rbac import Scope, object_tags
from muster.domain.terms import Acceptance
from muster.services.terms import TermsRow
from muster.store.scope_tags import scope_clause
from muster.store.tables import users
from muster.store.tables_terms import terms_acceptances, terms_and_conditions, terms_declines

t = terms_and_conditions.c
a = terms_acceptances.c


def _row(found: Mapping[Any, Any]) -> TermsRow:
    values = dict(found)
    values["targets"] = tuple(AssignmentTarget.from_row(target) for target in values["targets"])
    values["scope_tag_ids"] = tuple(values["scope_tag_ids"])
    return TermsRow(**values)


def _values(row: TermsRow) -> dict[str, Any]:
    values = vars(row).copy()
    values["targets"] = [target.to_row() for target in row.targets]
    values["scope_tag_ids"] = list(object_tags(row.scope_tag_ids))
    return values


class SqlTermsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, row: TermsRow) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(terms_and_conditions).values(**_values(row)))

    async def all(self, org_id: str, scope: Scope) -> list[TermsRow]:
        query = (
            select(terms_and_conditions)
            .where(t.org_id == org_id, scope_clause(t.scope_tag_ids, scope))
            .order_by(t.created_at, t.id)
        )
        async with self._engine.connect() as conn:
            return [_row(found._mapping) for found in await conn.execute(query)]

    async def get(self, org_id: str, terms_id: str) -> TermsRow | None:
        query = select(terms_and_conditions).where(t.org_id == org_id, t.id == terms_id)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return _row(found._mapping) if found else None

    async def update(self, row: TermsRow) -> None:
        values = _values(row)
        del values["id"], values["org_id"], values["created_at"]
        async with self._engine.begin() as conn:
            await conn.execute(
                update(terms_and_conditions).where(t.org_id == row.org_id, t.id == row.id).values(**values)
            )

    async def delete(self, org_id: str, terms_id: str) -> None:
        async with self._engine.begin() as conn:
            # Explicitly, not by the foreign keys' cascade: SQLite connections may run without foreign keys.
            await conn.execute(delete(terms_acceptances).where(a.terms_id == terms_id))
            await conn.execute(delete(terms_declines).where(terms_declines.c.terms_id == terms_id))
            await conn.execute(delete(terms_and_conditions).where(t.org_id == org_id, t.id == terms_id))

    async def accepted(self, org_id: str, user_id: str) -> set[tuple[str, int]]:
        query = select(a.terms_id, a.version).where(a.org_id == org_id, a.user_id == user_id)
        async with self._engine.connect() as conn:
            return {(row.terms_id, row.version) for row in await conn.execute(query)}

    async def add_acceptance(self, org_id: str, terms_id: str, acceptance: Acceptance) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(terms_acceptances).values(
                        terms_id=terms_id,
                        user_id=acceptance.user_id,
                        version=acceptance.accepted_version,
                        org_id=org_id,
                        user_principal_name=acceptance.user_principal_name,
                        accepted_at=acceptance.accepted_at,
                    )
                )
        except IntegrityError:  # the primary key: that version was accepted already, and that time stands
            return

    async def acceptances(self, org_id: str, terms_id: str) -> list[Acceptance]:
        query = (
            select(a.user_id, users.c.display_name, a.user_principal_name, a.version, a.accepted_at)
            .select_from(terms_acceptances.outerjoin(users, users.c.id == a.user_id))
            .where(a.org_id == org_id, a.terms_id == terms_id)
            .order_by(a.accepted_at, a.user_id, a.version)
        )
        async with self._engine.connect() as conn:
            return [Acceptance(*row) for row in await conn.execute(query)]

    async def add_decline(
        self, *, org_id: str, terms_id: str, user_id: str, upn: str, version: int, now: datetime
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(terms_declines).values(
                    id=str(uuid.uuid4()),
                    org_id=org_id,
                    terms_id=terms_id,
                    user_id=user_id,
                    user_principal_name=upn,
                    version=version,
                    declined_at=now,
                )
            )
