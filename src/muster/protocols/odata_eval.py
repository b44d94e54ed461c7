"""OData query options evaluated in memory over Graph-shaped dicts, for small bounded collections.

The semantics are exactly those of the SQL engine (`muster.store.odata`), so a client sees the same
answers whichever engine serves a collection:

- Strings compare and sort case-insensitively by ASCII case folding (what SQLite's `lower()` does; other
  letters are compared as they are), in code point order.
- A comparison or function on a missing/null value is false, except `ne`, which is true; `eq null` and
  `ne null` test for null; `not` is plain negation.
- Datetimes compare in UTC; a property of kind `datetime` may hold a `datetime` (naive means UTC) or its
  ISO 8601 text, as Graph dicts do.
- Sort order is `$orderby`, then `id` ascending; null is the smallest value (first ascending, last
  descending).
- `$skiptoken` is keyset: the last row's sort values and id, bound to the `$filter`/`$orderby` fingerprint,
  so a page starts strictly after that row whatever changed meanwhile. Forged tokens give `ODataError`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

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
    QueryOptions,
    filter_operands,
    query_fingerprint,
)

Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]
Kinds = Mapping[str, type]  # Graph property name -> str, int, float, bool or datetime

KINDS = (str, int, float, bool, datetime)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": str.__contains__,
}


@dataclass(frozen=True)
class Page:
    """One page of a collection: its items, the `$skiptoken` of the next page, `@odata.count` if asked."""

    items: list[Item]
    skiptoken: str | None
    count: int | None


def evaluate(items: Sequence[Item], options: QueryOptions, kinds: Kinds, *, id_key: str = "id") -> Page:
    """Filter, order and page `items` (whose `id_key` values are all str or all int) as `options` ask."""
    check_kinds(kinds)
    sorter = _Sorter(options, kinds, id_key)  # first, as the SQL engine reports $orderby errors first
    keep = compile_predicate(options.filter, kinds) if options.filter is not None else None
    matching = [item for item in items if keep is None or keep(item)]
    keyed = sorted(((sorter.key(item), item) for item in matching), key=sorter.sort_key)
    if options.skiptoken is not None:
        id_kind = type(items[0][id_key]) if items else None
        start = sorter.decode(options.skiptoken, id_kind)
        keyed = [(key, item) for key, item in keyed if sorter.compare(key, start) > 0]
    count = len(matching) if options.count else None
    if len(keyed) <= options.top:
        return Page([item for _, item in keyed], None, count)
    page = [item for _, item in keyed[: options.top]]
    return Page(page, sorter.encode(page[-1]), count)


def check_kinds(kinds: Kinds) -> None:
    """Refuse a declaration the evaluator cannot honour (a programming error, so `ValueError`)."""
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise ValueError(f"unsupported kind {kind!r} for {name!r}")


def compile_predicate(expr: Expr, kinds: Kinds) -> Predicate:
    """A `$filter` AST as a predicate over items; every property, kind and literal is checked up front."""
    if isinstance(expr, And | Or):
        operands = [compile_predicate(operand, kinds) for operand in filter_operands(expr)]
        combine = all if isinstance(expr, And) else any
        return lambda item: combine(operand(item) for operand in operands)
    if isinstance(expr, Not):
        operand = compile_predicate(expr.operand, kinds)
        return lambda item: not operand(item)
    kind = _kind(kinds, expr.property)
    if isinstance(expr, Comparison):
        return _comparison(expr, kind)
    if isinstance(expr, In):
        return _in(expr, kind)
    return _function(expr, kind)


def _kind(kinds: Kinds, name: str, option: str = "$filter") -> type:
    try:
        return kinds[name]
    except KeyError:
        raise ODataError(f"{option}: unknown property '{name}'") from None


def _comparison(expr: Comparison, kind: type) -> Predicate:
    name = expr.property
    if expr.value is None:
        wanted_null = expr.op == "eq"
        return lambda item: (item.get(name) is None) == wanted_null
    if kind is bool and expr.op not in ("eq", "ne"):
        raise ODataError(f"$filter: '{expr.op}' cannot compare boolean property '{name}'")
    compare, bound, on_null = _OPS[expr.op], _literal_key(kind, expr.value, name), expr.op == "ne"

    def check(item: Item) -> bool:
        value = _item_key(item, name, kind)
        return on_null if value is None else compare(value, bound)

    return check


def _in(expr: In, kind: type) -> Predicate:
    name = expr.property
    bounds = [_literal_key(kind, value, name) for value in expr.values if value is not None]
    on_null = None in expr.values

    def check(item: Item) -> bool:
        value = _item_key(item, name, kind)
        return on_null if value is None else value in bounds

    return check


def _function(expr: Function, kind: type) -> Predicate:
    if kind is not str:
        raise ODataError(f"$filter: {expr.name}() needs a string property, not '{expr.property}'")
    name, test, part = expr.property, _FUNCTIONS[expr.name], _fold(expr.value)

    def check(item: Item) -> bool:
        value = _item_key(item, name, kind)
        return value is not None and test(value, part)

    return check


def _fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _item_key(item: Item, name: str, kind: type) -> Any:
    """The value compared and sorted on: case-folded strings, aware UTC datetimes."""
    return _comparable(kind, item.get(name))


def _comparable(kind: type, value: Any) -> Any:
    if value is None:
        return None
    if kind is str:
        return _fold(value)
    if kind is datetime:
        return _as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
    return value


def _literal_key(kind: type, value: Literal, name: str) -> Any:
    """A literal as a comparable value, after checking its kind (with the SQL engine's message)."""
    if kind in (int, float):
        fits = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if not fits:
        raise ODataError(f"$filter: property '{name}' holds {kind.__name__} values, not {value!r}")
    return _comparable(kind, value)


class _Sorter:
    """The `$orderby` keys plus the id tie-breaker, and the keyset `$skiptoken` built from them."""

    def __init__(self, options: QueryOptions, kinds: Kinds, id_key: str) -> None:
        self.keys = [
            (item.property, _kind(kinds, item.property, "$orderby"), item.descending) for item in options.orderby
        ]
        self.id_key = id_key
        self.fingerprint = query_fingerprint(options)

    def key(self, item: Item) -> tuple[Any, ...]:
        return (*(_item_key(item, name, kind) for name, kind, _ in self.keys), item[self.id_key])

    @property
    def sort_key(self) -> Callable[[tuple[tuple[Any, ...], Item]], Any]:
        return functools.cmp_to_key(lambda a, b: self.compare(a[0], b[0]))

    def compare(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
        for (_, _, descending), x, y in zip(self.keys, a, b, strict=False):
            if x == y:
                continue
            result = -1 if x is None or (y is not None and x < y) else 1
            return -result if descending else result
        return (a[-1] > b[-1]) - (a[-1] < b[-1])

    def encode(self, item: Item) -> str:
        values = [_encode_value(kind, item.get(name)) for name, kind, _ in self.keys]
        body = {"q": self.fingerprint, "k": values, "id": item[self.id_key]}
        return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode("ascii")

    def decode(self, token: str, id_kind: type | None) -> tuple[Any, ...]:
        """The sort key the token continues after; `ODataError` unless it is one this query issued."""
        try:
            body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, binascii.Error):
            raise ODataError("$skiptoken: malformed") from None
        if not isinstance(body, dict) or set(body) != {"q", "k", "id"}:
            raise ODataError("$skiptoken: malformed")
        if body["q"] != self.fingerprint or not isinstance(body["k"], list) or len(body["k"]) != len(self.keys):
            raise ODataError("$skiptoken: does not belong to this $filter and $orderby")
        if type(body["id"]) not in (str, int) or (id_kind is not None and type(body["id"]) is not id_kind):
            raise ODataError("$skiptoken: malformed")
        values = [_decode_value(kind, value) for (_, kind, _), value in zip(self.keys, body["k"], strict=True)]
        return (*values, body["id"])


def _encode_value(kind: type, value: Any) -> Any:
    if kind is datetime and value is not None:
        return _comparable(datetime, value).isoformat()
    return value


def _decode_value(kind: type, value: Any) -> Any:
    """A token's sort value as a comparable key, checked against the property's kind."""
    if value is None:
        return None
    if kind is datetime and isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except (ValueError, OverflowError):
            raise ODataError("$skiptoken: malformed") from None
    numeric = kind in (int, float) and isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or (kind in (str, bool) and type(value) is kind):
        return _comparable(kind, value)
    raise ODataError("$skiptoken: malformed")
