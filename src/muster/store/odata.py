"""OData query options compiled to SQLAlchemy Core, with keyset paging for `@odata.nextLink`.

A resource exposes `fields`: its Graph property names (camelCase) mapped to a column and the Python kind
of its values. The rules, identical on SQLite and PostgreSQL:

- Strings compare case-insensitively (`lower()` on both sides, as Intune's Graph does), and string sort
  keys are `lower(column)` too. SQLite's `lower()` folds ASCII letters only, so case folding of other
  letters is not promised; string order is the database collation's (code points on SQLite and under
  PostgreSQL's C collation).
- A comparison or function involving a NULL column value is false, except `ne`, which is true; `eq null`
  and `ne null` test for NULL. Every atom is therefore two-valued, so `not` is plain negation.
- Datetimes are compared in UTC: aware columns get aware UTC parameters, naive columns (by convention
  holding UTC) get naive ones.
- Sort order is the requested `$orderby` then `id_column` ascending as the final tie-breaker. NULLs are
  the smallest value: first when ascending, last when descending, on both databases.
- Paging is keyset, never OFFSET: a `$skiptoken` holds the last row's sort values and id, so the next page
  starts strictly after that row whatever was inserted or deleted meanwhile. It is base64url JSON bound to
  the `$filter` and `$orderby` it came from (not signed: forging one only moves the start of a page).
"""

from __future__ import annotations

import base64
import binascii
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import BigInteger, Boolean, Float, Select, String, and_, func, literal, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

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
    filter_operands,
    query_fingerprint,
)

_KINDS = (str, int, float, bool, datetime)
_ORDERING_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_SORT_LABEL = "_odata_sort_{}"


@dataclass(frozen=True)
class Field:
    """A filterable, sortable Graph property: its column and the kind of Python values it holds.

    `float` means a Float column (values come back as floats; a Decimal could not go into a skiptoken).
    """

    column: ColumnElement[Any]
    kind: type

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unsupported field kind {self.kind!r}")


Fields = Mapping[str, Field]
Row = TypeVar("Row", bound=Mapping[Any, Any])  # e.g. sqlalchemy's RowMapping


def _field(fields: Fields, name: str, option: str = "$filter") -> Field:
    try:
        return fields[name]
    except KeyError:
        raise ODataError(f"{option}: unknown property '{name}'") from None


def compile_filter(expr: Expr, fields: Fields) -> ColumnElement[bool]:
    """Translate a `$filter` AST into a WHERE clause over the fields' columns."""
    if isinstance(expr, And | Or):
        clauses = [compile_filter(operand, fields) for operand in filter_operands(expr)]
        return and_(*clauses) if isinstance(expr, And) else or_(*clauses)
    if isinstance(expr, Not):
        return not_(compile_filter(expr.operand, fields))
    field = _field(fields, expr.property)
    if isinstance(expr, Comparison):
        return _comparison(expr, field)
    if isinstance(expr, In):
        return _in(expr, field)
    return _function(expr, field)


def _comparison(expr: Comparison, field: Field) -> ColumnElement[bool]:
    if expr.value is None:
        return field.column.is_(None) if expr.op == "eq" else field.column.is_not(None)
    if field.kind is bool and expr.op not in ("eq", "ne"):
        raise ODataError(f"$filter: '{expr.op}' cannot compare boolean property '{expr.property}'")
    clause = _ORDERING_OPS[expr.op](_key(field), _value(field, expr.value, expr.property))
    return _when_null(field, clause, expr.op == "ne")


def _in(expr: In, field: Field) -> ColumnElement[bool]:
    values = [value for value in expr.values if value is not None]
    clause = _key(field).in_([_value(field, value, expr.property) for value in values])
    if None in expr.values:
        return or_(field.column.is_(None), clause)
    return _when_null(field, clause, False)


