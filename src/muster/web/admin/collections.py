"""Graph collection responses for small, bounded lists, with OData query options evaluated in memory.

Large collections page in SQL (muster.store.odata); the small ones (ADE tokens and profiles, roles, scope
tags, webhooks...) are read whole, already narrowed to the admin's scope, and shaped here with the same
semantics (muster.protocols.odata_eval): `$filter`, `$orderby`, `$select`, `$top`, `$count`, `$skiptoken`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant

from muster.protocols.odata import ODataError, next_link, parse_orderby, parse_query_options
from muster.protocols.odata_eval import check_kinds, evaluate


@dataclass(frozen=True)
class GraphCollection:
    """A collection's `@odata.context` name and the Graph properties its clients may use.

    `filterable` maps the properties `$filter` and `$orderby` accept to the kind of their values (str, int,
    float, bool, datetime); `$select` also accepts `selectable_only` (lists and complex values).
    `default_orderby` applies when the request has no `$orderby` (else the order is by id).
    """

    context: str  # e.g. "deviceManagement/roleDefinitions"; "{name}" is replaced by that path parameter
    filterable: Mapping[str, type]
    selectable_only: tuple[str, ...] = ()
    default_orderby: str = ""

    def __post_init__(self) -> None:
        check_kinds(self.filterable)
        keys = parse_orderby(self.default_orderby) if self.default_orderby else ()
        if any(key.property not in self.filterable for key in keys):
            raise ValueError(f"default_orderby {self.default_orderby!r} names a property that is not filterable")

    def response(self, request: Request, items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """The Graph collection body for this request: `@odata.context`, `@odata.count`, `value`, nextLink."""
        params = dict(request.query_params)
        options = parse_query_options(params)
        if not options.orderby and self.default_orderby:
            options = replace(options, orderby=parse_orderby(self.default_orderby))
        selectable = {*self.filterable, *self.selectable_only}
        unknown = [name for name in options.select if name not in selectable]
        if unknown:
            raise ODataError(f"$select: unknown property '{unknown[0]}'")
        page = evaluate(list(items), options, self.filterable)
        context = self.context.format_map({name: quote(value, safe="") for name, value in request.path_params.items()})
        body: dict[str, Any] = {"@odata.context": f"{request.base_url}graph/beta/$metadata#{context}"}
        if page.count is not None:
            body["@odata.count"] = page.count
        body["value"] = [_selected(item, options.select) for item in page.items]
        if page.skiptoken is not None:
            body["@odata.nextLink"] = next_link(str(request.url.replace(query="")), params, page.skiptoken)
        return body


def _selected(item: Mapping[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    """The selected properties; annotations such as `@odata.type` stay, as Graph keeps them."""
    return {name: value for name, value in item.items() if not select or name in select or name.startswith("@")}


def _declare_query_options(
    request: Request,
    filter_: Annotated[str | None, Query(alias="$filter", description="e.g. startswith(displayName,'Sales')")] = None,
    orderby: Annotated[str | None, Query(alias="$orderby", description="e.g. displayName desc,id")] = None,
    select: Annotated[str | None, Query(alias="$select", description="e.g. id,displayName")] = None,
    top: Annotated[str | None, Query(alias="$top", description="page size, 1 to 1000 (default 100)")] = None,
    skiptoken: Annotated[str | None, Query(alias="$skiptoken", description="from @odata.nextLink")] = None,
    count: Annotated[str | None, Query(alias="$count", description="true adds @odata.count")] = None,
) -> None:
    """Publishes the OData options in the OpenAPI (`GraphCollection.response` and the SQL pages parse them, with
    Graph's errors), and refuses query parameters the route does not declare: a misspelt option (`filter=`
    without its `$`) must not silently return the whole collection."""
    route = request.scope.get("route")
    declared = _query_names(route.dependant) if route else set()
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise ODataError(f"unknown query option {unknown[0]!r}: this collection takes {', '.join(sorted(declared))}")


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route declares, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


ODATA_QUERY_OPTIONS = Depends(_declare_query_options)
