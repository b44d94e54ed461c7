"""Assignment filter rules: property sets per platform and use (seed-catalog-C §1.13), operators, versions,
errors with positions, and agreement with a reference evaluator on random rules and devices."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.domain.assignment_filters import (
    FilterPlatform,
    FilterUsage,
    parse_filter,
    supported_properties,
)
from muster.domain.errors import InvalidInput
from muster.domain.membership_rules import RuleSyntaxError

IOS, MACOS, WINDOWS = FilterPlatform.IOS, FilterPlatform.MACOS, FilterPlatform.WINDOWS
ANDROID, ANDROID_WORK = FilterPlatform.ANDROID, FilterPlatform.ANDROID_FOR_WORK
ENROLLMENT, MANAGED = FilterUsage.ENROLLMENT, FilterUsage.MANAGED_DEVICE
ISSUE_EXAMPLE = '(device.model -startsWith "iPad") -and (device.osVersion -ge "16.0")'


def _names(platform: FilterPlatform, usage: FilterUsage) -> set[str]:
    return {prop.name for prop in supported_properties(platform, usage)}


def _error(rule: str, platform: FilterPlatform = IOS, usage: FilterUsage = MANAGED) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as raised:
        parse_filter(rule, platform=platform, usage=usage)
    assert isinstance(raised.value, InvalidInput)
    assert raised.value.message.startswith("assignment filter rule: ")
    return raised.value


def test_the_issue_example_parses_and_matches() -> None:
    rule = parse_filter(ISSUE_EXAMPLE, platform=IOS, usage=ENROLLMENT)
    assert rule.matches({"model": "iPad Pro", "osVersion": "16.0"})
    assert rule.matches({"model": "ipad mini", "osVersion": "17.4.1"})
    assert not rule.matches({"model": "iPad", "osVersion": "15.8"})
    assert not rule.matches({"model": "iPhone 15", "osVersion": "17.0"})


def test_enrollment_properties_seed_003_7207_7222() -> None:
    """At enrollment Intune knows only what the device reports before enrolling (003:7201, 7207-7222)."""
    assert _names(WINDOWS, ENROLLMENT) == {"osVersion", "operatingSystemSKU", "enrollmentProfileName"}
    apple = {"manufacturer", "model", "osVersion", "deviceOwnership", "enrollmentProfileName"}
    assert _names(IOS, ENROLLMENT) == apple
    assert _names(MACOS, ENROLLMENT) == apple


def test_android_filters_cannot_be_used_at_enrollment_seed_003_7223() -> None:
    for platform in (ANDROID, ANDROID_WORK):
        assert _names(platform, ENROLLMENT) == set()
        assert "cannot be used at enrollment" in _error('device.model -eq "Pixel 8"', platform, ENROLLMENT).message
        assert parse_filter('device.model -eq "Pixel 8"', platform=platform, usage=MANAGED).matches(
            {"model": "pixel 8"}
        )


def test_managed_device_properties_are_the_full_set() -> None:
    common = {"deviceName", "manufacturer", "model", "osVersion", "deviceOwnership", "enrollmentProfileName"}
    for platform in FilterPlatform:
        assert common | {"deviceCategory"} <= _names(platform, MANAGED)
        assert _names(platform, ENROLLMENT) <= _names(platform, MANAGED)
    assert "operatingSystemSKU" in _names(WINDOWS, MANAGED) and "operatingSystemSKU" not in _names(IOS, MANAGED)
    assert "isRooted" in _names(ANDROID, MANAGED) and "isRooted" not in _names(MACOS, MANAGED)


def test_windows_home_is_blocked_by_a_sku_filter_seed_003_7189() -> None:
    """R-200: a Windows restriction allowing personal devices but not Windows Home uses operatingSystemSKU."""
    rule = parse_filter('device.operatingSystemSKU -eq "Core"', platform=WINDOWS, usage=ENROLLMENT)
    assert rule.matches({"operatingSystemSKU": "Core", "osVersion": "10.0.22631"})
    assert not rule.matches({"operatingSystemSKU": "Professional"})


def test_an_unsupported_property_is_named_with_the_allowed_ones_and_its_position() -> None:
    error = _error('device.model -eq "x" and\n  device.deviceName -eq "kiosk"', IOS, ENROLLMENT)
    assert "cannot read device.deviceName" in error.message
    assert "device.enrollmentProfileName" in error.message
    assert (error.line, error.column) == (2, 3)
    assert "at line 2, column 3" in error.message
    assert "cannot read user.department" in _error('user.department -eq "HR"').message
    assert "cannot read device.operatingSystemSKU" in _error('device.operatingSystemSKU -eq "Core"', IOS).message


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('device.model -gt "iPad"', "device.model does not support -gt"),
        ('device.deviceOwnership -startsWith "Corp"', "does not support -startsWith"),
        ('device.model -notStartsWith "iPad"', "does not support -notStartsWith"),
        ('device.deviceOwnership -eq "Company"', "is one of Personal, Corporate"),
        ('device.deviceOwnership -in ["Personal", "Shared"]', "not 'Shared'"),
        ('device.osVersion -ge "sixteen"', 'needs a version such as "16.0"'),
        ("device.osVersion -ge 16", "compares with quoted text"),
        ("device.model -eq null", "compares with quoted text"),
    ],
)
def test_operators_and_values_each_property_accepts(rule: str, message: str) -> None:
    error = _error(rule)
    assert message in error.message
    assert (error.line, error.column) == (1, 1)


@pytest.mark.parametrize(
    ("rule", "message", "line", "column"),
    [
        ('device.model -eq "x" -and', "ends too early", 1, 26),
        ('(device.model -eq "x")\n-or (device.model -like "y")', "unknown operator '-like'", 2, 19),
        ('device.model -eq "x"\n-and\ndevice.model -eq "y" )', "unexpected ')'", 3, 22),
        ('device.model -eq "open', "unexpected character", 1, 18),
        ("", "empty", 0, 0),
    ],
)
def test_syntax_errors_have_a_line_and_a_column(rule: str, message: str, line: int, column: int) -> None:
    error = _error(rule)
    assert message in error.message
    assert (error.line, error.column) == (line, column)


def test_keywords_with_or_without_a_dash_and_any_case() -> None:
    for text in (
        'device.model -eq "a" -or -not (device.model -eq "b") -and device.osVersion -lt "2"',
        'device.model -EQ "a" OR NOT (device.model -eq "b") AND device.osVersion -LT "2"',
        'device.model -eq "a" or -NOT(device.model -eq "b") -And device.osVersion -lt "2"',
    ):
        rule = parse_filter(text, platform=IOS, usage=MANAGED)
        assert rule.matches({"model": "A"})  # -and binds tighter than -or
        assert rule.matches({"model": "c", "osVersion": "1.9"})
        assert not rule.matches({"model": "b", "osVersion": "1.9"})


@pytest.mark.parametrize(
    ("rule", "version", "expected"),
    [
        ('device.osVersion -gt "16.9"', "16.10", True),  # components compare as numbers, not as text
        ('device.osVersion -lt "16.9"', "16.10", False),
        ('device.osVersion -ge "16"', "16.0", True),
        ('device.osVersion -eq "16"', "16.0.0", True),  # trailing zeros do not count
        ('device.osVersion -ne "16.0"', "16", False),
        ('device.osVersion -in ["15", "16"]', "16.0", True),
        ('device.osVersion -le "10.0.22631"', "10.0.19045.3803", True),
        ('device.osVersion -startsWith "16."', "16.10", True),  # text operators still read the text
        ('device.osVersion -ge "16.0"', "beta", False),  # not a version: unordered
        ('device.osVersion -eq "16.0"', "16.0 (20A362)", False),
    ],
)
def test_versions_compare_by_component(rule: str, version: str, expected: bool) -> None:
    assert parse_filter(rule, platform=IOS, usage=MANAGED).matches({"osVersion": version}) is expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('device.deviceCategory -eq "HR"', False),
        ('device.deviceCategory -startsWith "H"', False),
        ('device.deviceCategory -in ["HR"]', False),
        ('device.osVersion -ge "1"', False),
        ('device.osVersion -lt "99"', False),
        ('device.deviceCategory -ne "HR"', True),
        ('device.deviceCategory -notContains "H"', True),
        ('device.deviceCategory -notIn ["HR"]', True),
    ],
)
def test_a_missing_property_fails_positive_operators_and_passes_negative_ones(rule: str, expected: bool) -> None:
    parsed = parse_filter(rule, platform=IOS, usage=MANAGED)
    assert parsed.matches({}) is expected
    assert parsed.matches({"deviceCategory": None, "osVersion": None}) is expected


def test_supported_properties_in_graph_shape() -> None:
    shown = {prop.name: prop.to_graph() for prop in supported_properties(IOS, MANAGED)}
    ownership = shown["deviceOwnership"]
    assert ownership["supportedValues"] == ["Personal", "Corporate"]
    assert ownership["supportedOperators"] == ["equals", "notEquals", "in", "notIn"]
    assert ownership["isCollection"] is False and ownership["dataType"] == "String"
    version = shown["osVersion"]
    assert version["dataType"] == "Version" and "greaterThanOrEquals" in version["supportedOperators"]
    assert re.fullmatch(version["propertyRegexConstraint"], "16.4.1")


# --- agreement with a reference evaluator (the issue's acceptance test) ---------------------------------------

TEXT_OPS = ["-eq", "-ne", "-startsWith", "-endsWith", "-contains", "-notContains", "-in", "-notIn"]
ORDER_OPS = ["-gt", "-ge", "-lt", "-le"]
OPERATORS = {
    "model": TEXT_OPS,
    "deviceName": TEXT_OPS,
    "enrollmentProfileName": TEXT_OPS,
    "osVersion": TEXT_OPS + ORDER_OPS,
    "deviceOwnership": ["-eq", "-ne", "-in", "-notIn"],
}
# Few versions, so that equal ones written differently ("16", "16.0.0") and near ones often meet.
VERSIONS = ["16", "16.0", "16.0.0", "16.9", "16.10", "17", "10.0.22631.2861"]
texts = st.one_of(st.sampled_from(["iPad", "ipad Pro", "Kiosk", 'a"b', "c\\d", ""]), st.text("aB1. ", max_size=4))
versions = st.one_of(st.sampled_from(VERSIONS), st.sampled_from(VERSIONS), st.sampled_from(VERSIONS), texts)
ownerships = st.sampled_from(["Personal", "Corporate", "corporate", "PERSONAL"])


def _values_of(name: str, op: str) -> st.SearchStrategy[Any]:
    if name == "deviceOwnership":
        one = ownerships
    elif name == "osVersion":
        one = st.sampled_from(VERSIONS) if op in ORDER_OPS else versions
    else:
        one = texts
    return st.lists(one, max_size=3) if op in ("-in", "-notIn") else one


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[Any, ...]:
    name = draw(st.sampled_from(sorted(OPERATORS)))
    op = draw(st.sampled_from(OPERATORS[name]))
    return ("cmp", name, op, draw(_values_of(name, op)))


rules = st.recursive(
    comparisons(),
    lambda inner: st.one_of(st.tuples(st.sampled_from(["and", "or"]), inner, inner), st.tuples(st.just("not"), inner)),
    max_leaves=8,
)
devices = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.none(), texts),
        "deviceName": texts,
        "enrollmentProfileName": texts,
        "osVersion": st.one_of(st.none(), versions),
        "deviceOwnership": st.one_of(st.none(), ownerships),
    },
)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(rule: tuple[Any, ...], style: int) -> str:
    """Intune's syntax, keywords in one of three spellings (-and / and / -AND)."""
    keyword = {0: "-{}", 1: "{}", 2: "-{}"}[style]
    if rule[0] == "cmp":
        _, name, op, value = rule
        shown = "[" + ", ".join(map(_quoted, value)) + "]" if isinstance(value, list) else _quoted(value)
        op = op.upper() if style == 2 else op
        return f"(device.{name} {op} {shown})"
    if rule[0] == "not":
        return f"({keyword.format('not')} {render(rule[1], style)})"
    word = keyword.format(rule[0]).upper() if style == 2 else keyword.format(rule[0])
    return f"({render(rule[1], style)} {word} {render(rule[2], style)})"


