"""SQL storage of corporate device identifiers (see `muster.services.corporate_identifiers`).

Imports insert with `INSERT ... ON CONFLICT DO NOTHING RETURNING` on the (identifier, type, org) key and then read
the rows that were already there, so concurrent imports of the same identifiers never fail nor duplicate (no
check-then-insert race). PostgreSQL gets each chunk as one JSON parameter; SQLite as many parameter sets, which
SQLAlchemy sends as multi-row INSERTs in pages ("insertmanyvalues").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from muster.domain.corporate_identifiers import EnrollmentState, IdentityType, Key, ValidIdentity, identity_type
from muster.protocols.odata import QueryOptions
from muster.services.corporate_identifiers import ImportedIdentityRow, Stored
from muster.store.odata import Field, count_query, page_query, split_page
from muster.store.tables import UtcDateTime
from muster.store.tables_corporate_identifiers import imported_device_identities

t = imported_device_identities.c
_CHUNK = 5000  # keys per IN (...) list: far below asyncpg's 32,767 parameters

IDENTITY_FIELDS: dict[str, Field] = {
    "id": Field(t.id, str),
    "importedDeviceIdentifier": Field(t.identifier, str),
    "importedDeviceIdentityType": Field(t.identity_type, str),
    "description": Field(t.description, str),
    "platform": Field(t.platform, str),
    "enrollmentState": Field(t.enrollment_state, str),
    "createdDateTime": Field(t.created_at, datetime),
    "lastModifiedDateTime": Field(t.updated_at, datetime),
    "lastContactedDateTime": Field(t.last_contacted_at, datetime),
}
_COLUMNS = [column for column in imported_device_identities.c]


def _row(found: Mapping[Any, Any]) -> ImportedIdentityRow:
    return ImportedIdentityRow(**{column.name: found[column.name] for column in _COLUMNS})


def _values(row: ImportedIdentityRow) -> dict[str, Any]:
    return {column.name: getattr(row, column.name) for column in _COLUMNS}


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _keys_clause(keys: Sequence[Key]) -> ColumnElement[bool]:
    """Rows of any of `keys` (at most _CHUNK), as one IN list per identity type so the unique index serves it."""
    by_type: dict[IdentityType, list[str]] = {}
    for kind, identifier in keys:
        by_type.setdefault(kind, []).append(identifier)
    return or_(*(and_(t.identity_type == kind.value, t.identifier.in_(ids)) for kind, ids in by_type.items()))


# PostgreSQL receives a chunk as one JSON parameter unpacked by json_to_recordset(): one statement and one string
# to encode, where a multi-row VALUES costs SQLAlchemy and asyncpg per parameter, and text[] arrays cost asyncpg an
# ABC isinstance() per element (together over a third of the server's time for a million identifiers).
_POSTGRESQL_INSERT = text(
    "INSERT INTO imported_device_identities"
    " (id, org_id, identity_type, identifier, description, platform, enrollment_state, created_at, updated_at)"
    " SELECT given.id, :org_id, given.identity_type, given.identifier, given.description, given.platform,"
    " :state, :now, :now"
    " FROM json_to_recordset(CAST(:rows AS json))"
    " AS given(id text, identity_type text, identifier text, description text, platform text)"
    " ON CONFLICT (identifier, identity_type, org_id) DO NOTHING"
    " RETURNING identity_type, identifier"
).bindparams(bindparam("now", type_=UtcDateTime()))
_SQLITE_INSERT = (
    sqlite_insert(imported_device_identities)
    .on_conflict_do_nothing(index_elements=[t.identifier, t.identity_type, t.org_id])
    .returning(t.identity_type, t.identifier)
)


class SqlCorporateIdentifierStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"

    async def page(
        self, org_id: str, options: QueryOptions
    ) -> tuple[list[ImportedIdentityRow], str | None, int | None]:
        base = select(imported_device_identities).where(t.org_id == org_id)
        async with self._engine.connect() as conn:
            query = page_query(base, fields=IDENTITY_FIELDS, options=options, id_column=t.id)
            rows = [row._mapping for row in await conn.execute(query)]
            total = (
                (await conn.execute(count_query(base, IDENTITY_FIELDS, options))).scalar_one()
                if options.count
                else None
            )
        page, token = split_page(rows, options=options, fields=IDENTITY_FIELDS, id_key="id")
        return [_row(row) for row in page], token, total

    async def get(self, org_id: str, identity_id: str) -> ImportedIdentityRow | None:
        query = select(imported_device_identities).where(t.org_id == org_id, t.id == identity_id)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).first()
        return _row(found._mapping) if found else None

    async def import_identities(
        self, org_id: str, identities: Sequence[ValidIdentity], *, overwrite: bool, now: datetime
    ) -> dict[Key, tuple[Stored, ImportedIdentityRow]]:
        stored: dict[Key, tuple[Stored, ImportedIdentityRow]] = {}
        async with self._engine.begin() as conn:
            for chunk in _chunks(identities):
                stored |= await self._import_chunk(conn, org_id, chunk, overwrite=overwrite, now=now)
        return stored

    async def _import_chunk(
        self, conn: AsyncConnection, org_id: str, identities: Sequence[ValidIdentity], *, overwrite: bool, now: datetime
    ) -> dict[Key, tuple[Stored, ImportedIdentityRow]]:
        new_rows = [
            ImportedIdentityRow(
                id=str(uuid.uuid4()),
                org_id=org_id,
                identity_type=identity.identity_type.value,
                identifier=identity.identifier,
                description=identity.details,
                platform=identity.platform.value,
                enrollment_state=EnrollmentState.NOT_CONTACTED.value,
                created_at=now,
                updated_at=now,
                last_contacted_at=None,
            )
            for identity in identities
        ]
        inserted = await self._insert(conn, new_rows)
        stored = {
            _key(row): (Stored.CREATED, row) for row in new_rows if (row.identity_type, row.identifier) in inserted
        }
        wanted = {identity.key: identity for identity in identities if identity.key not in stored}
        if not wanted:
            return stored
        query = select(imported_device_identities).where(t.org_id == org_id, _keys_clause(list(wanted)))
        existing = [_row(row._mapping) for row in await conn.execute(query)]
        differing = [row for row in existing if row.description != wanted[_key(row)].details]
        if overwrite and differing:
            await conn.execute(
                update(imported_device_identities)
                .where(t.id == bindparam("row_id"))
                .values(description=bindparam("new_description"), updated_at=now),
                [{"row_id": row.id, "new_description": wanted[_key(row)].details} for row in differing],
            )
        differing_ids = {row.id for row in differing}
        for row in existing:
            if row.id not in differing_ids:
                stored[_key(row)] = (Stored.UNCHANGED, row)
            elif overwrite:
                changed = replace(row, description=wanted[_key(row)].details, updated_at=now)
                stored[_key(row)] = (Stored.OVERWRITTEN, changed)
            else:
                stored[_key(row)] = (Stored.DIFFERENT_DETAILS, row)
        return stored

    async def _insert(self, conn: AsyncConnection, rows: Sequence[ImportedIdentityRow]) -> set[tuple[str, str]]:
        """Insert the rows whose identifier is new (ON CONFLICT DO NOTHING); the (type, identifier) of those."""
        if not self._postgresql:
            result = await conn.execute(_SQLITE_INSERT, [_values(row) for row in rows])
            return {(found.identity_type, found.identifier) for found in result}
        first = rows[0]  # the rows of one import share organisation, state and time
        given = orjson.dumps(
            [
                {
                    "id": row.id,
                    "identity_type": row.identity_type,
                    "identifier": row.identifier,
                    "description": row.description,
                    "platform": row.platform,
                }
                for row in rows
            ]
        ).decode()
        parameters = {"rows": given, "org_id": first.org_id, "state": first.enrollment_state, "now": first.created_at}
        result = await conn.execute(_POSTGRESQL_INSERT, parameters)
        return {(found.identity_type, found.identifier) for found in result}

    async def find(self, org_id: str, keys: Sequence[Key]) -> list[ImportedIdentityRow]:
        found: list[ImportedIdentityRow] = []
        async with self._engine.connect() as conn:
            for chunk in _chunks(keys):
                query = select(imported_device_identities).where(t.org_id == org_id, _keys_clause(chunk)).order_by(t.id)
                found += [_row(row._mapping) for row in await conn.execute(query)]
        return found

    async def find_match(self, org_id: str, keys: Sequence[Key]) -> ImportedIdentityRow | None:
        if not keys:
            return None
        by_key = {_key(row): row for row in await self.find(org_id, keys)}
        return next((by_key[key] for key in keys if key in by_key), None)

    async def mark_contacted(self, identity_id: str, now: datetime, enrolled: bool) -> None:
        state = EnrollmentState.ENROLLED if enrolled else EnrollmentState.UNKNOWN
        async with self._engine.begin() as conn:
            await conn.execute(
                update(imported_device_identities)
                .where(t.id == identity_id)
                .values(enrollment_state=state.value, last_contacted_at=now)
            )

    async def delete(self, org_id: str, identity_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(imported_device_identities).where(t.org_id == org_id, t.id == identity_id)
            )
        return bool(result.rowcount)

    async def delete_keys(self, org_id: str, keys: Sequence[Key]) -> set[Key]:
        deleted: set[Key] = set()
        async with self._engine.begin() as conn:
            for chunk in _chunks(keys):
                statement = (
                    delete(imported_device_identities)
                    .where(t.org_id == org_id, _keys_clause(chunk))
                    .returning(t.identity_type, t.identifier)
                )
                deleted |= {(identity_type(row.identity_type), row.identifier) for row in await conn.execute(statement)}
        return deleted


def _key(row: ImportedIdentityRow) -> Key:
    return identity_type(row.identity_type), row.identifier
