"""The Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import warnings

from alembic import command
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


async def test_0003_moves_existing_scope_tags_onto_the_rows_and_back(database_url: str) -> None:
    """Tags given before 0003 (in `scope_tag_links`) survive the move to `scope_tag_ids`, and the downgrade."""
    await asyncio.to_thread(upgrade, database_url, "0002")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'Org', '2026-11-23 00:00:00+00')"
            )
            await conn.exec_driver_sql(
                "INSERT INTO devices (id, org_id, owner_type, enrollment_type, management_state, inventory) "
                "SELECT 'd1', id, 'personal', 'profileEnrollment', 'managed', '{}' FROM organizations"
            )
            await conn.exec_driver_sql(
                "INSERT INTO devices (id, org_id, owner_type, enrollment_type, management_state, inventory) "
                "SELECT 'd2', id, 'personal', 'profileEnrollment', 'managed', '{}' FROM organizations"
            )
            await conn.exec_driver_sql(
                "INSERT INTO scope_tag_links (object_type, object_id, tag_id) VALUES "
                "('managedDevice', 'd1', 'b'), ('managedDevice', 'd1', 'a'), ('depOnboardingSetting', 'd2', 'x')"
            )
        await asyncio.to_thread(upgrade, database_url, "0003")
        async with engine.connect() as conn:
            rows = dict((await conn.exec_driver_sql("SELECT id, scope_tag_ids FROM devices ORDER BY id")).all())
        assert {key: sorted(json.loads(v) if isinstance(v, str) else v) for key, v in rows.items()} == {
            "d1": ["a", "b"],
            "d2": ["0"],  # untagged (the other kind's tag does not leak): Default
        }
        await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0002")
        async with engine.connect() as conn:
            links = (
                await conn.exec_driver_sql("SELECT object_type, object_id, tag_id FROM scope_tag_links ORDER BY 2, 3")
            ).all()
        assert [tuple(link) for link in links] == [
            ("managedDevice", "d1", "a"),
            ("managedDevice", "d1", "b"),
            ("managedDevice", "d2", "0"),
        ]
    finally:
        await engine.dispose()
