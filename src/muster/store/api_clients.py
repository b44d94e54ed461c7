"""SQL storage of API clients (Graph `applications`) and their password and certificate credentials."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import RowMapping, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muster.protocols.odata import QueryOptions
from muster.services.api_clients import Application, KeyCredential, PasswordCredential
from muster.store.odata import Field, count_query, page_query, split_page
from muster.store.tables_identity import api_client_keys, api_client_passwords, api_clients

APPLICATION_FIELDS: dict[str, Field] = {
    "id": Field(api_clients.c.id, str),
    "appId": Field(api_clients.c.app_id, str),
    "displayName": Field(api_clients.c.display_name, str),
    "createdDateTime": Field(api_clients.c.created_at, datetime),
}


class SqlApiClientStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, *, org_id: str, application: Application) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_clients).values(
                    id=application.id,
                    org_id=org_id,
                    app_id=application.app_id,
                    display_name=application.display_name,
                    created_at=application.created_at,
                )
            )

    async def page(self, org_id: str, options: QueryOptions) -> tuple[list[Application], str | None, int | None]:
        base = select(api_clients).where(api_clients.c.org_id == org_id)
        async with self._engine.connect() as conn:
            query = page_query(base, fields=APPLICATION_FIELDS, options=options, id_column=api_clients.c.id)
            rows = [r._mapping for r in await conn.execute(query)]
            page, token = split_page(rows, options=options, fields=APPLICATION_FIELDS, id_key="id")
            total = None
            if options.count:
                total = (await conn.execute(count_query(base, APPLICATION_FIELDS, options))).scalar_one()
            return await _with_credentials(conn, page), token, total

    async def get(self, org_id: str, application_id: str) -> Application | None:
        query = select(api_clients).where(api_clients.c.org_id == org_id, api_clients.c.id == application_id)
        async with self._engine.connect() as conn:
            found = await _with_credentials(conn, [r._mapping for r in await conn.execute(query)])
        return found[0] if found else None

    async def by_app_id(self, app_id: str) -> tuple[str, Application] | None:
        query = select(api_clients).where(api_clients.c.app_id == app_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return row.org_id, Application(row.id, row.app_id, row.display_name, row.created_at)

    async def delete(self, org_id: str, application_id: str) -> bool:
        c = api_clients.c
        async with self._engine.begin() as conn:
            for table in (api_client_passwords, api_client_keys):  # explicit: SQLite may run without cascades
                await conn.execute(
                    delete(table).where(
                        table.c.client_id.in_(select(c.id).where(c.org_id == org_id, c.id == application_id))
                    )
                )
            result = await conn.execute(delete(api_clients).where(c.org_id == org_id, c.id == application_id))
        return result.rowcount == 1

    async def add_password(self, application_id: str, credential: PasswordCredential, secret_sha256: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_client_passwords).values(
                    key_id=credential.key_id,
                    client_id=application_id,
                    display_name=credential.display_name,
                    hint=credential.hint,
                    secret_sha256=secret_sha256,
                    start_at=credential.start,
                    end_at=credential.end,
                )
            )

    async def remove_credential(self, application_id: str, key_id: str, *, password: bool) -> bool:
        table = api_client_passwords if password else api_client_keys
        query = delete(table).where(table.c.client_id == application_id, table.c.key_id == key_id)
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount == 1

    async def password_end(self, application_id: str, secret_sha256: str) -> datetime | None:
        p = api_client_passwords.c
        query = select(p.end_at).where(p.client_id == application_id, p.secret_sha256 == secret_sha256)
        async with self._engine.connect() as conn:
            end: datetime | None = (await conn.execute(query)).scalar()
        return end

    async def add_key(self, application_id: str, credential: KeyCredential, certificate_pem: str) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(api_client_keys).values(
                        key_id=credential.key_id,
                        client_id=application_id,
                        display_name=credential.display_name,
                        thumbprint_sha1=credential.thumbprint,
                        certificate_pem=certificate_pem,
                        start_at=credential.start,
                        end_at=credential.end,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def certificate(self, application_id: str, thumbprint: str) -> str | None:
        k = api_client_keys.c
        query = select(k.certificate_pem).where(k.client_id == application_id, k.thumbprint_sha1 == thumbprint)
        async with self._engine.connect() as conn:
            pem: str | None = (await conn.execute(query)).scalar()
        return pem


async def _with_credentials(conn: AsyncConnection, rows: Sequence[RowMapping]) -> list[Application]:
    ids = [row["id"] for row in rows]
    passwords: dict[str, list[PasswordCredential]] = defaultdict(list)
    keys: dict[str, list[KeyCredential]] = defaultdict(list)
    if ids:
        p = api_client_passwords.c
        for row in await conn.execute(select(api_client_passwords).where(p.client_id.in_(ids)).order_by(p.start_at)):
            passwords[row.client_id].append(
                PasswordCredential(row.key_id, row.display_name, row.hint, row.start_at, row.end_at)
            )
        k = api_client_keys.c
        for row in await conn.execute(select(api_client_keys).where(k.client_id.in_(ids)).order_by(k.start_at)):
            keys[row.client_id].append(
                KeyCredential(row.key_id, row.display_name, row.thumbprint_sha1, row.start_at, row.end_at)
            )
    return [
        Application(
            row["id"],
            row["app_id"],
            row["display_name"],
            row["created_at"],
            tuple(passwords[row["id"]]),
            tuple(keys[row["id"]]),
        )
        for row in rows
    ]
