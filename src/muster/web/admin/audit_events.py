"""Graph `auditEvents`: the audit log, with OData options, and the category / activity type functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import Permission, Principal
from muster.protocols.odata import OrderBy, next_link, parse_query_options
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require
from muster.web.audit import READ_METHODS, api_routes, category_of, is_admin_route, operation_name

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/auditEvents", tags=["auditEvents"])

NEWEST_FIRST = (OrderBy("activityDateTime", descending=True),)
SECURITY_ACTIVITY_TYPES = ("authenticationFailed", "authorizationDenied")
MAX_CATEGORY_LENGTH = 80


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def graph_event(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row in Graph's `auditEvent` shape."""
    person = row["actor_type"] == "ItPro"
    application = row["actor_type"] == "Application"
    return {
        "@odata.type": "#microsoft.graph.auditEvent",
        "id": row["id"],
        "displayName": row["activity"],
        "componentName": row["category"],
        "activity": row["activity"],
        "activityDateTime": _time(row["occurred_at"]),
        "activityType": row["activity_type"],
        "activityOperationType": row["operation_type"],
        "activityResult": row["result"],
        "correlationId": row["correlation_id"],
        "category": row["category"],
        "actor": {
            "@odata.type": "#microsoft.graph.auditActor",
            "auditActorType": row["actor_type"],
            "userPrincipalName": row["actor_name"] if person else None,
            "userId": row["actor_id"] if person else None,
            "applicationId": row["actor_id"] if application else None,
            "applicationDisplayName": row["actor_name"] if application else None,
            "ipAddress": row["ip_address"],
        },
        "resources": [{"@odata.type": "#microsoft.graph.auditResource", **resource} for resource in row["resources"]],
        "httpMethod": row["http_method"],
        "path": row["path"],
        "statusCode": row["status_code"],
    }


EVENT_PROPERTIES = frozenset(
    {
        "id",
        "displayName",
        "componentName",
        "activity",
        "activityDateTime",
        "activityType",
        "activityOperationType",
        "activityResult",
        "correlationId",
        "category",
        "actor",
        "resources",
        "httpMethod",
        "path",
        "statusCode",
    }
)


def _selected(event: dict[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    if not select:
        return event
    return {name: value for name, value in event.items() if name in select or name in ("@odata.type", "id")}


def _route_activity_types(request: Request) -> dict[str, set[str]]:
    """Every (category -> activity types) an admin change can produce, read from the app's route table."""
    found: dict[str, set[str]] = {"security": set(SECURITY_ACTIVITY_TYPES)}
    for route in api_routes(request.app.routes):
        if is_admin_route(route) and not (route.methods or set()) <= READ_METHODS:
            category = category_of(route)
            found.setdefault(category, set()).add(f"{operation_name(route)} {category}")
    return found


@router.get("")
async def list_audit_events(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.AUDIT_DATA_READ))]
) -> dict[str, Any]:
    options = parse_query_options(dict(request.query_params))
    unknown = [name for name in options.select if name not in EVENT_PROPERTIES]
    if unknown:
        raise InvalidInput(f"$select: unknown property {unknown[0]!r}")
    if not options.orderby:
        options = replace(options, orderby=NEWEST_FIRST)
    rows, token, total = await container(request).audit_log.page(admin.org_id, options)
    page: dict[str, Any] = {
        "@odata.context": f"{request.base_url}{DEVICE_MANAGEMENT.lstrip('/')}/$metadata#auditEvents"
    }
    if total is not None:
        page["@odata.count"] = total
    page["value"] = [_selected(graph_event(row), options.select) for row in rows]
    if token:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), token)
    return page


@router.get("/getAuditCategories()")
@router.get("/getAuditCategories")
async def get_audit_categories(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.AUDIT_DATA_READ))]
) -> dict[str, list[str]]:
    stored = await container(request).audit_log.categories(admin.org_id)
    return {"value": sorted(set(stored) | set(_route_activity_types(request)))}


@router.get("/getAuditActivityTypes(category='{category}')")
async def get_audit_activity_types(
    request: Request, category: str, admin: Annotated[Principal, Depends(require(Permission.AUDIT_DATA_READ))]
) -> dict[str, list[str]]:
    if not category or len(category) > MAX_CATEGORY_LENGTH:
        raise InvalidInput(f"category must be 1 to {MAX_CATEGORY_LENGTH} characters")
    stored = await container(request).audit_log.activity_types(admin.org_id, category)
    known = _route_activity_types(request).get(category) or set()
    return {"value": sorted(set(stored) | known)}


@router.get("/{event_id}")
async def get_audit_event(
    request: Request, event_id: str, admin: Annotated[Principal, Depends(require(Permission.AUDIT_DATA_READ))]
) -> dict[str, Any]:
    row = await container(request).audit_log.get(admin.org_id, event_id)
    if row is None:
        raise NotFound(f"audit event {event_id} not found")
    return graph_event(row)
