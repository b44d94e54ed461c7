"""The rule language of dynamic groups and assignment filters (Intune/Entra syntax).

    (device.deviceCategory -eq "HR") and (device.model -startsWith "iPad")
    user.department -in ["Sales", "HR"] or not (user.accountEnabled -eq false)
    (device.model -startsWith "iPad") -and (device.osVersion -ge "16.0")

Properties are `device.<name>` or `user.<name>` (names case-insensitive); operators -eq -ne -startsWith
-notStartsWith -endsWith -notEndsWith -contains -notContains -in -notIn -gt -ge -lt -le (case-insensitive);
connectives and/or/not, also written -and/-or/-not as Intune filters do; literals are double-quoted strings
(`\\"` and `\\\\` escapes), integers, true, false and null. String comparison ignores case, as Intune does.

Ordering (-gt -ge -lt -le) is defined between integers, and between versions: the values of the properties the
caller names as versions ("16.10" > "16.9", components compared as numbers, "16" == "16.0"). Anything else is
unordered, so an ordering test on it is false. On version properties -eq -ne -in -notIn compare versions too,
so that `-ge` and `-le` both hold exactly when `-eq` does.

Regular-expression operators (-match) are left out: a rule is untrusted input and a regex would let it cost
unbounded time.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from muster.domain.errors import InvalidInput

MAX_RULE_LENGTH = 3072  # Entra ID's limit on a dynamic membership rule
MAX_DEPTH = 32  # nesting of and/or/not/parentheses; keeps evaluation and printing well inside the stack
OBJECTS = ("device", "user")

Literal = str | int | bool | None


class Operator(StrEnum):
    EQ = "-eq"
    NE = "-ne"
    STARTS_WITH = "-startsWith"
    NOT_STARTS_WITH = "-notStartsWith"
    ENDS_WITH = "-endsWith"
    NOT_ENDS_WITH = "-notEndsWith"
    CONTAINS = "-contains"
    NOT_CONTAINS = "-notContains"
    IN = "-in"
    NOT_IN = "-notIn"
    GREATER = "-gt"
    GREATER_OR_EQUAL = "-ge"
    LESS = "-lt"
    LESS_OR_EQUAL = "-le"


_OPERATORS = {op.value.lower(): op for op in Operator}
_LIST_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})
_EQUALITY_OPERATORS = frozenset({Operator.EQ, Operator.NE, *_LIST_OPERATORS})
# Which orderings each operator accepts: -1 (less), 0 (equal), 1 (greater).
_ORDERINGS = {
    Operator.GREATER: {1},
    Operator.GREATER_OR_EQUAL: {0, 1},
    Operator.LESS: {-1},
    Operator.LESS_OR_EQUAL: {-1, 0},
}
_VERSION = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9}){0,7}")


@dataclass(frozen=True)
class Comparison:
    property: str  # "device.model": object and name as written, matched case-insensitively
    operator: Operator
    value: Literal | tuple[Literal, ...]
    # Where the property is written (line, column), for errors found after parsing; not part of the meaning.
    at: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class And:
    left: Rule
    right: Rule


@dataclass(frozen=True)
class Or:
    left: Rule
    right: Rule


@dataclass(frozen=True)
class Not:
    operand: Rule


Rule = Comparison | And | Or | Not


class RuleSyntaxError(InvalidInput):
    """A rule that does not parse, or uses what its context forbids.

    `line` and `column` are 1-based (both 0 when the whole rule is at fault); `reason` is the message without
    the subject and position, and `subject` names the kind of rule ("membership rule", "assignment filter rule").
    """

    def __init__(self, reason: str, column: int = 0, *, line: int = 1, subject: str = "membership rule") -> None:
        where = f" (at line {line}, column {column})" if column else ""
        super().__init__(f"{subject}: {reason}{where}")
        self.reason = reason
        self.line = line if column else 0
        self.column = column
        self.subject = subject


_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr | or_expr OR and_expr -> or_
?and_expr: not_expr | and_expr AND not_expr -> and_
?not_expr: atom | NOT not_expr -> not_
?atom: comparison | "(" or_expr ")" -> group
comparison: PROPERTY OPERATOR value
?value: literal | list
list: "[" "]" | "[" literal ("," literal)* "]"
?literal: STRING -> string | INT -> integer | TRUE -> true | FALSE -> false | NULL -> null

OR: /-?or\b/i
AND: /-?and\b/i
NOT: /-?not\b/i
TRUE: /true\b/i
FALSE: /false\b/i
NULL: /null\b/i
PROPERTY: /[A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*/
OPERATOR: /-[A-Za-z]+/
STRING: /"(\\["\\]|[^"\\])*"/
INT: /-?[0-9]{1,15}/
%ignore /[ \t\r\n]+/
"""