def _function(expr: Function, field: Field) -> ColumnElement[bool]:
    if field.kind is not str:
        raise ODataError(f"$filter: {expr.name}() needs a string property, not '{expr.property}'")
    escaped = expr.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = {"startswith": f"{escaped}%", "endswith": f"%{escaped}", "contains": f"%{escaped}%"}[expr.name]
    clause = _key(field).like(func.lower(literal(pattern, String())), escape="\\")
    return _when_null(field, clause, False)


def _when_null(field: Field, clause: ColumnElement[bool], result: bool) -> ColumnElement[bool]:
    """Give `clause` a definite value on NULL rows, so SQL's unknown never meets `not`."""
    if not getattr(field.column, "nullable", True):
        return clause
    if result:
        return or_(field.column.is_(None), clause)
    return and_(field.column.is_not(None), clause)


def _key(field: Field) -> ColumnElement[Any]:
    """The expression compared and sorted on: case-folded for strings."""
    return func.lower(field.column) if field.kind is str else field.column


def _value(field: Field, value: Literal, name: str) -> ColumnElement[Any]:
    """A literal as a typed bind parameter for `_key(field)`, after checking its kind."""
    kind = field.kind
    if kind is str and isinstance(value, str):
        return func.lower(literal(value, String()))
    if kind in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
        # typed by the literal, not the column: 2.5 against an INTEGER column must stay 2.5
        return literal(value, Float() if isinstance(value, float) else BigInteger())
    if kind is bool and isinstance(value, bool):
        return literal(value, Boolean())
    if kind is datetime and isinstance(value, datetime):
        return literal(_as_column_time(field, value), field.column.type)
    raise ODataError(f"$filter: property '{name}' holds {kind.__name__} values, not {value!r}")


def _as_column_time(field: Field, value: datetime) -> datetime:
    utc = _as_utc(value)
    return utc if getattr(field.column.type, "timezone", False) else utc.replace(tzinfo=None)


@dataclass(frozen=True)
class _SortKey:
    field: Field
    descending: bool

    def order(self) -> ColumnElement[Any]:
        key = _key(self.field)
        return key.desc().nulls_last() if self.descending else key.asc().nulls_first()

    def equals(self, value: Literal) -> ColumnElement[bool]:
        if value is None:
            return self.field.column.is_(None)
        return _key(self.field) == self._bound(value)

    def after(self, value: Literal) -> ColumnElement[bool] | None:
        """Rows strictly after `value` in this key's order; None when there can be none."""
        if value is None:
            return None if self.descending else self.field.column.is_not(None)
        if self.descending:
            return or_(_key(self.field) < self._bound(value), self.field.column.is_(None))
        # a NULL column makes this unknown, which the surrounding AND/OR treat as false
        return _key(self.field) > self._bound(value)

    def _bound(self, value: Literal) -> ColumnElement[Any]:
        return _value(self.field, value, "$skiptoken")


def _sort_keys(orderby: Sequence[OrderBy], fields: Fields) -> list[_SortKey]:
    return [_SortKey(_field(fields, item.property, "$orderby"), item.descending) for item in orderby]


def page_query(
    select_stmt: Select[Any], *, fields: Fields, options: QueryOptions, id_column: ColumnElement[Any]
) -> Select[Any]:
    """One page of `select_stmt`: filtered, ordered, started after the skiptoken, `top + 1` rows long.

    The extra row tells whether a next page exists (see `split_page`). The sort columns are added to the
    selection under private labels so the skiptoken can be built from whatever `$select` kept.
    """
    keys = _sort_keys(options.orderby, fields)
    stmt = select_stmt
    if options.filter is not None:
        stmt = stmt.where(compile_filter(options.filter, fields))
    if options.skiptoken is not None:
        values, last_id = _decode(options.skiptoken, options, keys)
        stmt = stmt.where(_seek(keys, values, id_column, _decode_id(last_id, id_column)))
    labels = [key.field.column.label(_SORT_LABEL.format(index)) for index, key in enumerate(keys)]
    order = [key.order() for key in keys] + [id_column.asc()]
    return stmt.add_columns(*labels).order_by(*order).limit(options.top + 1)


