"""Assignment filters: Intune's device filter rules, checked against what each platform and use supports.

    (device.model -startsWith "iPad") -and (device.osVersion -ge "16.0")

The language is the one of dynamic groups (`muster.domain.membership_rules`), limited here to `device.`
properties, quoted string values, and per property the operators Intune offers. Which properties a rule may read
depends on the platform and on the policy using the filter: a filter used at enrollment (enrollment restrictions,
Windows ESP) sees only what a device reports before it is enrolled (seed-catalog-C §1.13, 003:7201-7222), and
Android filters are not usable there at all (003:7223). Other (managed-device) policies see the full set.

A device is a mapping of property names as in the catalogue (`osVersion`, `model`, ...) to text. A missing
property (absent or None) never satisfies a positive operator (-eq -startsWith -endsWith -contains -in -gt -ge
-lt -le) and always satisfies a negative one (-ne -notContains -notIn): "not equal to X" holds when the device
reports nothing. `osVersion` is compared as a version: "16.10" > "16.9" and "16" -eq "16.0".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from muster.domain.membership_rules import (
    Comparison,
    Literal,
    Operator,
    Rule,
    RuleSyntaxError,
    comparisons_of,
    evaluate,
    parse_rule,
    version_key,
)

SUBJECT = "assignment filter rule"
VERSION_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$"  # what `version_key` accepts, for Graph clients


class FilterPlatform(StrEnum):
    """Graph `devicePlatformType` values a filter can be made for."""

    ANDROID = "android"
    ANDROID_FOR_WORK = "androidForWork"
    IOS = "iOS"  # iOS and iPadOS
    MACOS = "macOS"
    WINDOWS = "windows10AndLater"


class FilterUsage(StrEnum):
    ENROLLMENT = "enrollment"  # enrollment restrictions and ESP: the properties known before enrollment
    MANAGED_DEVICE = "managedDevice"  # every other policy: the full property set


class DataType(StrEnum):
    STRING = "String"
    VERSION = "Version"
    BOOLEAN = "Boolean"


# Graph `assignmentFilterOperator` names of the rule operators filters accept.
GRAPH_OPERATORS = {
    Operator.EQ: "equals",
    Operator.NE: "notEquals",
    Operator.STARTS_WITH: "startsWith",
    Operator.ENDS_WITH: "endsWith",
    Operator.CONTAINS: "contains",
    Operator.NOT_CONTAINS: "notContains",
    Operator.IN: "in",
    Operator.NOT_IN: "notIn",
    Operator.GREATER: "greaterThan",
    Operator.GREATER_OR_EQUAL: "greaterThanOrEquals",
    Operator.LESS: "lessThan",
    Operator.LESS_OR_EQUAL: "lessThanOrEquals",
}
_CHOICE_OPERATORS = (Operator.EQ, Operator.NE, Operator.IN, Operator.NOT_IN)
_TEXT_OPERATORS = (
    Operator.EQ,
    Operator.NE,
    Operator.STARTS_WITH,
    Operator.ENDS_WITH,
    Operator.CONTAINS,
    Operator.NOT_CONTAINS,
    Operator.IN,
    Operator.NOT_IN,
)
_ORDER_OPERATORS = (Operator.GREATER, Operator.GREATER_OR_EQUAL, Operator.LESS, Operator.LESS_OR_EQUAL)


@dataclass(frozen=True)
class FilterProperty:
    """A device property a filter rule can read (Graph `assignmentFilterSupportedProperty`)."""

    name: str
    data_type: DataType
    operators: tuple[Operator, ...]
    values: tuple[str, ...] = ()  # the only values it takes, when it is a choice

    def to_graph(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataType": self.data_type.value,
            "isCollection": False,
            "supportedOperators": [GRAPH_OPERATORS[op] for op in self.operators],
            "supportedValues": list(self.values),
            "propertyRegexConstraint": VERSION_PATTERN if self.data_type is DataType.VERSION else None,
        }


def _text(name: str) -> FilterProperty:
    return FilterProperty(name, DataType.STRING, _TEXT_OPERATORS)


PROPERTIES = {
    prop.name: prop
    for prop in (
        _text("deviceName"),
        _text("manufacturer"),
        _text("model"),
        FilterProperty("osVersion", DataType.VERSION, _TEXT_OPERATORS + _ORDER_OPERATORS),
        FilterProperty("deviceOwnership", DataType.STRING, _CHOICE_OPERATORS, ("Personal", "Corporate")),
        _text("enrollmentProfileName"),
        _text("deviceCategory"),
        _text("operatingSystemSKU"),  # Windows edition: "Enterprise", "Education", "Professional", "Core" (Home)
        FilterProperty("isRooted", DataType.BOOLEAN, _CHOICE_OPERATORS, ("True", "False")),
    )
}
_VERSIONS = frozenset(f"device.{name}" for name, prop in PROPERTIES.items() if prop.data_type is DataType.VERSION)

_COMMON = ("deviceName", "manufacturer", "model", "osVersion", "deviceOwnership", "enrollmentProfileName")
_MANAGED_DEVICE = {
    FilterPlatform.ANDROID: (*_COMMON, "deviceCategory", "isRooted"),
    FilterPlatform.ANDROID_FOR_WORK: (*_COMMON, "deviceCategory", "isRooted"),
    FilterPlatform.IOS: (*_COMMON, "deviceCategory"),
    FilterPlatform.MACOS: (*_COMMON, "deviceCategory"),
    FilterPlatform.WINDOWS: (*_COMMON, "deviceCategory", "operatingSystemSKU"),
}
# 003:7207-7222; Android has none: its filters cannot be used at enrollment (003:7223).
_APPLE_AT_ENROLLMENT = ("manufacturer", "model", "osVersion", "deviceOwnership", "enrollmentProfileName")
_ENROLLMENT: dict[FilterPlatform, tuple[str, ...]] = {
    FilterPlatform.IOS: _APPLE_AT_ENROLLMENT,
    FilterPlatform.MACOS: _APPLE_AT_ENROLLMENT,
    FilterPlatform.WINDOWS: ("osVersion", "operatingSystemSKU", "enrollmentProfileName"),
}


_USED_AT = {FilterUsage.ENROLLMENT: " used at enrollment", FilterUsage.MANAGED_DEVICE: ""}


def supported_properties(platform: FilterPlatform, usage: FilterUsage) -> list[FilterProperty]:
    """The properties a filter for `platform` may read when `usage` uses it (none: not usable there)."""
    names = _MANAGED_DEVICE[platform] if usage is FilterUsage.MANAGED_DEVICE else _ENROLLMENT.get(platform, ())
    return [PROPERTIES[name] for name in names]


@dataclass(frozen=True)
class FilterRule:
    """A checked filter rule; `matches` tells whether a device is in the filter."""

    rule: Rule
    platform: FilterPlatform
    usage: FilterUsage

    def matches(self, device: Mapping[str, str | None]) -> bool:
        return evaluate(self.rule, {f"device.{name}": value for name, value in device.items()}, _VERSIONS)


def parse_filter(rule: str, *, platform: FilterPlatform, usage: FilterUsage) -> FilterRule:
    """Parse and check a filter rule, or raise `RuleSyntaxError` (an `InvalidInput`) saying what and where."""
    allowed = {prop.name.lower(): prop for prop in supported_properties(platform, usage)}
    if not allowed:
        raise RuleSyntaxError(f"{platform.value} filters cannot be used at enrollment (003:7223)", subject=SUBJECT)
    parsed = parse_rule(rule, subject=SUBJECT)
    for comparison in comparisons_of(parsed):
        _check(comparison, allowed, f"{platform.value} filters" + _USED_AT[usage])
    return FilterRule(parsed, platform, usage)


def _check(comparison: Comparison, allowed: Mapping[str, FilterProperty], context: str) -> None:
    line, column = comparison.at

    def refuse(reason: str) -> RuleSyntaxError:
        return RuleSyntaxError(reason, column, line=line, subject=SUBJECT)

    kind, _, name = comparison.property.partition(".")
    prop = allowed.get(name.lower()) if kind.lower() == "device" else None
    if prop is None:
        names = ", ".join(f"device.{p.name}" for p in allowed.values())
        raise refuse(f"{context} cannot read {comparison.property}; they can read {names}")
    if comparison.operator not in prop.operators:
        operators = " ".join(op.value for op in prop.operators)
        raise refuse(f"device.{prop.name} does not support {comparison.operator.value}; it supports {operators}")
    values = comparison.value if isinstance(comparison.value, tuple) else (comparison.value,)
    for value in values:
        _check_value(prop, comparison.operator, value, refuse)


def _check_value(
    prop: FilterProperty, operator: Operator, value: Literal, refuse: Callable[[str], RuleSyntaxError]
) -> None:
    if not isinstance(value, str):
        raise refuse(f"device.{prop.name} compares with quoted text, not {value!r}")
    if prop.values and value.casefold() not in {choice.casefold() for choice in prop.values}:
        raise refuse(f"device.{prop.name} is one of {', '.join(prop.values)}, not {value!r}")
    if operator in _ORDER_OPERATORS and version_key(value) is None:
        raise refuse(f'device.{prop.name} {operator.value} needs a version such as "16.0", not {value!r}')
