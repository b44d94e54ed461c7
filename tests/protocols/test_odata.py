"""The OData query-option parser: Graph-shaped filters to an AST, and nothing but ODataError otherwise."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.protocols.errors import ParseError
from muster.protocols.odata import (
    MAX_NESTING,
    And,
    Comparison,
    Expr,
    Function,
    In,
    Not,
    ODataError,
    Or,
    OrderBy,
    QueryOptions,
    format_filter,
    next_link,
    parse_filter,
    parse_orderby,
    parse_query_options,
    parse_select,
    parse_top,
)

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"

VALID_FILTERS: list[tuple[str, Expr]] = [
    ("operatingSystem eq 'iOS'", Comparison("operatingSystem", "eq", "iOS")),
    ("deviceName ne 'O''Brien''s iPad'", Comparison("deviceName", "ne", "O'Brien's iPad")),
    ("deviceName eq ''", Comparison("deviceName", "eq", "")),
    ("storageCount gt 10", Comparison("storageCount", "gt", 10)),
    ("storageCount ge -3", Comparison("storageCount", "ge", -3)),
    ("complianceScore lt 0.75", Comparison("complianceScore", "lt", 0.75)),
    ("complianceScore le 1e3", Comparison("complianceScore", "le", 1000.0)),
    ("complianceScore le -2.5E-2", Comparison("complianceScore", "le", -0.025)),
    ("isSupervised eq true", Comparison("isSupervised", "eq", True)),
    ("isSupervised ne FALSE", Comparison("isSupervised", "ne", False)),
    ("userPrincipalName eq null", Comparison("userPrincipalName", "eq", None)),
    ("userPrincipalName ne null", Comparison("userPrincipalName", "ne", None)),
    (
        "enrolledDateTime ge 2024-05-01T10:00:00Z",
        Comparison("enrolledDateTime", "ge", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ),
    (
        "lastSyncDateTime lt 2024-05-01T12:30:15.25+02:00",
        Comparison("lastSyncDateTime", "lt", datetime(2024, 5, 1, 10, 30, 15, 250000, tzinfo=UTC)),
    ),
    ("azureADDeviceId eq " + GUID, Comparison("azureADDeviceId", "eq", GUID)),
    ("id eq " + GUID.upper(), Comparison("id", "eq", GUID.upper())),
    ("hardwareInformation/serialNumber eq 'C02X'", Comparison("hardwareInformation/serialNumber", "eq", "C02X")),
    ("startswith(deviceName,'Sales')", Function("startswith", "deviceName", "Sales")),
    ("startsWith(deviceName, 'Sales')", Function("startswith", "deviceName", "Sales")),
    ("endswith(deviceName,'-01')", Function("endswith", "deviceName", "-01")),
    ("CONTAINS( model , 'iPad' )", Function("contains", "model", "iPad")),
    ("operatingSystem in ('iOS', 'iPadOS')", In("operatingSystem", ("iOS", "iPadOS"))),
    ("storageCount in (1,2.5,null)", In("storageCount", (1, 2.5, None))),
    ("notes eq 'x'", Comparison("notes", "eq", "x")),
    ("android eq 1", Comparison("android", "eq", 1)),
    (
        "operatingSystem eq 'iOS' and startswith(deviceName,'Sales')",
        And(Comparison("operatingSystem", "eq", "iOS"), Function("startswith", "deviceName", "Sales")),
    ),
    (
        "a eq 1 OR b eq 2",
        Or(Comparison("a", "eq", 1), Comparison("b", "eq", 2)),
    ),
    ("not isSupervised eq true", Not(Comparison("isSupervised", "eq", True))),
    ("NOT (a eq 1)", Not(Comparison("a", "eq", 1))),
    ("not startswith(a,'x')", Not(Function("startswith", "a", "x"))),
    ("((a eq 1))", Comparison("a", "eq", 1)),
]


@pytest.mark.parametrize(("text", "expected"), VALID_FILTERS)
def test_parses_graph_filters(text: str, expected: Expr) -> None:
    assert _strict(parse_filter(text)) == _strict(expected)


def _strict(expr: Expr) -> str:
    # repr tells 1 from 1.0 from True, which == on the dataclasses does not
    return repr(expr)


A, B, C, D = (Comparison(name, "eq", 1) for name in "abcd")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a eq 1 or b eq 1 and c eq 1", Or(A, And(B, C))),
        ("a eq 1 and b eq 1 or c eq 1", Or(And(A, B), C)),
        ("a eq 1 and b eq 1 and c eq 1", And(And(A, B), C)),
        ("a eq 1 or b eq 1 or c eq 1", Or(Or(A, B), C)),
        ("(a eq 1 or b eq 1) and c eq 1", And(Or(A, B), C)),
        ("not a eq 1 and b eq 1", And(Not(A), B)),
        ("not a eq 1 or b eq 1", Or(Not(A), B)),
        ("not (a eq 1 or b eq 1)", Not(Or(A, B))),
        ("not not a eq 1", Not(Not(A))),
        ("a eq 1 or not b eq 1 and c eq 1 or d eq 1", Or(Or(A, And(Not(B), C)), D)),
    ],
)
def test_precedence_is_not_then_comparison_then_and_then_or(text: str, expected: Expr) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("deviceName eq 'x' and (a eq 1))", 30, "$filter: unexpected ')' at position 30"),
        ("a eq )", 5, "expected a value"),
        ("a eq", 4, "unexpected end at position 4, expected a value"),
        ("(a eq 1", 7, "expected ')' or 'and' or 'or'"),
        ("a eq 1 b eq 2", 7, "unexpected 'b' at position 7"),
        ("a eq b", 5, "unexpected 'b'"),
        ("a eq 'unterminated", 5, 'unexpected character "\'" at position 5'),
        ("a # 1", 2, "unexpected character '#'"),
        ("a like 'x'", 2, "expected an operator"),
        ("startswith(a, 1)", 14, "expected a string"),
        ("startswith('x', a)", 11, "expected a property name"),
        ("'x' eq a", 0, "unexpected \"'x'\""),
        ("a in ()", 6, "expected a value"),
        ("a gt null", 5, "null can only be compared with eq or ne"),
        ("a eq 9223372036854775808", 5, "integer out of range"),
        ("a eq -9223372036854775809", 5, "integer out of range"),
        ("a eq 1e400", 5, "number out of range"),
        ("a eq 2024-02-30T00:00:00Z", 5, "invalid date/time"),
        ("a eq 0001-01-01T00:00:00+01:00", 5, "invalid date/time"),
        ("", 0, "unexpected end at position 0"),
        ("   ", 3, "unexpected end at position 3"),
    ],
)
def test_errors_say_what_was_expected_where(text: str, position: int, message: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    assert message in str(caught.value)
    assert isinstance(caught.value, ParseError)


def test_integer_bounds_are_64_bit() -> None:
    assert parse_filter("a eq 9223372036854775807") == Comparison("a", "eq", 2**63 - 1)
    assert parse_filter("a eq -9223372036854775808") == Comparison("a", "eq", -(2**63))


def test_length_limit() -> None:
    text = "a eq '" + "x" * 1994 + "'"
    assert len(text) == 2001
    with pytest.raises(ODataError, match="longer than 2000 characters"):
        parse_filter(text)
    assert parse_filter(text, max_length=3000) == Comparison("a", "eq", "x" * 1994)


def test_deep_parentheses_parse_without_recursion() -> None:
    assert parse_filter("(" * 995 + "a eq 1" + ")" * 995, max_length=4000) == A


def test_nesting_limit_gives_odata_error_not_recursion_error() -> None:
    assert parse_filter("not " * MAX_NESTING + "a eq 1") is not None
    with pytest.raises(ODataError, match="nested too deeply"):
        parse_filter("not " * (MAX_NESTING + 1) + "a eq 1")
    alternating = "(a eq 1 or " * 200 + "a eq 1" + " and b eq 1)" * 200
    with pytest.raises(ODataError, match="nested too deeply"):
        parse_filter(alternating, max_length=10**5)


def test_long_chains_of_one_operator_are_not_deep() -> None:
    text = " or ".join(f"deviceName eq 'd{i}'" for i in range(150))
    expr = parse_filter(text, max_length=10**4)
    assert isinstance(expr, Or)
    assert format_filter(expr) == text


OData_WORDS = [
    "a", "b/c", "eq", "ne", "gt", "and", "or", "not", "in", "(", ")", ",", "'x'", "''", "'", "1", "-2",
    "2.5", "1e5", "true", "null", "startswith(", "contains", "2024-05-01T10:00:00Z", GUID, " ", "#",
]  # fmt: skip


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(OData_WORDS), max_size=12).map(" ".join)))
def test_garbage_in_only_odata_error_out(text: str) -> None:
    try:
        parse_filter(text)
    except ODataError as error:
        assert error.position is None or 0 <= error.position <= len(text)


def _names() -> st.SearchStrategy[str]:
    segment = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
    path = st.lists(segment, min_size=1, max_size=3).map("/".join)
    # a property whose first segment is `not` reads as the operator: Graph has none
    return path.filter(lambda name: name.split("/")[0].lower() != "not")


def _in_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(fold=0)  # fold means nothing in UTC but would break equality


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))])
_VALUES = st.one_of(
    st.text(max_size=8),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.datetimes(min_value=datetime(1900, 1, 1), timezones=_ZONES).map(_in_utc),
)


def _leaves() -> st.SearchStrategy[Expr]:
    ops = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
    return st.one_of(
        st.builds(Comparison, _names(), ops, _VALUES),
        st.builds(Comparison, _names(), st.sampled_from(["eq", "ne"]), st.none()),
        st.builds(In, _names(), st.lists(st.one_of(_VALUES, st.none()), min_size=1, max_size=4).map(tuple)),
        st.builds(Function, st.sampled_from(["startswith", "endswith", "contains"]), _names(), st.text()),
    )


ASTS = st.recursive(
    _leaves(),
    lambda children: st.one_of(
        st.builds(And, children, children), st.builds(Or, children, children), st.builds(Not, children)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(ASTS)
def test_formatted_ast_parses_back_to_itself(expr: Expr) -> None:
    text = format_filter(expr)
    assert _strict(parse_filter(text, max_length=10**5)) == _strict(expr)


def test_orderby() -> None:
    assert parse_orderby("enrolledDateTime desc") == (OrderBy("enrolledDateTime", True),)
    assert parse_orderby(" deviceName ASC ,hardwareInformation/model, id DESC") == (
        OrderBy("deviceName", False),
        OrderBy("hardwareInformation/model", False),
        OrderBy("id", True),
    )


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("a,,b", 2, "empty item at position 2"),
        ("", 0, "empty item"),
        ("a desc desc", 0, "unexpected 'a desc desc' at position 0"),
        ("a, b sideways", 3, "unexpected 'b sideways' at position 3"),
        ("a, A", None, None),
        ("a desc, a", 8, "'a' appears twice at position 8"),
    ],
)
def test_orderby_errors(text: str, position: int | None, message: str | None) -> None:
    if message is None:  # property names are case-sensitive, like Graph's
        assert len(parse_orderby(text)) == 2
        return
    with pytest.raises(ODataError) as caught:
        parse_orderby(text)
    assert caught.value.position == position
    assert message in str(caught.value)


def test_list_options_are_bounded() -> None:
    with pytest.raises(ODataError, match=r"\$orderby: longer than 2000"):
        parse_orderby(",".join(f"p{i}" for i in range(1000)))
    with pytest.raises(ODataError, match=r"\$select: longer than 2000"):
        parse_select("id," * 1000)


def test_select() -> None:
    assert parse_select("id,deviceName") == ("id", "deviceName")
    assert parse_select(" id , hardwareInformation/model,id") == ("id", "hardwareInformation/model")
    with pytest.raises(ODataError, match="unexpected 'device name' at position 3"):
        parse_select("id,device name")
    with pytest.raises(ODataError, match="empty item at position 3"):
        parse_select("id,")


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, 100), ("1", 1), ("50", 50), ("0050", 50), ("1000", 1000), ("1001", 1000), ("9" * 5000, 1000)],
)
def test_top(text: str | None, expected: int) -> None:
    assert parse_top(text) == expected


@pytest.mark.parametrize("text", ["0", "000", "-1", "+5", " 5", "5 ", "ten", "", "1.5", "٣"])
def test_top_rejects_non_positive_and_non_numeric(text: str) -> None:
    with pytest.raises(ODataError, match=r"\$top"):
        parse_top(text)


def test_top_default_and_maximum_are_the_callers() -> None:
    assert parse_top(None, default=25) == 25
    assert parse_top("900", maximum=500) == 500


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_option_garbage_in_only_odata_error_out(text: str) -> None:
    for parse in (parse_orderby, parse_select, parse_top):
        with suppress(ODataError):
            parse(text)


def test_query_options() -> None:
    options = parse_query_options(
        {
            "$filter": "operatingSystem eq 'iOS' and startswith(deviceName,'Sales')",
            "$orderby": "enrolledDateTime desc",
            "$top": "50",
            "$select": "id,deviceName",
            "$skiptoken": "abc",
            "$count": "true",
            "api-version": "ignored",
        }
    )
    assert options == QueryOptions(
        filter=And(Comparison("operatingSystem", "eq", "iOS"), Function("startswith", "deviceName", "Sales")),
        orderby=(OrderBy("enrolledDateTime", True),),
        select=("id", "deviceName"),
        top=50,
        skiptoken="abc",
        count=True,
    )


def test_query_options_defaults_and_case_insensitive_names() -> None:
    assert parse_query_options({}) == QueryOptions(None, (), (), 100, None, False)
    assert parse_query_options({"$TOP": "3", "$Count": "FALSE"}).top == 3
    with pytest.raises(ODataError, match=r"\$count"):
        parse_query_options({"$count": "yes"})
    with pytest.raises(ODataError, match=r"\$skiptoken"):
        parse_query_options({"$skiptoken": "x" * 5000})
    with pytest.raises(ODataError, match=r"\$filter"):
        parse_query_options({"$filter": "a eq"})


def test_next_link_replaces_the_skiptoken() -> None:
    link = next_link(
        "https://muster.example/graph/beta/deviceManagement/managedDevices",
        {"$filter": "deviceName eq 'a b'", "$top": "2", "$skiptoken": "old"},
        "NEW_token-1",
    )
    assert link == (
        "https://muster.example/graph/beta/deviceManagement/managedDevices"
        "?$filter=deviceName%20eq%20'a%20b'&$top=2&$skiptoken=NEW_token-1"
    )