@dataclass(frozen=True)
class _Node:
    """A parsed sub-rule with its nesting depth (checked as the tree is built, bottom-up, without recursion)."""

    rule: Rule
    depth: int


def _deeper(*children: _Node) -> int:
    depth = 1 + max(child.depth for child in children)
    if depth > MAX_DEPTH:
        raise RuleSyntaxError(f"nested more than {MAX_DEPTH} levels deep")
    return depth


def _error_at(reason: str, token: Token) -> RuleSyntaxError:
    return RuleSyntaxError(reason, token.column or 0, line=token.line or 1)


@v_args(inline=True)
class _Build(Transformer[Token, Any]):
    def comparison(self, name: Token, operator: Token, value: Literal | list[Literal]) -> _Node:
        if name.split(".", 1)[0].lower() not in OBJECTS:
            raise _error_at(f"unknown object in {str(name)!r} (expected device. or user.)", name)
        op = _OPERATORS.get(operator.lower())
        if op is None:
            raise _error_at(f"unknown operator {str(operator)!r}", operator)
        if (op in _LIST_OPERATORS) != isinstance(value, list):
            wanted = 'a list such as ["a", "b"]' if op in _LIST_OPERATORS else "a single value"
            raise _error_at(f"{op.value} takes {wanted}", operator)
        literal = tuple(value) if isinstance(value, list) else value
        return _Node(Comparison(str(name), op, literal, (name.line or 1, name.column or 0)), 1)

    def list(self, *items: Literal) -> list[Literal]:
        return list(items)

    def string(self, token: Token) -> str:
        return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")

    def integer(self, token: Token) -> int:
        return int(token)

    def true(self, _: Token) -> bool:
        return True

    def false(self, _: Token) -> bool:
        return False

    def null(self, _: Token) -> None:
        return None

    def and_(self, left: _Node, _: Token, right: _Node) -> _Node:
        return _Node(And(left.rule, right.rule), _deeper(left, right))

    def or_(self, left: _Node, _: Token, right: _Node) -> _Node:
        return _Node(Or(left.rule, right.rule), _deeper(left, right))

    def not_(self, _: Token, operand: _Node) -> _Node:
        return _Node(Not(operand.rule), _deeper(operand))

    def group(self, inner: _Node) -> _Node:
        return _Node(inner.rule, _deeper(inner))


# The transformer runs inside the LALR parser, so even a deeply nested rule is built without recursion.
_PARSER = Lark(_GRAMMAR, parser="lalr", transformer=_Build())


def parse_rule(text: str, *, subject: str = "membership rule") -> Rule:
    """Parse a rule, or raise `RuleSyntaxError` saying what is wrong and where (`subject` opens the message)."""
    try:
        return _parse(text)
    except RuleSyntaxError as error:
        raise RuleSyntaxError(error.reason, error.column, line=error.line, subject=subject) from None


def _parse(text: str) -> Rule:
    if len(text) > MAX_RULE_LENGTH:
        raise RuleSyntaxError(f"longer than {MAX_RULE_LENGTH} characters")
    if not text.strip():
        raise RuleSyntaxError("the rule is empty")
    try:
        node = _PARSER.parse(text)
    except UnexpectedCharacters as error:
        raise RuleSyntaxError(f"unexpected character {error.char!r}", error.column, line=error.line) from None
    except UnexpectedEOF:
        raise _ends_early(text) from None
    except UnexpectedToken as error:
        if error.token.type == "$END":
            raise _ends_early(text) from None
        raise RuleSyntaxError(f"unexpected {str(error.token)!r}", error.column, line=error.line) from None
    except UnexpectedInput as error:  # any other lark complaint, still with its position
        raise RuleSyntaxError("cannot parse", error.column, line=error.line) from None
    assert isinstance(node, _Node)  # the transformer builds one per rule
    return node.rule


def _ends_early(text: str) -> RuleSyntaxError:
    """The error pointing just past the last character."""
    last_line = text.rsplit("\n", 1)[-1]
    return RuleSyntaxError("the rule ends too early", len(last_line) + 1, line=text.count("\n") + 1)