def _version(text: str) -> list[int] | None:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", text):
        return None
    parts = [int(p) for p in text.split(".")]
    return parts + [0] * (8 - len(parts))  # pad: 16 == 16.0 == 16.0.0


def _same(name: str, actual: str, wanted: str) -> bool:
    if name == "osVersion" and _version(actual) is not None and _version(wanted) is not None:
        return _version(actual) == _version(wanted)
    return actual.lower() == wanted.lower()


def reference(rule: tuple[Any, ...], device: dict[str, str | None]) -> bool:
    """The documented semantics, written out plainly (ASCII data, so lower() is casefold())."""
    if rule[0] == "and":
        return reference(rule[1], device) and reference(rule[2], device)
    if rule[0] == "or":
        return reference(rule[1], device) or reference(rule[2], device)
    if rule[0] == "not":
        return not reference(rule[1], device)
    _, name, op, wanted = rule
    actual = device.get(name)
    if actual is None:
        return op in ("-ne", "-notContains", "-notIn")
    if op in ORDER_OPS:
        have, want = _version(actual), _version(wanted)
        if have is None or want is None:
            return False
        return {"-gt": have > want, "-ge": have >= want, "-lt": have < want, "-le": have <= want}[op]
    a = actual.lower()
    checks = {
        "-eq": lambda: _same(name, actual, wanted),
        "-ne": lambda: not _same(name, actual, wanted),
        "-startsWith": lambda: a.startswith(wanted.lower()),
        "-endsWith": lambda: a.endswith(wanted.lower()),
        "-contains": lambda: wanted.lower() in a,
        "-notContains": lambda: wanted.lower() not in a,
        "-in": lambda: any(_same(name, actual, w) for w in wanted),
        "-notIn": lambda: not any(_same(name, actual, w) for w in wanted),
    }
    return bool(checks[op]())


