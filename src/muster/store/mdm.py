"""The SQL `MdmStore`: check-in storage and the command queue behind one object."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from muster.store.checkins import SqlCheckinStore
from muster.store.command_queue import SqlCommandStore


class SqlMdmStore(SqlCheckinStore, SqlCommandStore):
    def __init__(self, engine: AsyncEngine) -> None:
        SqlCheckinStore.__init__(self, engine)
        SqlCommandStore.__init__(self, engine)