def _seek(
    keys: Sequence[_SortKey], values: Sequence[Literal], id_column: ColumnElement[Any], last_id: Any
) -> ColumnElement[bool]:
    """Rows after (values, last_id) in keyset order: equal on a prefix of the keys, then after on the next."""
    branches: list[ColumnElement[bool]] = []
    prefix: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        after = key.after(value)
        if after is not None:
            branches.append(and_(*prefix, after))
        prefix.append(key.equals(value))
    branches.append(and_(*prefix, id_column > literal(last_id, id_column.type)))
    return or_(*branches)


def count_query(select_stmt: Select[Any], fields: Fields, options: QueryOptions) -> Select[int]:
    """`@odata.count` for `$count=true`: the number of rows matching `$filter`, ignoring paging."""
    if options.filter is not None:
        select_stmt = select_stmt.where(compile_filter(options.filter, fields))
    return select(func.count()).select_from(select_stmt.subquery())


def split_page(
    rows: Sequence[Row], *, options: QueryOptions, fields: Fields, id_key: str
) -> tuple[Sequence[Row], str | None]:
    """The rows of this page and the `$skiptoken` of the next one (None on the last page)."""
    if len(rows) <= options.top:
        return rows, None
    page = rows[: options.top]
    return page, next_skiptoken(page[-1], options=options, fields=fields, id_key=id_key)


def next_skiptoken(rows_mapping_last: Mapping[Any, Any], *, options: QueryOptions, fields: Fields, id_key: str) -> str:
    """The `$skiptoken` that continues after this row, which came from `page_query` with these options."""
    row = rows_mapping_last
    keys = _sort_keys(options.orderby, fields)
    values = [_encode_value(key.field, row[_SORT_LABEL.format(index)]) for index, key in enumerate(keys)]
    body = {"q": query_fingerprint(options), "k": values, "id": row[id_key]}
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode("ascii")


def _as_utc(value: datetime) -> datetime:
    # naive values are UTC by convention (SQLite returns them naive even from aware columns)
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _encode_value(field: Field, value: Any) -> Any:
    return _as_utc(value).isoformat() if field.kind is datetime and value is not None else value


def _decode(token: str, options: QueryOptions, keys: Sequence[_SortKey]) -> tuple[list[Literal], Any]:
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise ODataError("$skiptoken: malformed") from None
    if not isinstance(body, dict) or set(body) != {"q", "k", "id"}:
        raise ODataError("$skiptoken: malformed")
    if body["q"] != query_fingerprint(options) or not isinstance(body["k"], list) or len(body["k"]) != len(keys):
        raise ODataError("$skiptoken: does not belong to this $filter and $orderby")
    return [_decode_value(key.field, value) for key, value in zip(keys, body["k"], strict=True)], body["id"]


def _decode_id(value: Any, id_column: ColumnElement[Any]) -> Any:
    """The id as the id column's Python type, so a forged one fails here rather than in the database."""
    python_type = id_column.type.python_type
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ODataError("$skiptoken: malformed")
    if isinstance(value, python_type):
        return value
    if python_type in (int, str):
        raise ODataError("$skiptoken: malformed")
    try:
        return python_type(value)  # e.g. uuid.UUID, which the token carries as text
    except (TypeError, ValueError):
        raise ODataError("$skiptoken: malformed") from None


def _decode_value(field: Field, value: Any) -> Literal:
    if value is None:
        return None
    if field.kind is datetime and isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except (ValueError, OverflowError):
            raise ODataError("$skiptoken: malformed") from None
    numeric = field.kind in (int, float) and isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or (field.kind in (str, bool) and type(value) is field.kind):
        return value
    raise ODataError("$skiptoken: malformed")