def comparisons_of(rule: Rule) -> list[Comparison]:
    """The rule's comparisons, in the order they are written."""
    found: list[Comparison] = []
    pending = [rule]
    while pending:
        node = pending.pop()
        if isinstance(node, Comparison):
            found.append(node)
        elif isinstance(node, Not):
            pending.append(node.operand)
        else:
            pending += [node.right, node.left]
    return found


def properties_of(rule: Rule) -> frozenset[str]:
    """The properties a rule reads, lower-cased ("device.enrollmentprofilename")."""
    return frozenset(comparison.property.lower() for comparison in comparisons_of(rule))


def _key(value: object) -> tuple[str, object]:
    """A comparable form: strings ignore case, and a bool never equals a number."""
    if isinstance(value, str):
        return ("s", value.casefold())
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    return ("null", None) if value is None else ("s", str(value).casefold())


def version_key(value: object) -> tuple[int, ...] | None:
    """A dotted version as comparable numbers without trailing zeros ("16.0" and "16" agree), else None."""
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        return None
    parts = [int(part) for part in value.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _numbers(value: object, is_version: bool) -> tuple[int, ...] | None:
    """The value as comparable numbers: a version's components, or an integer (never a bool); else None."""
    if is_version:
        return version_key(value)
    return (value,) if isinstance(value, int) and not isinstance(value, bool) else None


def _ordering(actual: object, expected: object, is_version: bool) -> int | None:
    """-1, 0 or 1 when the values are ordered (two integers, or two versions of a version property)."""
    left, right = _numbers(actual, is_version), _numbers(expected, is_version)
    if left is None or right is None:
        return None
    return (left > right) - (left < right)


def _equal(actual: object, expected: object, is_version: bool) -> bool:
    ordering = _ordering(actual, expected, is_version) if is_version else None
    return ordering == 0 if ordering is not None else _key(actual) == _key(expected)


def _compare(
    operator: Operator, actual: object, expected: Literal | tuple[Literal, ...], *, is_version: bool = False
) -> bool:
    if operator in _EQUALITY_OPERATORS:
        positive = operator in (Operator.EQ, Operator.IN)
        choices = expected if isinstance(expected, tuple) else (expected,)
        return any(_equal(actual, choice, is_version) for choice in choices) == positive
    if operator in _ORDERINGS:
        return _ordering(actual, expected, is_version) in _ORDERINGS[operator]
    negated = operator in (Operator.NOT_STARTS_WITH, Operator.NOT_ENDS_WITH, Operator.NOT_CONTAINS)
    if not isinstance(actual, str) or not isinstance(expected, str):
        return negated  # a text test on a missing or non-text value matches only its negation
    have, want = actual.casefold(), expected.casefold()
    if operator in (Operator.STARTS_WITH, Operator.NOT_STARTS_WITH):
        found = have.startswith(want)
    elif operator in (Operator.ENDS_WITH, Operator.NOT_ENDS_WITH):
        found = have.endswith(want)
    else:
        found = want in have
    return found != negated


def evaluate(rule: Rule, properties: Mapping[str, object], versions: Collection[str] = ()) -> bool:
    """Whether an object with these properties ("device.model" -> value; absent means null) matches the rule.

    `versions` names the properties holding versions ("device.osVersion"), compared as such.
    """
    values = {name.lower(): value for name, value in properties.items()}
    return _evaluate(rule, values, frozenset(name.lower() for name in versions))


def _evaluate(rule: Rule, values: Mapping[str, object], versions: frozenset[str]) -> bool:
    if isinstance(rule, Comparison):
        name = rule.property.lower()
        return _compare(rule.operator, values.get(name), rule.value, is_version=name in versions)
    if isinstance(rule, Not):
        return not _evaluate(rule.operand, values, versions)
    if isinstance(rule, And):
        return _evaluate(rule.left, values, versions) and _evaluate(rule.right, values, versions)
    return _evaluate(rule.left, values, versions) or _evaluate(rule.right, values, versions)


def _literal(value: Literal) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def format_rule(rule: Rule) -> str:
    """The rule as text, fully parenthesised, so that `parse_rule(format_rule(r)) == r`."""
    if isinstance(rule, Comparison):
        value = rule.value
        shown = "[" + ", ".join(map(_literal, value)) + "]" if isinstance(value, tuple) else _literal(value)
        return f"{rule.property} {rule.operator.value} {shown}"
    if isinstance(rule, Not):
        return f"not ({format_rule(rule.operand)})"
    word = "and" if isinstance(rule, And) else "or"
    return f"({format_rule(rule.left)} {word} {format_rule(rule.right)})"
