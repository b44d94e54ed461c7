"""The in-memory OData evaluator gives the SQL engine's answers: same rows, order, pages, tokens and errors.

The SQL engine (muster.store.odata) runs on SQLite, and on PostgreSQL when MUSTER_TEST_PG_URL answers, over
the same random rows and filters (the strategies of tests/store/test_odata.py) as the evaluator.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from muster.protocols.odata import Expr, ODataError, OrderBy, QueryOptions, parse_filter, parse_orderby
from muster.protocols.odata_eval import evaluate
from muster.store.odata import compile_filter, page_query, split_page
from tests.store.test_odata import (
    FILTERS,
    KINDS,
    ORDERBYS,
    ROWS,
    SETTINGS,
    _postgres_problem,
    committed_table,
    fields_of,
    make_table,
    replace_rows,
    run,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'odata.db'}"
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return os.environ.get("MUSTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
        "postgresql://", "postgresql+asyncpg://", 1
    )


def memory_pages(rows: list[dict[str, Any]], options: QueryOptions) -> list[tuple[list[int], str | None]]:
    pages, token = [], None
    for _ in range(100):
        page = evaluate(rows, replace(options, skiptoken=token), KINDS)
        token = page.skiptoken
        pages.append(([item["id"] for item in page.items], token))
        if token is None:
            return pages
    raise AssertionError("paging did not end")


def sql_pages(reader: Connection, options: QueryOptions, table: Any) -> list[tuple[list[int], str | None]]:
    fields, pages, token = fields_of(table), [], None
    for _ in range(100):
        page_options = replace(options, skiptoken=token)
        query = page_query(select(table), fields=fields, options=page_options, id_column=table.c.id)
        rows = reader.execute(query).mappings().all()
        page, token = split_page(rows, options=page_options, fields=fields, id_key="id")
        pages.append(([row["id"] for row in page], token))
        if token is None:
            return pages
    raise AssertionError("paging did not end")


def test_filters_and_counts_match_the_sql_engine(sql_url: str) -> None:
    table = make_table()
    fields = fields_of(table)

    def work(reader: Connection, writer: Connection) -> None:
        with committed_table(table, writer, reader):

            @SETTINGS
            @given(rows=ROWS, expr=FILTERS)
            def check(rows: list[dict[str, Any]], expr: Expr) -> None:
                replace_rows(reader, table, rows)
                found = reader.execute(select(table.c.id).where(compile_filter(expr, fields))).scalars().all()
                page = evaluate(rows, QueryOptions(expr, (), (), 1000, None, True), KINDS)
                assert [item["id"] for item in page.items] == sorted(found)
                assert page.count == len(found)

            check()

    run(sql_url, work)


def test_pages_and_skiptokens_match_the_sql_engine(sql_url: str) -> None:
    table = make_table()

    def work(reader: Connection, writer: Connection) -> None:
        with committed_table(table, writer, reader):

            @SETTINGS
            @given(rows=ROWS, orderby=ORDERBYS, top=st.integers(1, 5), expr=st.none() | FILTERS)
            def check(rows: list[dict[str, Any]], orderby: tuple[OrderBy, ...], top: int, expr: Expr) -> None:
                replace_rows(reader, table, rows)
                options = QueryOptions(expr, orderby, (), top, None, False)
                # equal tokens too: a nextLink from either engine continues on the other
                assert memory_pages(rows, options) == sql_pages(reader, options, table)

            check()

    run(sql_url, work)


FILTER_ERRORS = [
    "colour eq 'red'",
    "slotCount eq 'five'",
    "deviceName eq 5",
    "score eq true",
    "isSupervised eq 1",
    "enrolledDateTime ge '2024-05-01'",
    "slotCount in (1, 'x')",
    "startswith(slotCount,'1')",
    "isSupervised gt false",
    "deviceName eq 'x' or colour eq 'red'",
    "not (score gt 1 and enrolledDateTime eq 5)",
]


@pytest.mark.parametrize("text", FILTER_ERRORS)
def test_filter_errors_are_the_sql_engines(text: str) -> None:
    expr = parse_filter(text)
    with pytest.raises(ODataError) as sql_error:
        compile_filter(expr, fields_of(make_table()))
    with pytest.raises(ODataError, match=f"^{re.escape(str(sql_error.value))}$"):
        evaluate([], QueryOptions(expr, (), (), 10, None, False), KINDS)


def test_unknown_orderby_property_is_refused() -> None:
    with pytest.raises(ODataError, match=r"^\$orderby: unknown property 'colour'$"):
        evaluate([], QueryOptions(None, parse_orderby("colour desc"), (), 10, None, False), KINDS)


GRAPH_ITEMS = [
    {"id": "b", "displayName": "Élan", "createdDateTime": "2024-05-01T10:00:00Z"},
    {"id": "a", "displayName": "élan", "createdDateTime": "2024-05-01T12:00:00+02:00"},
    {"id": "c", "displayName": "ELAN", "createdDateTime": None},
]
GRAPH_KINDS = {"id": str, "displayName": str, "createdDateTime": datetime}


def _ids(text: str | None, orderby: str = "") -> list[str]:
    options = QueryOptions(
        None if text is None else parse_filter(text), parse_orderby(orderby) if orderby else (), (), 10, None, False
    )
    return [item["id"] for item in evaluate(GRAPH_ITEMS, options, GRAPH_KINDS).items]


def test_graph_dicts_with_iso_datetimes_and_ascii_case_folding() -> None:
    assert _ids("createdDateTime lt 2024-05-01T10:00:00Z") == []  # 12:00+02:00 is 10:00Z too
    assert _ids("createdDateTime eq 2024-05-01T12:00:00+02:00") == ["a", "b"]
    assert _ids("createdDateTime ne null", "createdDateTime desc,id desc") == ["b", "a"]
    assert _ids(None, "createdDateTime") == ["c", "a", "b"]  # null first, then ties by id
    # like SQLite's lower(), only ASCII letters fold: 'É' and 'é' differ
    assert _ids("displayName eq 'éLAN'") == ["a"]
    assert _ids("startswith(displayName,'É')") == ["b"]
    assert _ids("displayName in ('elan', 'x')") == ["c"]


def test_a_token_from_another_query_is_refused() -> None:
    options = QueryOptions(None, parse_orderby("displayName"), (), 1, None, False)
    token = evaluate(GRAPH_ITEMS, options, GRAPH_KINDS).skiptoken
    assert token is not None
    other = replace(options, orderby=parse_orderby("displayName desc"), skiptoken=token)
    with pytest.raises(ODataError, match="does not belong to this"):
        evaluate(GRAPH_ITEMS, other, GRAPH_KINDS)
    with pytest.raises(ODataError, match="malformed"):  # an int id where the items have str ids
        evaluate(GRAPH_ITEMS, replace(options, skiptoken=_token_like(token, id=7)), GRAPH_KINDS)


def _token_like(token: str, **changes: Any) -> str:
    body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return base64.urlsafe_b64encode(orjson.dumps(body | changes)).decode()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@given(values=st.lists(_JSON, max_size=3), last_id=_JSON, text=st.text(max_size=40))
def test_forged_skiptokens_give_only_odata_error(values: list[Any], last_id: Any, text: str) -> None:
    options = QueryOptions(None, parse_orderby("createdDateTime desc,displayName"), (), 1, None, False)
    token = evaluate(GRAPH_ITEMS, options, GRAPH_KINDS).skiptoken
    assert token is not None
    for forged in (text, _token_like(token, k=values, id=last_id)):
        try:
            page = evaluate(GRAPH_ITEMS, replace(options, skiptoken=forged), GRAPH_KINDS)
        except ODataError as error:
            assert str(error).startswith("$skiptoken: ")
        else:
            assert len(page.items) <= 1


def test_datetime_tokens_round_trip_in_utc() -> None:
    items = [{"id": str(n), "at": datetime(2024, 1, 1, n, tzinfo=UTC)} for n in range(3)]
    options = QueryOptions(None, parse_orderby("at desc"), (), 1, None, True)
    seen: list[str] = []
    while True:
        page = evaluate(items, options, {"at": datetime})
        assert page.count == 3
        seen += [item["id"] for item in page.items]
        if page.skiptoken is None:
            break
        options = replace(options, skiptoken=page.skiptoken)
    assert seen == ["2", "1", "0"]
