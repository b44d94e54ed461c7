"""The Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import warnings

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from muster.store.engine import create_engine
from muster.store.migrate import alembic_config, current_revision, upgrade
from muster.store.schema import MIGRATION_ONLY_INDEXES, declared_in_metadata, metadata


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": declared_in_metadata}
    )
    with warnings.catch_warnings():
        # SQLite's reflection skips expression indexes with a warning; they are checked by name below.
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        return list(compare_metadata(context, metadata))


def _index_names(connection: Connection) -> set[str]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        found = {index["name"] for index in inspect(connection).get_indexes("devices")}
    if connection.dialect.name == "sqlite":  # not reflected there: read the catalogue
        rows = connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
        found |= {row[0] for row in rows}
    return found


async def test_upgrade_matches_the_declared_schema_and_is_repeatable(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    await asyncio.to_thread(upgrade, database_url)  # `muster serve` runs it on every start
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            assert await connection.run_sync(_index_names) >= MIGRATION_ONLY_INDEXES
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert await current_revision(database_url) == head
