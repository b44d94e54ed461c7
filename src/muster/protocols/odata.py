"""OData system query options as Microsoft Graph uses them: `$filter`, `$orderby`, `$select`, `$top`,
`$skiptoken`, `$count`.

Pure parsing: query-string values in, a typed AST out, `ODataError` on anything else. The subset follows
OData 4.01 Part 2 (URL conventions) §5.1 as Graph's `deviceManagement` endpoints accept it:

- comparisons `property op literal` with op in eq ne gt ge lt le, and `property in (literal, ...)`;
- `startswith(property,'text')`, `endswith(...)`, `contains(...)`;
- `not`, `and`, `or` (precedence in that order, `not` binding tightest) and parentheses;
- literals: 'string' ('' escapes a quote), integers, decimals, true/false, null, DateTimeOffset
  (2024-05-01T10:00:00Z, turned into an aware UTC datetime) and GUIDs (kept as strings).

Keywords and function names are case-insensitive; property paths may contain '/' and are kept verbatim.
Because no property is boolean-valued on its own here, `not a eq 1` can only mean `not (a eq 1)`.
Error positions are 0-based character offsets into the option's text.
"""

from __future__ import annotations

import hashlib
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, TypeAlias
from urllib.parse import quote, urlencode

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from muster.protocols.errors import ParseError

Literal: TypeAlias = str | int | float | bool | datetime | None
ComparisonOp = typing.Literal["eq", "ne", "gt", "ge", "lt", "le"]
FunctionName = typing.Literal["startswith", "endswith", "contains"]

MAX_NESTING = 32  # levels of not/and/or alternation; chains of one operator count once
MAX_SKIPTOKEN_LENGTH = 2048
MAX_LIST_LENGTH = 2000  # $orderby and $select
_INT64 = 2**63


class ODataError(ParseError):
    """A query option could not be understood; `position` is the 0-based offset of the culprit, if known."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        super().__init__(reason)
        self.position = position


@dataclass(frozen=True)
class Comparison:
    """`property op value` (OData URL conventions §5.1.1.1). `null` only appears with eq/ne."""

    property: str
    op: ComparisonOp
    value: Literal


@dataclass(frozen=True)
class In:
    """`property in (v1, v2, ...)` (OData 4.01 URL conventions §5.1.1.1.12)."""

    property: str
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Function:
    """`startswith(property,'text')` and friends (OData URL conventions §5.1.1.7)."""

    name: FunctionName
    property: str
    value: str


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr: TypeAlias = Comparison | In | Function | And | Or | Not


@dataclass(frozen=True)
class OrderBy:
    """One `$orderby` item (OData URL conventions §5.1.5)."""

    property: str
    descending: bool


@dataclass(frozen=True)
class QueryOptions:
    """The system query options of one collection request."""

    filter: Expr | None
    orderby: tuple[OrderBy, ...]
    select: tuple[str, ...]
    top: int
    skiptoken: str | None
    count: bool


_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr | or_expr OR and_expr -> or_
?and_expr: unary | and_expr AND unary -> and_
?unary: NOT unary -> not_ | atom
?atom: comparison | in_list | function | "(" or_expr ")"
comparison: PROPERTY COMP_OP value
in_list: PROPERTY IN "(" value ("," value)* ")"
function: FUNC_NAME "(" PROPERTY "," STRING ")"
?value: STRING | GUID | DATETIME | DECIMAL | INT | TRUE | FALSE | NULL

OR.3: /or\b/i
AND.3: /and\b/i
NOT.3: /not\b/i
IN.3: /in\b/i
COMP_OP.3: /(eq|ne|gt|ge|lt|le)\b/i
TRUE.3: /true\b/i
FALSE.3: /false\b/i
NULL.3: /null\b/i
FUNC_NAME.3: /(startswith|endswith|contains)(?=\s*\()/i
GUID.3: /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b/
DATETIME.3: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})/i
DECIMAL.2: /-?\d+(\.\d+([eE][+-]?\d+)?|[eE][+-]?\d+)/
INT.1: /-?\d+/
STRING: /'(?:[^']|'')*'/
PROPERTY: /[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)*/
%ignore /\s+/
"""