@settings(max_examples=400)
@given(rules, devices, st.sampled_from([0, 1, 2]))
def test_evaluation_agrees_with_the_reference_evaluator(
    rule: tuple[Any, ...], device: dict[str, str | None], style: int
) -> None:
    parsed = parse_filter(render(rule, style), platform=IOS, usage=MANAGED)
    assert parsed.matches(device) is reference(rule, device)


version_texts = st.lists(st.integers(0, 12), min_size=1, max_size=4).map(lambda parts: ".".join(map(str, parts)))


@settings(max_examples=400)
@given(st.sampled_from(["-eq", "-ne", *ORDER_OPS, "-in", "-notIn"]), version_texts, version_texts)
def test_version_operators_agree_with_the_reference(op: str, actual: str, wanted: str) -> None:
    value = [wanted] if op in ("-in", "-notIn") else wanted
    rule = ("cmp", "osVersion", op, value)
    parsed = parse_filter(render(rule, 0), platform=IOS, usage=MANAGED)
    assert parsed.matches({"osVersion": actual}) is reference(rule, {"osVersion": actual})


GARBAGE_WORDS = [*"()[],\n", "device.model", "device.osVersion", "-eq", "-ge", "-in", '"a"', '"16"', "16", "user.x"]


@settings(max_examples=300)
@given(st.lists(st.sampled_from([*GARBAGE_WORDS, "-and", "or", "-not"]), max_size=16).map(" ".join))
def test_garbage_raises_only_the_filter_error(text: str) -> None:
    try:
        parse_filter(text, platform=IOS, usage=ENROLLMENT)
    except RuleSyntaxError as error:
        assert error.message.startswith("assignment filter rule: ")
        assert (error.line == 0) == (error.column == 0)
