"""Alembic environment: runs migrations over the async engine Muster uses everywhere."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

from muster.store.engine import create_engine
from muster.store.schema import declared_in_metadata, metadata
from muster.store.tables import UtcDateTime


def _render_item(type_: str, obj: Any, _context: Any) -> str | Literal[False]:
    """Render Muster's UTC column type as the plain SQLAlchemy type it stores as."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_object=declared_in_metadata,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_main())
