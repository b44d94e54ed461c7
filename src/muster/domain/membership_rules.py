"""The rule language of dynamic groups and assignment filters (Intune/Entra syntax).

    (device.deviceCategory -eq "HR") and (device.model -startsWith "iPad")
    user.department -in ["Sales", "HR"] or not (user.accountEnabled -eq false)

Properties are `device.<name>` or `user.<name>` (names case-insensitive); operators -eq -ne -startsWith
-notStartsWith -endsWith -notEndsWith -contains -notContains -in -notIn (case-insensitive); literals are
double-quoted strings (`\\"` and `\\\\` escapes), integers, true, false and null. String comparison ignores case,
as Intune does. Regular-expression operators (-match) are left out: a rule is untrusted input and a regex would
let it cost unbounded time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


_OPERATORS = {op.value.lower(): op for op in Operator}
_LIST_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})


@dataclass(frozen=True)
class Comparison:
    property: str  # "device.model": object and name as written, matched case-insensitively
    operator: Operator
    value: Literal | tuple[Literal, ...]


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
    """A rule that does not parse; `column` is 1-based (0 when the whole rule is at fault)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(f"membership rule: {message}" + (f" (at column {column})" if column else ""))
        self.column = column


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

OR: /or\b/i
AND: /and\b/i
NOT: /not\b/i
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


@v_args(inline=True)
class _Build(Transformer[Token, Any]):
    def comparison(self, name: Token, operator: Token, value: Literal | list[Literal]) -> _Node:
        if name.split(".", 1)[0].lower() not in OBJECTS:
            raise RuleSyntaxError(f"unknown object in {str(name)!r} (expected device. or user.)", name.column or 0)
        op = _OPERATORS.get(operator.lower())
        if op is None:
            raise RuleSyntaxError(f"unknown operator {str(operator)!r}", operator.column or 0)
        if (op in _LIST_OPERATORS) != isinstance(value, list):
            wanted = 'a list such as ["a", "b"]' if op in _LIST_OPERATORS else "a single value"
            raise RuleSyntaxError(f"{op.value} takes {wanted}", operator.column or 0)
        return _Node(Comparison(str(name), op, tuple(value) if isinstance(value, list) else value), 1)

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


def parse_rule(text: str) -> Rule:
    """Parse a rule, or raise `RuleSyntaxError` saying what is wrong and where."""
    if len(text) > MAX_RULE_LENGTH:
        raise RuleSyntaxError(f"longer than {MAX_RULE_LENGTH} characters")
    if not text.strip():
        raise RuleSyntaxError("the rule is empty")
    try:
        node = _PARSER.parse(text)
    except UnexpectedCharacters as error:
        raise RuleSyntaxError(f"unexpected character {error.char!r}", error.column) from None
    except UnexpectedEOF:
        raise RuleSyntaxError("the rule ends too early", len(text) + 1) from None
    except UnexpectedToken as error:
        if error.token.type == "$END":
            raise RuleSyntaxError("the rule ends too early", len(text) + 1) from None
        raise RuleSyntaxError(f"unexpected {str(error.token)!r}", error.column) from None
    except UnexpectedInput as error:  # any other lark complaint, still with its position
        raise RuleSyntaxError("cannot parse", error.column) from None
    assert isinstance(node, _Node)  # the transformer builds one per rule
    return node.rule


def properties_of(rule: Rule) -> frozenset[str]:
    """The properties a rule reads, lower-cased ("device.enrollmentprofilename")."""
    found: set[str] = set()
    pending = [rule]
    while pending:
        node = pending.pop()
        if isinstance(node, Comparison):
            found.add(node.property.lower())
        elif isinstance(node, Not):
            pending.append(node.operand)
        else:
            pending += [node.left, node.right]
    return frozenset(found)


def _key(value: object) -> tuple[str, object]:
    """A comparable form: strings ignore case, and a bool never equals a number."""
    if isinstance(value, str):
        return ("s", value.casefold())
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    return ("null", None) if value is None else ("s", str(value).casefold())


def _compare(operator: Operator, actual: object, expected: Literal | tuple[Literal, ...]) -> bool:
    if operator in (Operator.EQ, Operator.NE):
        return (_key(actual) == _key(expected)) == (operator is Operator.EQ)
    if operator in _LIST_OPERATORS:
        assert isinstance(expected, tuple)
        return (_key(actual) in {_key(item) for item in expected}) == (operator is Operator.IN)
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


def evaluate(rule: Rule, properties: Mapping[str, object]) -> bool:
    """Whether an object with these properties ("device.model" -> value; absent means null) matches the rule."""
    values = {name.lower(): value for name, value in properties.items()}
    return _evaluate(rule, values)


def _evaluate(rule: Rule, values: Mapping[str, object]) -> bool:
    if isinstance(rule, Comparison):
        return _compare(rule.operator, values.get(rule.property.lower()), rule.value)
    if isinstance(rule, Not):
        return not _evaluate(rule.operand, values)
    if isinstance(rule, And):
        return _evaluate(rule.left, values) and _evaluate(rule.right, values)
    return _evaluate(rule.left, values) or _evaluate(rule.right, values)


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
