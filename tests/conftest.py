"""Shared fixtures: the database backends every storage and end-to-end test runs on."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.harness import fresh_postgres_database, postgres_available


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database: SQLite in the test's directory, or a new PostgreSQL database when a server answers."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'muster.db'}"
        return
    if not await postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable, and CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL is not reachable on MUSTER_TEST_PG_URL / 127.0.0.1:5432")
    async with fresh_postgres_database() as url:
        yield url
