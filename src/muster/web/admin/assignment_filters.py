"""Graph `deviceManagement/assignmentFilters` (`deviceAndAppManagementAssignmentFilter`), with its functions.

Beside CRUD: `validateFilter` (Graph's action, with Muster's `errorMessage`, `line`, `column`),
`getPlatformSupportedProperties(platform='iOS')` (Graph's function; `?usage=enrollment` is Muster's, for the
smaller set enrollment restrictions accept) and Muster's `evaluate` action, which previews a filter on a device.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from muster.domain.assignment_filters import FilterUsage, parse_filter, supported_properties
from muster.domain.membership_rules import MAX_RULE_LENGTH, RuleSyntaxError
from muster.domain.rbac import Permission, Principal
from muster.services.assignment_filters import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    AssignmentFilterRow,
    FilterChange,
    platform_of,
)
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, grantable_tags, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/assignmentFilters", tags=["assignmentFilters"])

Reader = Annotated[Principal, Depends(require(Permission.ASSIGNMENT_FILTERS_READ))]
Creator = Annotated[Principal, Depends(require(Permission.ASSIGNMENT_FILTERS_CREATE))]
Updater = Annotated[Principal, Depends(require(Permission.ASSIGNMENT_FILTERS_UPDATE))]
Deleter = Annotated[Principal, Depends(require(Permission.ASSIGNMENT_FILTERS_DELETE))]

ODATA_TYPE = "#microsoft.graph.deviceAndAppManagementAssignmentFilter"
TagId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Rule = Annotated[str, StringConstraints(max_length=MAX_RULE_LENGTH)]
Platform = Annotated[str, StringConstraints(max_length=40)]


class FilterBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    odata_type: Literal["#microsoft.graph.deviceAndAppManagementAssignmentFilter"] | None = Field(
        default=None, alias="@odata.type"
    )
    displayName: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    platform: Platform | None = None
    rule: Rule | None = None
    roleScopeTags: list[TagId] | None = Field(default=None, max_length=100)
    assignmentFilterManagementType: Literal["devices"] | None = None  # Muster filters devices, not apps

    def change(self, tags: tuple[str, ...] | None) -> FilterChange:
        return FilterChange(self.displayName, self.description, self.platform, self.rule, tags)


class FilterToValidate(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients may send the whole filter; only these two matter

    platform: Platform
    rule: Rule


class ValidateBody(BaseModel):
    deviceAndAppManagementAssignmentFilter: FilterToValidate


class EvaluateBody(BaseModel):
    device: dict[
        Annotated[str, StringConstraints(max_length=64)], Annotated[str, StringConstraints(max_length=1024)] | None
    ] = Field(max_length=50, description='Device properties, e.g. {"osVersion": "17.1", "model": "iPad Pro"}.')


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def graph_filter(row: AssignmentFilterRow) -> dict[str, Any]:
    return {
        "@odata.type": ODATA_TYPE,
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "platform": row.platform.value,
        "rule": row.rule,
        "roleScopeTags": list(row.scope_tag_ids),
        "assignmentFilterManagementType": "devices",
        "createdDateTime": _time(row.created_at),
        "lastModifiedDateTime": _time(row.updated_at),
    }


_FILTERS = GraphCollection(
    "deviceManagement/assignmentFilters",
    dict.fromkeys(("id", "displayName", "description", "platform", "rule", "assignmentFilterManagementType"), str)
    | dict.fromkeys(("createdDateTime", "lastModifiedDateTime"), datetime),
    ("roleScopeTags",),
)


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_assignment_filters(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).assignment_filters.all(
        admin.org_id, admin.scope(Permission.ASSIGNMENT_FILTERS_READ)
    )
    return _FILTERS.response(request, [graph_filter(row) for row in rows])


@router.post("", status_code=201)
async def create_assignment_filter(request: Request, body: FilterBody, admin: Creator) -> dict[str, Any]:
    tags = await grantable_tags(request, admin, Permission.ASSIGNMENT_FILTERS_CREATE, body.roleScopeTags)
    row = await container(request).assignment_filters.create(
        org_id=admin.org_id, actor=admin.display_name, change=body.change(tags)
    )
    return graph_filter(row)


@router.post("/validateFilter")
async def validate_assignment_filter(
    body: ValidateBody, admin: Creator, usage: FilterUsage = FilterUsage.MANAGED_DEVICE
) -> dict[str, Any]:
    """Whether the rule is valid for the platform (and use); if not, why and where (Muster's additions).

    An authoring tool, so it needs the Create permission (as every POST needs more than a read).
    """
    wanted = body.deviceAndAppManagementAssignmentFilter
    result: dict[str, Any] = {"@odata.type": "#microsoft.graph.assignmentFilterValidationResult"}
    try:
        parse_filter(wanted.rule, platform=platform_of(wanted.platform), usage=usage)
    except RuleSyntaxError as error:
        return result | {
            "isValidRule": False,
            "errorMessage": error.message,
            "line": error.line,
            "column": error.column,
        }
    return result | {"isValidRule": True, "errorMessage": None, "line": None, "column": None}


@router.get("/getPlatformSupportedProperties(platform='{platform}')")
async def platform_supported_properties(
    platform: str, admin: Reader, usage: FilterUsage = FilterUsage.MANAGED_DEVICE
) -> dict[str, Any]:
    """The device properties filter rules of `platform` can read, with their operators and values."""
    return {"value": [prop.to_graph() for prop in supported_properties(platform_of(platform), usage)]}


@router.get("/{filter_id}")
async def get_assignment_filter(request: Request, filter_id: str, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.ASSIGNMENT_FILTERS_READ)
    return graph_filter(await container(request).assignment_filters.get(admin.org_id, filter_id, scope))


@router.patch("/{filter_id}")
async def update_assignment_filter(
    request: Request, filter_id: str, body: FilterBody, admin: Updater
) -> dict[str, Any]:
    permission = Permission.ASSIGNMENT_FILTERS_UPDATE
    filters = container(request).assignment_filters
    await filters.get(admin.org_id, filter_id, admin.scope(permission))  # 404 before judging the tags asked for
    wanted = body.roleScopeTags
    tags = None if wanted is None else await grantable_tags(request, admin, permission, wanted)
    row = await filters.update(
        org_id=admin.org_id,
        filter_id=filter_id,
        scope=admin.scope(permission),
        actor=admin.display_name,
        change=body.change(tags),
    )
    return graph_filter(row)


@router.delete("/{filter_id}", status_code=204)
async def delete_assignment_filter(request: Request, filter_id: str, admin: Deleter) -> Response:
    await container(request).assignment_filters.delete(
        org_id=admin.org_id,
        filter_id=filter_id,
        scope=admin.scope(Permission.ASSIGNMENT_FILTERS_DELETE),
        actor=admin.display_name,
    )
    return Response(status_code=204)


@router.post("/{filter_id}/evaluate")
async def evaluate_assignment_filter(
    request: Request, filter_id: str, body: EvaluateBody, admin: Updater
) -> dict[str, Any]:
    """Muster's preview: whether a device with these properties (`osVersion`, `model`, ...) is in the filter.

    Part of editing a filter, so it needs the Update permission (as every POST needs more than a read).
    """
    matches = await container(request).assignment_filters.evaluate(
        org_id=admin.org_id,
        filter_id=filter_id,
        scope=admin.scope(Permission.ASSIGNMENT_FILTERS_UPDATE),
        device=body.device,
    )
    return {"matches": matches}
