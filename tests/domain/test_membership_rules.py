"""The dynamic-group / assignment-filter rule language: parsing, printing, evaluation, garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.domain.membership_rules import (
    MAX_DEPTH,
    MAX_RULE_LENGTH,
    And,
    Comparison,
    Not,
    Operator,
    Or,
    Rule,
    RuleSyntaxError,
    evaluate,
    format_rule,
    parse_rule,
    properties_of,
)

SEED_RULE = '(device.deviceCategory -eq "HR") and (device.model -startsWith "iPad")'


def test_the_seed_examples_parse_into_the_expected_tree() -> None:
    assert parse_rule(SEED_RULE) == And(
        Comparison("device.deviceCategory", Operator.EQ, "HR"),
        Comparison("device.model", Operator.STARTS_WITH, "iPad"),
    )
    assert parse_rule('(user.department -in ["Sales","HR"])') == Comparison(
        "user.department", Operator.IN, ("Sales", "HR")
    )


def test_and_binds_tighter_than_or_and_not_binds_tightest() -> None:
    rule = parse_rule("user.a -eq 1 or not user.b -eq 2 and user.c -eq 3")
    assert rule == Or(
        Comparison("user.a", Operator.EQ, 1),
        And(Not(Comparison("user.b", Operator.EQ, 2)), Comparison("user.c", Operator.EQ, 3)),
    )


def test_keywords_operators_and_strings_compare_without_case() -> None:
    rule = parse_rule('device.Model -STARTSWITH "ipad" AND device.owner -Eq "Corporate"')
    assert evaluate(rule, {"device.model": "iPad Pro", "device.OWNER": "corporate"})
    assert not evaluate(rule, {"device.model": "iPhone", "device.owner": "corporate"})


@pytest.mark.parametrize(
    ("rule", "properties", "expected"),
    [
        ('device.deviceCategory -eq "HR"', {"device.deviceCategory": "hr"}, True),
        ('device.deviceCategory -eq "HR"', {}, False),  # no category yet: not a member
        ('device.deviceCategory -ne "HR"', {}, True),
        ("device.deviceCategory -eq null", {}, True),
        ('user.jobTitle -contains "eng"', {"user.jobTitle": "Senior Engineer"}, True),
        ('user.jobTitle -notContains "eng"', {"user.jobTitle": None}, True),
        ('device.osVersion -endsWith ".1"', {"device.osVersion": "17.4.1"}, True),
        ('device.osVersion -notStartsWith "17"', {"device.osVersion": "16.7"}, True),
        ('user.department -notIn ["Sales", "HR"]', {"user.department": "sales"}, False),
        ("user.accountEnabled -eq true", {"user.accountEnabled": True}, True),
        ("user.accountEnabled -eq 1", {"user.accountEnabled": True}, False),  # a bool is not a number
        ("user.employeeNumber -eq 42", {"user.employeeNumber": 42}, True),
        ("user.employeeNumber -ge 42 -and user.employeeNumber -lt 43", {"user.employeeNumber": 42}, True),
        ('user.department -gt "A"', {"user.department": "Sales"}, False),  # text is not ordered
        ('device.osVersion -gt "16.9"', {"device.osVersion": "16.10"}, False),  # a version only when named so
    ],
)
def test_evaluation(rule: str, properties: dict[str, object], expected: bool) -> None:
    assert evaluate(parse_rule(rule), properties) is expected


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("user.x -like 1", "unknown operator '-like'", 8),
        ("user.x -in 3", "-in takes a list", 8),
        ('user.x -eq ["a"]', "-eq takes a single value", 8),
        ("group.x -eq 1", "unknown object", 1),
        ("(user.x -eq 1", "ends too early", 14),
        ("user.x -eq 1 )", "unexpected ')'", 14),
        ('user.x -eq "open', "unexpected character", 12),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rule(text)
    assert message in raised.value.message
    assert raised.value.column == column


def test_limits_on_length_and_depth() -> None:
    with pytest.raises(RuleSyntaxError, match="longer than"):
        parse_rule('user.x -eq "' + "a" * MAX_RULE_LENGTH + '"')
    with pytest.raises(RuleSyntaxError, match="nested"):
        parse_rule("(" * (MAX_DEPTH + 1) + "user.x -eq 1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(RuleSyntaxError, match="nested"):
        parse_rule("not " * 700 + "user.x -eq 1")


def test_properties_of_lists_what_a_rule_reads() -> None:
    assert properties_of(parse_rule(SEED_RULE)) == {"device.devicecategory", "device.model"}


# --- properties -------------------------------------------------------------------------------------------

NAMES = ["device.model", "device.deviceCategory", "user.department", "user.accountEnabled", "user.rank"]
texts = st.text(alphabet=st.sampled_from('aAbB"\\ é'), max_size=4)
literals = st.one_of(texts, st.integers(-5, 5), st.booleans(), st.none())
comparisons = st.builds(
    lambda name, op, value, items: Comparison(
        name, op, tuple(items) if op in (Operator.IN, Operator.NOT_IN) else value
    ),
    st.sampled_from(NAMES),
    st.sampled_from(list(Operator)),
    literals,
    st.lists(literals, max_size=3),
)
rules: st.SearchStrategy[Rule] = st.recursive(
    comparisons,
    lambda inner: st.one_of(st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)),
    max_leaves=8,
)
records = st.dictionaries(st.sampled_from(NAMES), literals, max_size=len(NAMES))


def _fold(value: object) -> object:
    return (type(value) is bool, value.lower() if isinstance(value, str) else value)


def reference(rule: Rule, record: dict[str, object]) -> bool:
    """The semantics, written out plainly (ASCII test data, so lower() is casefold())."""
    if isinstance(rule, And):
        return reference(rule.left, record) and reference(rule.right, record)
    if isinstance(rule, Or):
        return reference(rule.left, record) or reference(rule.right, record)
    if isinstance(rule, Not):
        return not reference(rule.operand, record)
    actual, op, want = record.get(rule.property), rule.operator, rule.value
    if op is Operator.EQ:
        return _fold(actual) == _fold(want)
    if op is Operator.NE:
        return _fold(actual) != _fold(want)
    if op is Operator.IN:
        return any(_fold(actual) == _fold(item) for item in want)  # type: ignore[union-attr]
    if op is Operator.NOT_IN:
        return all(_fold(actual) != _fold(item) for item in want)  # type: ignore[union-attr]
    if op in (Operator.GREATER, Operator.GREATER_OR_EQUAL, Operator.LESS, Operator.LESS_OR_EQUAL):
        if type(actual) is not int or type(want) is not int:
            return False  # only integers are ordered when no property is a version
        return {
            Operator.GREATER: actual > want,
            Operator.GREATER_OR_EQUAL: actual >= want,
            Operator.LESS: actual < want,
            Operator.LESS_OR_EQUAL: actual <= want,
        }[op]
    if not (isinstance(actual, str) and isinstance(want, str)):
        return op.value.startswith("-not")
    a, w = actual.lower(), want.lower()
    checks = {
        Operator.STARTS_WITH: a.startswith(w),
        Operator.NOT_STARTS_WITH: not a.startswith(w),
        Operator.ENDS_WITH: a.endswith(w),
        Operator.NOT_ENDS_WITH: not a.endswith(w),
        Operator.CONTAINS: w in a,
        Operator.NOT_CONTAINS: w not in a,
    }
    return checks[op]


@given(rules)
def test_printing_then_parsing_gives_back_the_same_rule(rule: Rule) -> None:
    assert parse_rule(format_rule(rule)) == rule


@given(rules, records)
def test_evaluation_matches_the_reference(rule: Rule, record: dict[str, object]) -> None:
    assert evaluate(rule, record) is reference(rule, record)


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(max_size=80),
        st.lists(
            st.sampled_from(["(", ")", "user.x", "-eq", "-in", '"a"', "[", "]", ",", "and", "or", "not", "1", "null"]),
            max_size=20,
        ).map(" ".join),
    )
)
def test_garbage_raises_only_the_syntax_error(text: str) -> None:
    try:
        parse_rule(text)
    except RuleSyntaxError as error:
        assert error.message.startswith("membership rule: ")
