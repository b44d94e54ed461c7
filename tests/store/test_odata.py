"""OData filters and keyset paging on SQLite and PostgreSQL, checked against a pure-Python reference.

PostgreSQL runs when MUSTER_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) answers; it
is skipped with the reason otherwise, and fails instead when the CI variable is set.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import operator
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from muster.protocols.odata import (
    And,
    Comparison,
    Expr,
    Function,
    In,
    Literal,
    Not,
    ODataError,
    Or,
    OrderBy,
    QueryOptions,
    next_link,
    parse_filter,
    parse_query_options,
)
from muster.store.odata import Field, compile_filter, count_query, page_query, split_page

PG_URL = os.environ.get("MUSTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- databases ------------------------------------------------------------------------------------------


@functools.cache
def _postgres_problem() -> str | None:
    async def probe() -> None:
        connection = await asyncpg.connect(PG_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        return f"PostgreSQL not reachable at {PG_URL}: {type(error).__name__}: {error}"
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'odata.db'}"
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return PG_URL.replace("postgresql://", "postgresql+asyncpg://", 1)


Work = Callable[[Connection, Connection], None]


def run(url: str, work: Work) -> None:
    """Run sync SQLAlchemy Core code on two connections (a reader and a writer) of an async engine."""

    async def main() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as reader, engine.connect() as writer:
                sync_writer = writer.sync_connection
                assert sync_writer is not None
                await reader.run_sync(lambda sync_reader: work(sync_reader, sync_writer))
        finally:
            await engine.dispose()

    asyncio.run(main())


def make_table() -> Table:
    """A fresh table per test (other suites share the PostgreSQL database), keyed by Graph names."""
    # C collation on PostgreSQL so string order is by code point, as on SQLite and in the reference
    name_type = String(16).with_variant(String(16, collation="C"), "postgresql")
    return Table(
        f"odata_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("device_name", name_type, key="deviceName"),
        Column("slot_count", BigInteger, key="slotCount"),
        Column("score", Float, key="score"),
        Column("supervised", Boolean, key="isSupervised"),
        Column("enrolled", DateTime(timezone=True), key="enrolledDateTime"),
        Column("last_seen", DateTime(timezone=False), key="lastSeenDateTime"),
    )


KINDS: dict[str, type] = {
    "id": int,
    "deviceName": str,
    "slotCount": int,
    "score": float,
    "isSupervised": bool,
    "enrolledDateTime": datetime,
    "lastSeenDateTime": datetime,
}


def fields_of(table: Table) -> dict[str, Field]:
    return {name: Field(table.c[name], kind) for name, kind in KINDS.items()}


@contextmanager
def committed_table(table: Table, writer: Connection, reader: Connection) -> Iterator[None]:
    table.metadata.create_all(writer)
    writer.commit()
    try:
        yield
    finally:
        reader.rollback()  # a reader's open transaction would block the drop
        writer.rollback()
        table.metadata.drop_all(writer)
        writer.commit()


def replace_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    connection.execute(delete(table))
    add_rows(connection, table, rows)


def add_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(table), [_stored(row) for row in rows])


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    seen = row["lastSeenDateTime"]
    return {**row, "lastSeenDateTime": None if seen is None else seen.replace(tzinfo=None)}


# --- data and filters ----------------------------------------------------------------------------------

NAMES = st.text(alphabet="aAbB_%\\' ", max_size=4)
COUNTS = st.one_of(st.integers(-3, 3), st.integers(-(2**62), 2**62))
SCORES = st.one_of(st.sampled_from([-1.5, 0.0, 0.5, 2.0]), st.floats(-1e6, 1e6, allow_nan=False))
_MOMENTS = [datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC)]
MOMENTS = st.one_of(
    st.sampled_from(_MOMENTS),
    st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
).map(lambda moment: moment.replace(fold=0))
ROW_VALUES = {
    "deviceName": NAMES,
    "slotCount": COUNTS,
    "score": SCORES,
    "isSupervised": st.booleans(),
    "enrolledDateTime": MOMENTS,
    "lastSeenDateTime": MOMENTS,
}
ROWS = st.lists(
    st.fixed_dictionaries({name: st.none() | values for name, values in ROW_VALUES.items()}), max_size=12
).map(lambda rows: [{"id": index, **row} for index, row in enumerate(rows, start=1)])

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
LITERALS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.integers(0, 13),
    "deviceName": NAMES,
    "slotCount": st.one_of(COUNTS, st.floats(-4, 4)),  # ints compare with decimals too
    "score": st.one_of(SCORES, st.integers(-3, 3)),
    "isSupervised": st.booleans(),
    "enrolledDateTime": st.tuples(MOMENTS, _ZONES).map(lambda pair: pair[0].astimezone(pair[1])),
    "lastSeenDateTime": st.tuples(MOMENTS, _ZONES).map(lambda pair: pair[0].astimezone(pair[1])),
}


def _comparisons(name: str) -> st.SearchStrategy[Expr]:
    ops = ["eq", "ne"] if KINDS[name] is bool else ["eq", "ne", "gt", "ge", "lt", "le"]
    return st.one_of(
        st.builds(Comparison, st.just(name), st.sampled_from(ops), LITERALS[name]),
        st.builds(Comparison, st.just(name), st.sampled_from(["eq", "ne"]), st.none()),
        st.builds(In, st.just(name), st.lists(st.none() | LITERALS[name], min_size=1, max_size=3).map(tuple)),
    )


LEAVES = st.one_of(
    *(_comparisons(name) for name in KINDS),
    st.builds(Function, st.sampled_from(["startswith", "endswith", "contains"]), st.just("deviceName"), NAMES),
)
FILTERS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)),
    max_leaves=6,
)
ORDERBYS = st.lists(st.sampled_from(sorted(KINDS)), unique=True, max_size=3).flatmap(
    lambda names: st.tuples(*(st.builds(OrderBy, st.just(name), st.booleans()) for name in names))
)

# --- the reference -----------------------------------------------------------------------------------------

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _fold(value: Literal) -> Any:
    return value.lower() if isinstance(value, str) else value


def matches(expr: Expr, row: dict[str, Any]) -> bool:
    """The documented semantics: case-insensitive strings; NULL makes everything false but `ne`."""
    if isinstance(expr, And):
        return matches(expr.left, row) and matches(expr.right, row)
    if isinstance(expr, Or):
        return matches(expr.left, row) or matches(expr.right, row)
    if isinstance(expr, Not):
        return not matches(expr.operand, row)
    value = row[expr.property]
    if isinstance(expr, In):
        return None in expr.values if value is None else _fold(value) in [_fold(v) for v in expr.values]
    if isinstance(expr, Function):
        text, part = _fold(value), _fold(expr.value)
        checks = {"startswith": str.startswith, "endswith": str.endswith, "contains": str.__contains__}
        return value is not None and checks[expr.name](text, part)
    if expr.value is None:
        return (value is None) == (expr.op == "eq")
    if value is None:
        return expr.op == "ne"
    return _OPS[expr.op](_fold(value), _fold(expr.value))


def reference_order(rows: Sequence[dict[str, Any]], orderby: Sequence[OrderBy]) -> list[int]:
    """NULL is the smallest value; ties go to the smaller id."""

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for item in orderby:
            x, y = _fold(a[item.property]), _fold(b[item.property])
            if x == y:
                continue
            result = -1 if x is None or (y is not None and x < y) else 1
            return -result if item.descending else result
        return (a["id"] > b["id"]) - (a["id"] < b["id"])

    return [row["id"] for row in sorted(rows, key=functools.cmp_to_key(compare))]


# --- filters --------------------------------------------------------------------------------------------


def test_filters_match_the_reference(database_url: str) -> None:
    table = make_table()
    fields = fields_of(table)

    def work(reader: Connection, writer: Connection) -> None:
        with committed_table(table, writer, reader):

            @SETTINGS
            @given(rows=ROWS, expr=FILTERS)
            def check(rows: list[dict[str, Any]], expr: Expr) -> None:
                replace_rows(reader, table, rows)
                found = reader.execute(select(table.c.id).where(compile_filter(expr, fields))).scalars()
                expected = [row["id"] for row in rows if matches(expr, row)]
                assert sorted(found) == expected
                options = QueryOptions(expr, (), (), 100, None, True)
                assert reader.execute(count_query(select(table), fields, options)).scalar_one() == len(expected)

            check()

    run(database_url, work)


EXAMPLE_ROWS = [
    ("Sales-01", 5, datetime(2024, 5, 1, 8, tzinfo=UTC)),
    ("sales_02", 7, datetime(2024, 5, 1, 9, tzinfo=UTC)),
    ("SALES%03", None, datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("salesx04", 1, None),
    ("back\\slash", 2, datetime(2023, 1, 1, tzinfo=UTC)),
    ("O'Brien", 3, datetime(2024, 5, 1, 12, tzinfo=UTC)),
    (None, 4, datetime(2024, 5, 1, 12, tzinfo=UTC)),
]
EXAMPLES = [
    ("startswith(deviceName,'sales')", ["Sales-01", "sales_02", "SALES%03", "salesx04"]),
    ("startswith(deviceName,'sales_')", ["sales_02"]),
    ("contains(deviceName,'%')", ["SALES%03"]),
    ("endswith(deviceName,'\\slash')", ["back\\slash"]),
    ("deviceName eq 'o''brien'", ["O'Brien"]),
    ("deviceName eq null", [None]),
    ("not startswith(deviceName,'s')", ["back\\slash", "O'Brien", None]),
    ("deviceName ne 'SALES-01'", ["sales_02", "SALES%03", "salesx04", "back\\slash", "O'Brien", None]),
    ("slotCount gt 4", ["Sales-01", "sales_02"]),
    ("not slotCount gt 4", ["SALES%03", "salesx04", "back\\slash", "O'Brien", None]),
    ("slotCount in (1, 2, null)", ["SALES%03", "salesx04", "back\\slash"]),
    ("slotCount le 2.5", ["salesx04", "back\\slash"]),
    ("enrolledDateTime ge 2024-05-01T11:00:00+02:00", ["sales_02", "SALES%03", "O'Brien", None]),
    ("lastSeenDateTime lt 2024-05-01T05:00:00-04:00", ["Sales-01", "back\\slash"]),
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_graph_style_filters(database_url: str, text: str, expected: list[str | None]) -> None:
    table = make_table()
    fields = fields_of(table)
    rows = [
        {"id": index, "deviceName": name, "slotCount": count, "score": None, "isSupervised": None}
        | {"enrolledDateTime": moment, "lastSeenDateTime": moment}
        for index, (name, count, moment) in enumerate(EXAMPLE_ROWS, start=1)
    ]

    def work(reader: Connection, writer: Connection) -> None:
        with committed_table(table, writer, reader):
            replace_rows(reader, table, rows)
            query = select(table.c.deviceName).where(compile_filter(parse_filter(text), fields))
            assert reader.execute(query.order_by(table.c.id)).scalars().all() == expected

    run(database_url, work)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour eq 'red'", "unknown property 'colour'"),
        ("slotCount eq 'five'", "property 'slotCount' holds int values, not 'five'"),
        ("deviceName eq 5", "holds str values"),
        ("score eq true", "holds float values"),
        ("isSupervised eq 1", "holds bool values"),
        ("enrolledDateTime ge '2024-05-01'", "holds datetime values"),
        ("slotCount in (1, 'x')", "holds int values"),
        ("startswith(slotCount,'1')", "startswith() needs a string property"),
        ("isSupervised gt false", "'gt' cannot compare boolean property 'isSupervised'"),
        ("deviceName eq 'x' or colour eq 'red'", "unknown property 'colour'"),
    ],
)
def test_filter_errors(text: str, message: str) -> None:
    with pytest.raises(ODataError, match=re.escape(message)):
        compile_filter(parse_filter(text), fields_of(make_table()))


# --- paging -----------------------------------------------------------------------------------------------


def fetch_pages(
    reader: Connection, table: Table, options: QueryOptions, between_pages: Callable[[int], None]
) -> list[int]:
    """Follow skiptokens to the end, calling `between_pages(page_number)` after each page."""
    fields, ids, token = fields_of(table), [], None
    for page_number in range(100):  # at most 48 rows: more pages means paging went round in circles
        page_options = replace(options, skiptoken=token)
        query = page_query(select(table), fields=fields, options=page_options, id_column=table.c.id)
        rows = reader.execute(query).mappings().all()
        page, token = split_page(rows, options=page_options, fields=fields, id_key="id")
        assert len(page) <= options.top
        ids += [row["id"] for row in page]
        reader.commit()  # every page is its own request
        if token is None:
            return ids
        between_pages(page_number)
    raise AssertionError("paging did not end")


def test_pages_return_every_row_once_in_order(database_url: str) -> None:
    table = make_table()

    def work(reader: Connection, writer: Connection) -> None:
        with committed_table(table, writer, reader):

            @SETTINGS
            @given(rows=ROWS, orderby=ORDERBYS, top=st.integers(1, 5), expr=st.none() | FILTERS)
            def check(rows: list[dict[str, Any]], orderby: tuple[OrderBy, ...], top: int, expr: Expr) -> None:
                replace_rows(reader, table, rows)
                reader.commit()
                ids = fetch_pages(reader, table, QueryOptions(expr, orderby, (), top, None, False), _noop)
                matching = [row for row in rows if expr is None or matches(expr, row)]
                assert ids == reference_order(matching, orderby)

            check()

    run(database_url, work)


def _noop(_page_number: int) -> None:
    pass


NEW_ROWS = st.lists(st.fixed_dictionaries({name: st.none() | v for name, v in ROW_VALUES.items()}), max_size=3)


def test_rows_inserted_between_pages_never_skip_or_repeat_existing_rows(database_url: str) -> None:
    table = make_table()

    def work(reader: Connection, writer: Connection) -> None:
        with committed_table(table, writer, reader):

            @SETTINGS
            @given(
                rows=ROWS,
                orderby=ORDERBYS,
                top=st.integers(1, 4),
                inserts=st.lists(NEW_ROWS, max_size=12),
            )
            def check(
                rows: list[dict[str, Any]],
                orderby: tuple[OrderBy, ...],
                top: int,
                inserts: list[list[dict[str, Any]]],
            ) -> None:
                replace_rows(writer, table, rows)
                writer.commit()
                next_id = iter(range(1000, 2000))

                def insert_concurrently(page_number: int) -> None:
                    if page_number < len(inserts):
                        add_rows(writer, table, [{"id": next(next_id), **row} for row in inserts[page_number]])
                        writer.commit()

                options = QueryOptions(None, orderby, (), top, None, False)
                ids = fetch_pages(reader, table, options, insert_concurrently)
                assert len(ids) == len(set(ids)), "a row was repeated"
                existing = [row_id for row_id in ids if row_id < 1000]
                assert existing == reference_order(rows, orderby), "an existing row was skipped or moved"

            check()

    run(database_url, work)


def test_skiptoken_is_bound_to_its_filter_and_orderby(database_url: str) -> None:
    table = make_table()
    fields = fields_of(table)
    empty = dict.fromkeys(KINDS)
    rows = [empty | {"id": i, "deviceName": f"d{i}", "slotCount": i % 2} for i in range(1, 6)]
    params = {"$filter": "slotCount eq 1 or slotCount eq 0", "$orderby": "deviceName desc", "$top": "2"}

    def work(reader: Connection, writer: Connection) -> None:
        with committed_table(table, writer, reader):
            replace_rows(reader, table, rows)
            options = parse_query_options(params)
            first = reader.execute(page_query(select(table), fields=fields, options=options, id_column=table.c.id))
            page, token = split_page(first.mappings().all(), options=options, fields=fields, id_key="id")
            assert [row["deviceName"] for row in page] == ["d5", "d4"]
            assert token is not None
            link = next_link("https://muster.example/x", params, token)
            followed = parse_query_options(dict(_query_of(link)))
            assert followed.skiptoken == token
            second = reader.execute(page_query(select(table), fields=fields, options=followed, id_column=table.c.id))
            assert [row["deviceName"] for row in second.mappings()] == ["d3", "d2", "d1"]
            unordered = {name: value for name, value in params.items() if name != "$orderby"}
            for changed in (params | {"$orderby": "deviceName asc"}, params | {"$filter": "slotCount eq 1"}, unordered):
                replayed = parse_query_options(changed | {"$skiptoken": token})
                with pytest.raises(ODataError, match="does not belong"):
                    page_query(select(table), fields=fields, options=replayed, id_column=table.c.id)
            assert replace(followed, top=1) != followed  # $top and $select may change between pages
            page_query(select(table), fields=fields, options=replace(followed, top=1), id_column=table.c.id)

    run(database_url, work)


def _query_of(link: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(link).query)


_BASE64_JUNK = st.binary(max_size=60).map(lambda raw: base64.urlsafe_b64encode(raw).decode())
_JSON_JUNK = st.builds(
    lambda body: base64.urlsafe_b64encode(body.encode()).decode(),
    st.sampled_from(['{"q": "x", "k": [], "id": 1}', "[]", '{"q": 1, "k": [1], "id": true}', "[" * 900]),
)


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=80), _BASE64_JUNK, _JSON_JUNK))
def test_forged_skiptokens_give_only_odata_error(token: str) -> None:
    table = make_table()
    options = QueryOptions(None, (OrderBy("enrolledDateTime", False),), (), 10, token, False)
    with suppress(ODataError):
        page_query(select(table), fields=fields_of(table), options=options, id_column=table.c.id)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)
TIMESTAMPS = st.one_of(
    st.datetimes(timezones=_ZONES).map(lambda moment: moment.isoformat()),
    st.just("0001-01-01T00:00:00+14:00"),  # valid text, but out of range in UTC
)
# datetime keys first: a forged value is only looked at once the ones before it passed
ALL_KEYS = tuple(
    OrderBy(name, descending=False)
    for name in ("enrolledDateTime", "lastSeenDateTime", "deviceName", "slotCount", "score", "isSupervised")
)


def _forged(name: str) -> st.SearchStrategy[Any]:
    return st.none() | (TIMESTAMPS if KINDS[name] is datetime else ROW_VALUES[name]) | JSON_VALUES


FORGED_KEYS = st.tuples(*(_forged(key.property) for key in ALL_KEYS)).map(list)


@settings(max_examples=200, deadline=None)
@given(values=FORGED_KEYS, last_id=st.integers(-3, 3) | JSON_VALUES)
def test_forged_values_under_a_genuine_fingerprint_give_odata_error_or_a_working_query(
    values: list[Any], last_id: Any
) -> None:
    table = make_table()
    options = QueryOptions(None, ALL_KEYS, (), 1, None, False)
    engine = create_engine("sqlite://")
    try:
        _replay_forged(engine, table, options, values, last_id)
    finally:
        engine.dispose()


def _replay_forged(engine: Engine, table: Table, options: QueryOptions, values: list[Any], last_id: Any) -> None:
    fields = fields_of(table)
    with engine.begin() as connection:
        table.metadata.create_all(connection)
        add_rows(connection, table, [dict.fromkeys(KINDS) | {"id": 1}, dict.fromkeys(KINDS) | {"id": 2}])
        rows = connection.execute(page_query(select(table), fields=fields, options=options, id_column=table.c.id))
        _, genuine = split_page(rows.mappings().all(), options=options, fields=fields, id_key="id")
        assert genuine is not None
        body = json.loads(base64.urlsafe_b64decode(genuine + "=" * (-len(genuine) % 4)))
        forged = base64.urlsafe_b64encode(json.dumps(body | {"k": values, "id": last_id}).encode()).decode()
        try:
            query = page_query(
                select(table), fields=fields, options=replace(options, skiptoken=forged), id_column=table.c.id
            )
        except ODataError:
            return
        connection.execute(query).all()


def test_unknown_orderby_property() -> None:
    table = make_table()
    options = QueryOptions(None, (OrderBy("colour", False),), (), 10, None, False)
    with pytest.raises(ODataError, match=r"\$orderby: unknown property 'colour'"):
        page_query(select(table), fields=fields_of(table), options=options, id_column=table.c.id)


def test_field_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="unsupported field kind"):
        Field(make_table().c.id, list)