_EXPECTED_NAMES = {
    "PROPERTY": "a property name",
    "COMP_OP": "an operator",
    "IN": "an operator",
    "FUNC_NAME": "a function",
    "NOT": "'not'",
    "AND": "'and'",
    "OR": "'or'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "$END": "end of input",
    **{name: "a value" for name in ("GUID", "DATETIME", "DECIMAL", "INT", "TRUE", "FALSE", "NULL")},
    "STRING": "a string",
}


class _Node(NamedTuple):
    """A parsed sub-expression with its nesting level, so depth is checked without recursion."""

    expr: Expr
    nesting: int


def _child_nesting(parent: type, child: _Node) -> int:
    # a chain of one operator (a and b and c) is one level, however long
    return child.nesting if type(child.expr) is parent else child.nesting + 1


def _error_at(option: str, reason: str, position: int, *, expected: str = "") -> ODataError:
    suffix = f", expected {expected}" if expected else ""
    return ODataError(f"{option}: {reason} at position {position}{suffix}", position)


def _filter_error(reason: str, token: Token) -> ODataError:
    return _error_at("$filter", reason, token.start_pos or 0)


def _checked(expr: Expr, nesting: int, at: Token) -> _Node:
    if nesting > MAX_NESTING:
        raise _filter_error("expression nested too deeply", at)
    return _Node(expr, nesting)


class _ToAst(Transformer[Token, _Node]):
    """Runs inside the LALR parser (no recursion), building the AST as rules reduce."""

    def or_(self, children: list[typing.Any]) -> _Node:
        left, keyword, right = children
        nesting = max(_child_nesting(Or, left), _child_nesting(Or, right))
        return _checked(Or(left.expr, right.expr), nesting, keyword)

    def and_(self, children: list[typing.Any]) -> _Node:
        left, keyword, right = children
        nesting = max(_child_nesting(And, left), _child_nesting(And, right))
        return _checked(And(left.expr, right.expr), nesting, keyword)

    def not_(self, children: list[typing.Any]) -> _Node:
        keyword, operand = children
        return _checked(Not(operand.expr), operand.nesting + 1, keyword)

    def comparison(self, children: list[typing.Any]) -> _Node:
        prop, op, value = children
        op_name = typing.cast(ComparisonOp, op.lower())
        literal = _literal(value)
        if literal is None and op_name not in ("eq", "ne"):
            raise _filter_error("null can only be compared with eq or ne", value)
        return _Node(Comparison(str(prop), op_name, literal), 0)

    def in_list(self, children: list[typing.Any]) -> _Node:
        prop, _keyword, *values = children
        return _Node(In(str(prop), tuple(_literal(value) for value in values)), 0)

    def function(self, children: list[typing.Any]) -> _Node:
        name, prop, text = children
        return _Node(Function(typing.cast(FunctionName, name.lower()), str(prop), _string(text)), 0)


def _string(token: Token) -> str:
    return token[1:-1].replace("''", "'")


def _literal(token: Token) -> Literal:
    kind = token.type
    if kind == "STRING":
        return _string(token)
    if kind == "GUID":
        return str(token)
    if kind in ("TRUE", "FALSE", "NULL"):
        return {"TRUE": True, "FALSE": False, "NULL": None}[kind]
    if kind == "INT":
        return _integer(token)
    if kind == "DECIMAL":
        return _decimal(token)
    return _datetime(token)


def _integer(token: Token) -> int:
    # 64-bit, like the columns it is compared with; the length check keeps int() cheap
    if len(token.lstrip("-")) > 19 or not -_INT64 <= int(token) < _INT64:
        raise _filter_error("integer out of range", token)
    return int(token)


