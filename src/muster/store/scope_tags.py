"""Scope tags kept on each tagged object's own row: the `scope_tag_ids` column and the SQL that tests it.

A scope-tagged table declares `scope_tags_column()` and names its kind in `info` (`tagged_table_info`). Keeping
the tags on the row (rather than in a link table) lets a scoped list test them on the rows it already reads, with
no probe into another index per row: the cost of the scope check on a 1,000,000-device list is what the issue
bounds. PostgreSQL stores the list as JSONB and tests it with `?|`; SQLite as JSON, tested through `json_each`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, Boolean, Column, ColumnElement, exists, false, func, literal, select, true
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from muster.domain.rbac import Scope, TaggedObject

COLUMN = "scope_tag_ids"
TAG_LIST = JSON().with_variant(JSONB(), "postgresql")
DEFAULT_TAGS = '["0"]'  # the built-in Default tag (muster.domain.rbac.DEFAULT_SCOPE_TAG_ID)


def scope_tags_column() -> Column[Any]:
    """The tag ids of the row's object, never empty (an object created without tags carries Default, "0")."""
    return Column(COLUMN, TAG_LIST, nullable=False, server_default=DEFAULT_TAGS)


def tagged_table_info(kind: TaggedObject) -> dict[str, Any]:
    """The `info` of a scope-tagged table, so that tag bookkeeping (in-use counts) finds every such table."""
    return {"tagged_object": kind}


class _CarriesAnyTag(ColumnElement[bool]):
    """True when the JSON tag list in `column` holds at least one of `tag_ids`."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("tag_ids", InternalTraversal.dp_string_list),
    ]

    def __init__(self, column: ColumnElement[Any], tag_ids: Iterable[str]) -> None:
        self.column = column
        self.tag_ids = sorted(set(tag_ids))


@compiles(_CarriesAnyTag, "postgresql")
def _carries_any_tag_postgresql(element: _CarriesAnyTag, compiler: Any, **kw: Any) -> str:
    tags = array([literal(tag) for tag in element.tag_ids])
    return str(compiler.process(element.column.op("?|")(tags), **kw))


@compiles(_CarriesAnyTag)
def _carries_any_tag_json_each(element: _CarriesAnyTag, compiler: Any, **kw: Any) -> str:
    entries = func.json_each(element.column).table_valued("value")
    return str(compiler.process(exists(select(literal(1)).where(entries.c.value.in_(element.tag_ids))), **kw))


def carries_any_tag(column: ColumnElement[Any], tag_ids: Iterable[str]) -> ColumnElement[bool]:
    return _CarriesAnyTag(column, tag_ids)


def scope_clause(column: ColumnElement[Any], scope: Scope) -> ColumnElement[bool]:
    """A where-clause keeping the rows whose `scope_tag_ids` hold a tag within `scope`."""
    if scope.everything:
        return true()
    if not scope.tag_ids:  # PostgreSQL cannot type an empty ARRAY[]; no tag reaches nothing anyway
        return false()
    return carries_any_tag(column, scope.tag_ids)
