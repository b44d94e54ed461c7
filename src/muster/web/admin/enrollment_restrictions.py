"""Graph `deviceManagement/deviceEnrollmentConfigurations`: enrollment platform and device limit restrictions.

CRUD, `assign`, `assignments` and `setPriority`. An admin sees and changes only the policies within its scope for
the route's permission; others answer 404, as if absent (R-198). Priorities are those of the whole list, so a
scoped admin sees the relative priority of its policies (gaps show where others sit).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel

from muster.domain.enrollment_restrictions import DEFAULT_RESTRICTION_PROPERTIES, ConfigurationType
from muster.domain.rbac import Permission, Principal
from muster.services.enrollment_restrictions import ODATA_TYPES, RestrictionRow
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, grantable_tags, requested_tags, require

router = APIRouter(
    prefix=f"{DEVICE_MANAGEMENT}/deviceEnrollmentConfigurations", tags=["deviceEnrollmentConfigurations"]
)

Reader = Annotated[Principal, Depends(require(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_READ))]
Creator = Annotated[Principal, Depends(require(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_CREATE))]
Updater = Annotated[Principal, Depends(require(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_UPDATE))]
Deleter = Annotated[Principal, Depends(require(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_DELETE))]
Assigner = Annotated[Principal, Depends(require(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_ASSIGN))]
ASSIGNMENT_TYPE = "#microsoft.graph.enrollmentConfigurationAssignment"


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def graph_restriction(row: RestrictionRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": ODATA_TYPES[row.configuration_type],
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "priority": row.priority,
        "version": row.version,
        "createdDateTime": _time(row.created_at),
        "lastModifiedDateTime": _time(row.updated_at),
        "roleScopeTagIds": list(row.scope_tag_ids),
        "deviceEnrollmentConfigurationType": row.configuration_type.value,
    }
    if row.configuration_type is ConfigurationType.SINGLE_PLATFORM:
        assert row.platform is not None
        body["platformType"] = row.platform.value
        body["platformRestriction"] = row.settings
    else:
        body.update(row.settings)
    return body


def _assignment(row: RestrictionRow, index: int) -> dict[str, Any]:
    target = row.targets[index]
    return {"@odata.type": ASSIGNMENT_TYPE, "id": f"{row.id}_{index}", "target": target.to_graph()}


_RESTRICTIONS = GraphCollection(
    "deviceManagement/deviceEnrollmentConfigurations",
    dict.fromkeys(("id", "displayName", "description", "deviceEnrollmentConfigurationType", "platformType"), str)
    | dict.fromkeys(("priority", "version", "limit"), int)
    | dict.fromkeys(("createdDateTime", "lastModifiedDateTime"), datetime),
    ("roleScopeTagIds", "platformRestriction", *DEFAULT_RESTRICTION_PROPERTIES.values()),
    default_orderby="deviceEnrollmentConfigurationType,platformType,priority",
)
_ASSIGNMENTS = GraphCollection(
    "deviceManagement/deviceEnrollmentConfigurations('{restriction_id}')/assignments", {"id": str}, ("target",)
)


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_restrictions(request: Request, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_READ)
    rows = await container(request).enrollment_restrictions.all(admin.org_id, scope)
    return _RESTRICTIONS.response(request, [graph_restriction(row) for row in rows])


@router.post("", status_code=201)
async def create_restriction(
    request: Request, admin: Creator, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    permission = Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_CREATE
    tags = await grantable_tags(request, admin, permission, requested_tags(body))
    row = await container(request).enrollment_restrictions.create(
        org_id=admin.org_id, actor=admin.display_name, body=body, tag_ids=tags
    )
    return graph_restriction(row)


@router.get("/{restriction_id}")
async def get_restriction(request: Request, restriction_id: str, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_READ)
    return graph_restriction(await container(request).enrollment_restrictions.get(admin.org_id, restriction_id, scope))


@router.patch("/{restriction_id}")
async def update_restriction(
    request: Request, restriction_id: str, admin: Updater, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    permission = Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_UPDATE
    restrictions = container(request).enrollment_restrictions
    await restrictions.get(admin.org_id, restriction_id, admin.scope(permission))  # 404 before any tag check
    wanted = requested_tags(body)
    tags = None if wanted is None else await grantable_tags(request, admin, permission, wanted)
    row = await restrictions.update(
        admin.org_id, restriction_id, admin.scope(permission), actor=admin.display_name, body=body, tag_ids=tags
    )
    return graph_restriction(row)


@router.delete("/{restriction_id}", status_code=204)
async def delete_restriction(request: Request, restriction_id: str, admin: Deleter) -> Response:
    scope = admin.scope(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_DELETE)
    await container(request).enrollment_restrictions.delete(
        admin.org_id, restriction_id, scope, actor=admin.display_name
    )
    return Response(status_code=204)


class PriorityBody(BaseModel):
    priority: int


@router.post("/{restriction_id}/setPriority", status_code=204)
async def set_priority(request: Request, restriction_id: str, body: PriorityBody, admin: Updater) -> Response:
    """Move the policy to `priority` (1 is the highest) in its list: the limit restrictions, or the restrictions
    of its platform. The others keep their relative order, those outside the admin's scope included."""
    scope = admin.scope(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_UPDATE)
    await container(request).enrollment_restrictions.set_priority(
        admin.org_id, restriction_id, scope, actor=admin.display_name, priority=body.priority
    )
    return Response(status_code=204)


class AssignBody(BaseModel):
    enrollmentConfigurationAssignments: list[dict[str, Any]]


@router.post("/{restriction_id}/assign", status_code=204)
async def assign_restriction(request: Request, restriction_id: str, body: AssignBody, admin: Assigner) -> Response:
    """Replace the assignments: groups, excluded groups or all users, with an assignment filter on iOS, macOS
    and Windows restrictions only (R-200). Unassigned, a restriction has no effect (R-197)."""
    scope = admin.scope(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_ASSIGN)
    await container(request).enrollment_restrictions.assign(
        admin.org_id,
        restriction_id,
        scope,
        actor=admin.display_name,
        assignments=body.enrollmentConfigurationAssignments,
    )
    return Response(status_code=204)


@router.get("/{restriction_id}/assignments", dependencies=[ODATA_QUERY_OPTIONS])
async def list_assignments(request: Request, restriction_id: str, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.DEVICE_ENROLLMENT_CONFIGURATIONS_READ)
    row = await container(request).enrollment_restrictions.get(admin.org_id, restriction_id, scope)
    return _ASSIGNMENTS.response(request, [_assignment(row, index) for index in range(len(row.targets))])
