"""Graph `roleDefinitions`, `roleAssignments` and `roleScopeTags` (Intune RBAC), with no privilege escalation:
an admin grants only permissions it holds, over scope tags within its own scope."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.errors import InvalidInput
from muster.domain.rbac import Permission, Principal, grant_refusal, parse_permissions
from muster.services.rbac_ports import RoleAssignmentRow, RoleDefinitionRow, ScopeTagRow
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, forbid, require

router = APIRouter(prefix=DEVICE_MANAGEMENT, tags=["roles"])

Reader = Annotated[Principal, Depends(require(Permission.ROLES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.ROLES_WRITE))]
Assigner = Annotated[Principal, Depends(require(Permission.ROLES_ASSIGN))]

_Id = Annotated[str, Field(min_length=1, max_length=64)]
_Name = Annotated[str, Field(min_length=1, max_length=256)]
_Text = Annotated[str, Field(max_length=4000)]
_Action = Annotated[str, Field(min_length=1, max_length=200)]
_BIND = re.compile(r"roleDefinitions(?:/|\(')([^/')]+)'?\)?$")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# -- role definitions ------------------------------------------------------------------------------------------


class ResourceAction(BaseModel):
    allowedResourceActions: list[_Action] = Field(default_factory=list, max_length=500)
    notAllowedResourceActions: list[_Action] = Field(default_factory=list, max_length=500)


class RolePermission(BaseModel):
    resourceActions: list[ResourceAction] = Field(default_factory=list, max_length=50)


class RoleDefinitionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    displayName: _Name | None = None
    description: _Text | None = None
    rolePermissions: list[RolePermission] | None = Field(default=None, max_length=50)

    def permissions(self) -> list[str] | None:
        if self.rolePermissions is None:
            return None
        actions = [a for p in self.rolePermissions for a in p.resourceActions]
        if any(a.notAllowedResourceActions for a in actions):
            raise InvalidInput("rolePermissions: notAllowedResourceActions is not supported; list allowed actions only")
        return list(dict.fromkeys(name for a in actions for name in a.allowedResourceActions))


def graph_definition(row: RoleDefinitionRow) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition",
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "isBuiltIn": row.is_built_in,
        "isBuiltInRoleDefinition": row.is_built_in,
        "roleScopeTagIds": ["0"],
        "rolePermissions": [
            {"resourceActions": [{"allowedResourceActions": list(row.permissions), "notAllowedResourceActions": []}]}
        ],
    }


def _must_hold(admin: Principal, permissions: tuple[str, ...] | list[str]) -> None:
    try:
        wanted = parse_permissions(permissions)
    except ValueError as error:
        raise InvalidInput(f"rolePermissions: {error}") from None
    missing = sorted(p.value for p in wanted if not admin.can(p))
    forbid(f"you do not hold {', '.join(missing)} yourself, so you cannot grant it" if missing else None)


_DEFINITIONS = GraphCollection(
    "deviceManagement/roleDefinitions",
    {"id": str, "displayName": str, "description": str, "isBuiltIn": bool, "isBuiltInRoleDefinition": bool},
    ("roleScopeTagIds", "rolePermissions"),
)


@router.get("/roleDefinitions", dependencies=[ODATA_QUERY_OPTIONS])
async def list_definitions(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).roles.definitions(admin.org_id)
    return _DEFINITIONS.response(request, [graph_definition(r) for r in rows])


@router.get("/roleDefinitions/{role_id}")
async def get_definition(request: Request, role_id: str, admin: Reader) -> dict[str, Any]:
    return graph_definition(await container(request).roles.definition(admin.org_id, role_id))


@router.post("/roleDefinitions", status_code=201)
async def create_definition(request: Request, body: RoleDefinitionBody, admin: Writer) -> dict[str, Any]:
    permissions = body.permissions()
    if body.displayName is None or permissions is None:
        raise InvalidInput("displayName and rolePermissions are required")
    _must_hold(admin, permissions)
    row = await container(request).roles.create_definition(
        org_id=admin.org_id,
        display_name=body.displayName,
        description=body.description,
        permissions=permissions,
        actor=admin.display_name,
    )
    return graph_definition(row)


@router.patch("/roleDefinitions/{role_id}")
async def update_definition(request: Request, role_id: str, body: RoleDefinitionBody, admin: Writer) -> dict[str, Any]:
    roles = container(request).roles
    current = await roles.definition(admin.org_id, role_id)
    permissions = body.permissions()
    _must_hold(admin, [*current.permissions, *(permissions or [])])
    row = await roles.update_definition(
        org_id=admin.org_id,
        role_id=role_id,
        display_name=body.displayName,
        description=body.description,
        permissions=permissions,
        actor=admin.display_name,
    )
    return graph_definition(row)


@router.delete("/roleDefinitions/{role_id}", status_code=204)
async def delete_definition(request: Request, role_id: str, admin: Writer) -> Response:
    roles = container(request).roles
    _must_hold(admin, (await roles.definition(admin.org_id, role_id)).permissions)
    await roles.delete_definition(org_id=admin.org_id, role_id=role_id, actor=admin.display_name)
    return Response(status_code=204)


# -- role assignments ------------------------------------------------------------------------------------------


class RoleAssignmentBody(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    displayName: _Name | None = None
    description: _Text | None = None
    members: list[_Id] | None = Field(default=None, max_length=1000)
    scopeMembers: list[_Id] | None = Field(default=None, max_length=1000)
    resourceScopes: list[_Id] | None = Field(default=None, max_length=1000)
    roleScopeTagIds: list[_Id] | None = Field(default=None, max_length=100)
    allScopeTags: bool | None = Field(default=None, description="Muster: the assignment covers every scope tag.")
    roleDefinitionId: _Id | None = None
    roleDefinitionBind: Annotated[str, Field(max_length=2000)] | None = Field(
        default=None, alias="roleDefinition@odata.bind"
    )

    def role_definition_id(self) -> str | None:
        if self.roleDefinitionBind is None:
            return self.roleDefinitionId
        match = _BIND.search(self.roleDefinitionBind)
        if match is None:
            raise InvalidInput("roleDefinition@odata.bind must end with roleDefinitions/{id}")
        return match.group(1)


def graph_assignment(row: RoleAssignmentRow) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleAssignment",
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "members": list(row.members),
        "scopeMembers": list(row.scope_group_ids),
        "resourceScopes": list(row.scope_group_ids),
        "roleScopeTagIds": list(row.scope_tag_ids or ()),
        "allScopeTags": row.scope_tag_ids is None,
        "roleDefinitionId": row.role_definition_id,
    }


async def _grantable(request: Request, admin: Principal, row: RoleAssignmentRow) -> None:
    role = await container(request).roles.definition(admin.org_id, row.role_definition_id)
    forbid(grant_refusal(admin, parse_permissions(role.permissions), row.scope_tag_ids))


def _apply(body: RoleAssignmentBody, row: RoleAssignmentRow) -> RoleAssignmentRow:
    groups = body.scopeMembers if body.scopeMembers is not None else body.resourceScopes
    tags: tuple[str, ...] | None = row.scope_tag_ids
    if body.allScopeTags:
        tags = None
    elif body.roleScopeTagIds is not None or body.allScopeTags is False:
        tags = tuple(body.roleScopeTagIds or ())
    return replace(
        row,
        role_definition_id=body.role_definition_id() or row.role_definition_id,
        display_name=body.displayName or row.display_name,
        description=row.description if body.description is None else body.description,
        members=row.members if body.members is None else tuple(dict.fromkeys(body.members)),
        scope_group_ids=row.scope_group_ids if groups is None else tuple(dict.fromkeys(groups)),
        scope_tag_ids=tags,
    )


_ASSIGNMENTS = GraphCollection(
    "deviceManagement/roleAssignments",
    {"id": str, "displayName": str, "description": str, "roleDefinitionId": str, "allScopeTags": bool},
    ("members", "scopeMembers", "resourceScopes", "roleScopeTagIds"),
)


@router.get("/roleAssignments", dependencies=[ODATA_QUERY_OPTIONS])
async def list_assignments(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).roles.assignments(admin.org_id)
    return _ASSIGNMENTS.response(request, [graph_assignment(r) for r in rows])


@router.get("/roleAssignments/{assignment_id}")
async def get_assignment(request: Request, assignment_id: str, admin: Reader) -> dict[str, Any]:
    return graph_assignment(await container(request).roles.assignment(admin.org_id, assignment_id))


@router.post("/roleAssignments", status_code=201)
async def create_assignment(request: Request, body: RoleAssignmentBody, admin: Assigner) -> dict[str, Any]:
    role_id = body.role_definition_id()
    if body.displayName is None or role_id is None:
        raise InvalidInput("displayName and roleDefinition@odata.bind (or roleDefinitionId) are required")
    c = container(request)
    now = c.clock.now()
    blank = RoleAssignmentRow("", admin.org_id, role_id, body.displayName, None, (), (), (), now, now)
    row = replace(_apply(body, blank), id=str(uuid.uuid4()))
    await _grantable(request, admin, row)
    return graph_assignment(await c.roles.save_assignment(row, new=True, actor=admin.display_name))


@router.patch("/roleAssignments/{assignment_id}")
async def update_assignment(
    request: Request, assignment_id: str, body: RoleAssignmentBody, admin: Assigner
) -> dict[str, Any]:
    roles = container(request).roles
    current = await roles.assignment(admin.org_id, assignment_id)
    await _grantable(request, admin, current)
    row = _apply(body, current)
    await _grantable(request, admin, row)
    return graph_assignment(await roles.save_assignment(row, new=False, actor=admin.display_name))


@router.delete("/roleAssignments/{assignment_id}", status_code=204)
async def delete_assignment(request: Request, assignment_id: str, admin: Assigner) -> Response:
    roles = container(request).roles
    await _grantable(request, admin, await roles.assignment(admin.org_id, assignment_id))
    await roles.delete_assignment(org_id=admin.org_id, assignment_id=assignment_id, actor=admin.display_name)
    return Response(status_code=204)


# -- scope tags ------------------------------------------------------------------------------------------------


class ScopeTagBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    displayName: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    description: _Text | None = None


def graph_tag(row: ScopeTagRow) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.roleScopeTag",
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "isBuiltIn": row.is_built_in,
    }


def _tag_in_scope(admin: Principal, permission: Permission, tag_id: str) -> None:
    scope = admin.scope(permission)
    forbid(None if scope.covers([tag_id]) else f"the scope tag is outside your scope for {permission.value}")


_TAGS = GraphCollection(
    "deviceManagement/roleScopeTags", {"id": str, "displayName": str, "description": str, "isBuiltIn": bool}
)


@router.get("/roleScopeTags", dependencies=[ODATA_QUERY_OPTIONS])
async def list_tags(request: Request, admin: Reader) -> dict[str, Any]:
    scope = admin.scope(Permission.ROLES_READ)
    rows = await container(request).roles.tags(admin.org_id)
    return _TAGS.response(request, [graph_tag(r) for r in rows if scope.covers([r.id])])


@router.get("/roleScopeTags/{tag_id}")
async def get_tag(request: Request, tag_id: str, admin: Reader) -> dict[str, Any]:
    _tag_in_scope(admin, Permission.ROLES_READ, tag_id)
    return graph_tag(await container(request).roles.tag(admin.org_id, tag_id))


@router.post("/roleScopeTags", status_code=201)
async def create_tag(request: Request, body: ScopeTagBody, admin: Writer) -> dict[str, Any]:
    forbid(
        None
        if admin.scope(Permission.ROLES_WRITE).everything
        else "only an admin over every scope tag may create scope tags"
    )
    if body.displayName is None:
        raise InvalidInput("displayName is required")
    row = await container(request).roles.create_tag(
        org_id=admin.org_id, display_name=body.displayName, description=body.description, actor=admin.display_name
    )
    return graph_tag(row)


@router.patch("/roleScopeTags/{tag_id}")
async def update_tag(request: Request, tag_id: str, body: ScopeTagBody, admin: Writer) -> dict[str, Any]:
    _tag_in_scope(admin, Permission.ROLES_WRITE, tag_id)
    row = await container(request).roles.update_tag(
        org_id=admin.org_id,
        tag_id=tag_id,
        display_name=body.displayName,
        description=body.description,
        actor=admin.display_name,
    )
    return graph_tag(row)


@router.delete("/roleScopeTags/{tag_id}", status_code=204)
async def delete_tag(request: Request, tag_id: str, admin: Writer) -> Response:
    _tag_in_scope(admin, Permission.ROLES_WRITE, tag_id)
    await container(request).roles.delete_tag(org_id=admin.org_id, tag_id=tag_id, actor=admin.display_name)
    return Response(status_code=204)