def _decimal(token: Token) -> float:
    number = float(token)
    if not math.isfinite(number):
        raise _filter_error("number out of range", token)
    return number


def _datetime(token: Token) -> datetime:
    try:
        return datetime.fromisoformat(token.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _filter_error("invalid date/time", token) from None


_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual", transformer=_ToAst(), maybe_placeholders=False)


def parse_filter(text: str, *, max_length: int = 2000) -> Expr:
    """Parse a `$filter` value into an AST; raise `ODataError` saying what was expected where."""
    if len(text) > max_length:
        raise ODataError(f"$filter: longer than {max_length} characters")
    try:
        node = _PARSER.parse(text)
    except UnexpectedInput as error:
        raise _syntax_error("$filter", text, error) from None
    return typing.cast(_Node, node).expr


def _syntax_error(option: str, text: str, error: UnexpectedInput) -> ODataError:
    if isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        return _error_at(option, f"unexpected character {text[position]!r}", position)
    expected = error.expected if isinstance(error, UnexpectedToken | UnexpectedEOF) else set()
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        found, position = repr(_shorten(str(error.token))), error.token.start_pos or 0
    else:
        found, position = "end", len(text)
    return _error_at(option, f"unexpected {found}", position, expected=_describe(expected))


def _shorten(token: str) -> str:
    return token if len(token) <= 24 else token[:21] + "..."


def _describe(expected: typing.Iterable[str]) -> str:
    terminals = set(expected)
    if "OR" in terminals:
        # LALR reduces `a eq 1` to an or_expr before seeing the error; `and` fits wherever `or` does
        terminals.add("AND")
    names = {_EXPECTED_NAMES.get(name, name) for name in terminals}
    if "a value" in names:
        names.discard("a string")  # a string is one kind of value
    return " or ".join(sorted(names)) if names else "nothing more"


_PROPERTY = r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*"
_ORDER_ITEM = re.compile(rf"\s*({_PROPERTY})(?:\s+(asc|desc))?\s*", re.IGNORECASE)
_SELECT_ITEM = re.compile(rf"\s*({_PROPERTY})\s*")


def _items(option: str, text: str, pattern: re.Pattern[str]) -> list[tuple[re.Match[str], int]]:
    """Split a comma-separated option, matching each item in full; report the first bad one's position."""
    if len(text) > MAX_LIST_LENGTH:
        raise ODataError(f"{option}: longer than {MAX_LIST_LENGTH} characters")
    items, start = [], 0
    for part in text.split(","):
        match = pattern.fullmatch(part)
        if match is None:
            offset = start + len(part) - len(part.lstrip())
            found = f"unexpected {_shorten(part.strip())!r}" if part.strip() else "empty item"
            raise _error_at(option, found, offset)
        items.append((match, start))
        start += len(part) + 1
    return items


def parse_orderby(text: str) -> tuple[OrderBy, ...]:
    """Parse `$orderby` ("prop desc, other asc, third"); a property may appear only once."""
    result: dict[str, OrderBy] = {}
    for match, start in _items("$orderby", text, _ORDER_ITEM):
        prop = match.group(1)
        if prop in result:
            raise _error_at("$orderby", f"{prop!r} appears twice", start + match.start(1))
        result[prop] = OrderBy(prop, (match.group(2) or "asc").lower() == "desc")
    return tuple(result.values())


def parse_select(text: str) -> tuple[str, ...]:
    """Parse `$select` ("id,deviceName") into property names, dropping repeats."""
    names = (match.group(1) for match, _start in _items("$select", text, _SELECT_ITEM))
    return tuple(dict.fromkeys(names))


def parse_top(text: str | None, *, default: int = 100, maximum: int = 1000) -> int:
    """Parse `$top`; values above `maximum` are clamped to it, as Graph does."""
    if text is None:
        return default
    digits = text.lstrip("0")
    if not text.isascii() or not text.isdigit() or not digits:
        raise ODataError(f"$top: expected a positive integer, got {_shorten(text)!r}")
    return maximum if len(digits) > 18 else min(int(digits), maximum)


def parse_count(text: str | None) -> bool:
    """Parse `$count` (true/false, any case)."""
    if text is None:
        return False
    if text.lower() not in ("true", "false"):
        raise ODataError(f"$count: expected true or false, got {_shorten(text)!r}")
    return text.lower() == "true"


def parse_skiptoken(text: str | None) -> str | None:
    """Only bounds the size: the token's content is checked by the store that issued it."""
    if text is not None and len(text) > MAX_SKIPTOKEN_LENGTH:
        raise ODataError("$skiptoken: too long")
    return text


def parse_query_options(params: Mapping[str, str]) -> QueryOptions:
    """Read the system query options from query parameters; names are case-insensitive, others ignored."""
    options = {name.lower(): value for name, value in params.items() if name.startswith("$")}
    filter_text, orderby_text = options.get("$filter"), options.get("$orderby")
    select_text = options.get("$select")
    return QueryOptions(
        filter=None if filter_text is None else parse_filter(filter_text),
        orderby=() if orderby_text is None else parse_orderby(orderby_text),
        select=() if select_text is None else parse_select(select_text),
        top=parse_top(options.get("$top")),
        skiptoken=parse_skiptoken(options.get("$skiptoken")),
        count=parse_count(options.get("$count")),
    )


_LINK_SAFE = "$,'/:"  # keep nextLinks readable, as Graph's are


def next_link(base_url: str, params: Mapping[str, str], skiptoken: str) -> str:
    """`@odata.nextLink`: the same request with `$skiptoken` replaced."""
    query = {name: value for name, value in params.items() if name.lower() != "$skiptoken"}
    query["$skiptoken"] = skiptoken
    return f"{base_url}?{urlencode(query, safe=_LINK_SAFE, quote_via=quote)}"


def format_literal(value: Literal) -> str:
    """A literal as `$filter` text; datetimes are written in UTC."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return repr(value)


def format_filter(expr: Expr) -> str:
    """Canonical `$filter` text for an AST; `parse_filter(format_filter(e)) == e`."""
    if isinstance(expr, Comparison):
        return f"{expr.property} {expr.op} {format_literal(expr.value)}"
    if isinstance(expr, In):
        return f"{expr.property} in ({', '.join(format_literal(value) for value in expr.values)})"
    if isinstance(expr, Function):
        return f"{expr.name}({expr.property},{format_literal(expr.value)})"
    if isinstance(expr, Not):
        return f"not {_operand_text(expr.operand, (And, Or))}"
    keyword, looser = ("and", (Or,)) if isinstance(expr, And) else ("or", ())
    # the grammar is left-associative, so a right operand of the same operator keeps its parentheses
    left = _operand_text(expr.left, looser)
    right = _operand_text(expr.right, (*looser, type(expr)))
    return f"{left} {keyword} {right}"


def _operand_text(operand: Expr, parenthesized: tuple[type, ...]) -> str:
    text = format_filter(operand)
    return f"({text})" if isinstance(operand, parenthesized) else text


def filter_operands(expr: And | Or) -> list[Expr]:
    """The operands of `a and b and c` as one list, gathered without recursion (chains can be long)."""
    operands: list[Expr] = []
    pending: list[Expr] = [expr]
    while pending:
        node = pending.pop()
        if type(node) is type(expr):
            pending += [node.right, node.left]
        else:
            operands.append(node)
    return operands


def query_fingerprint(options: QueryOptions) -> str:
    """Ties a skiptoken to the query that issued it: a different filter or order would page wrongly."""
    filter_text = "" if options.filter is None else format_filter(options.filter)
    order_text = ",".join(f"{item.property} {'desc' if item.descending else 'asc'}" for item in options.orderby)
    return hashlib.sha256(f"{filter_text}\n{order_text}".encode()).hexdigest()[:16]
