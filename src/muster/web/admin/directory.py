"""Graph `users` and `groups`: CRUD with OData options, memberships (`members/$ref`), memberOf, transitive views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.errors import InvalidInput
from muster.domain.rbac import Permission, Principal
from muster.protocols.odata import next_link, parse_query_options
from muster.services.directory import ASSIGNED, DYNAMIC, Directory
from muster.services.directory_import import MAX_CSV_BYTES
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import GRAPH, container, require

router = APIRouter(prefix=GRAPH, tags=["directory"])

DYNAMIC_MEMBERSHIP = "DynamicMembership"
_USER_PROPERTIES = {
    "id": "id",
    "userPrincipalName": "user_principal_name",
    "displayName": "display_name",
    "givenName": "given_name",
    "surname": "surname",
    "mail": "mail",
    "accountEnabled": "account_enabled",
    "department": "department",
    "jobTitle": "job_title",
    "createdDateTime": "created_at",
}
_GROUP_PROPERTIES = {
    "id": "id",
    "displayName": "display_name",
    "description": "description",
    "mailNickname": "mail_nickname",
    "membershipRule": "membership_rule",
    "createdDateTime": "created_at",
}
_GROUP_COMPUTED = ("groupTypes", "membershipRuleProcessingState", "securityEnabled", "mailEnabled")


def _value(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def graph_user(row: dict[str, Any], select: tuple[str, ...] = ()) -> dict[str, Any]:
    return {name: _value(row.get(column)) for name, column in _USER_PROPERTIES.items() if not select or name in select}


def graph_group(row: dict[str, Any], select: tuple[str, ...] = ()) -> dict[str, Any]:
    group = {name: _value(row.get(col)) for name, col in _GROUP_PROPERTIES.items() if not select or name in select}
    dynamic = row["membership_type"] == DYNAMIC
    computed = {
        "groupTypes": [DYNAMIC_MEMBERSHIP] if dynamic else [],
        "membershipRuleProcessingState": "On" if dynamic else None,
        "securityEnabled": True,
        "mailEnabled": False,
    }
    return group | {name: value for name, value in computed.items() if not select or name in select}


def directory_object(row: dict[str, Any]) -> dict[str, Any]:
    """A member in Graph's `directoryObject` shape, typed by `@odata.type`."""
    kind = row["member_type"]
    if kind == "user":
        return {"@odata.type": "#microsoft.graph.user", **graph_user(row)}
    if kind == "group":
        return {"@odata.type": "#microsoft.graph.group", **graph_group(row)}
    return {
        "@odata.type": "#microsoft.graph.device",
        "id": row["id"],
        "displayName": row.get("device_name"),
        "operatingSystem": row.get("operating_system"),
        "operatingSystemVersion": row.get("os_version"),
    }


async def _page(request: Request, admin: Principal, kind: str, known: tuple[str, ...]) -> dict[str, Any]:
    options = parse_query_options(dict(request.query_params))
    unknown = [name for name in options.select if name not in known]
    if unknown:
        raise InvalidInput(f"$select: unknown property {unknown[0]!r}")
    rows, token, total = await _directory(request).page(kind, admin.org_id, options)
    page: dict[str, Any] = {"@odata.context": f"{request.base_url}graph/beta/$metadata#{kind}"}
    if total is not None:
        page["@odata.count"] = total
    shape = graph_user if kind == "users" else graph_group
    page["value"] = [shape(row, options.select) for row in rows]
    if token:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), token)
    return page


def _directory(request: Request) -> Directory:
    return container(request).directory


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    userPrincipalName: str | None = Field(default=None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    displayName: str | None = Field(default=None, max_length=256)
    givenName: str | None = Field(default=None, max_length=128)
    surname: str | None = Field(default=None, max_length=128)
    mail: str | None = Field(default=None, max_length=320)
    accountEnabled: bool | None = None
    department: str | None = Field(default=None, max_length=128)
    jobTitle: str | None = Field(default=None, max_length=128)


class UserCreate(UserUpdate):
    userPrincipalName: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    accountEnabled: bool = True


def user_columns(body: BaseModel) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    if fields.get("accountEnabled", True) is None or fields.get("userPrincipalName", "") is None:
        raise InvalidInput("userPrincipalName and accountEnabled cannot be null")
    return {_USER_PROPERTIES[name]: value for name, value in fields.items()}


@router.get("/users")
async def list_users(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.USERS_READ))]
) -> dict[str, Any]:
    return await _page(request, admin, "users", tuple(_USER_PROPERTIES))


@router.post("/users", status_code=201)
async def create_user(
    request: Request, body: UserCreate, admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))]
) -> dict[str, Any]:
    fields = {_USER_PROPERTIES[name]: value for name, value in body.model_dump().items()}
    row = await _directory(request).create_user(admin.org_id, fields, actor=admin.display_name, source="api")
    return graph_user(row)


@router.get("/users/{user_id}")
async def get_user(
    request: Request, user_id: str, admin: Annotated[Principal, Depends(require(Permission.USERS_READ))]
) -> dict[str, Any]:
    return graph_user(await _directory(request).user(admin.org_id, user_id))


@router.patch("/users/{user_id}", status_code=204)
async def update_user(
    request: Request,
    user_id: str,
    body: UserUpdate,
    admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))],
) -> Response:
    directory = _directory(request)
    user = await directory.user(admin.org_id, user_id)
    await directory.update_user(admin.org_id, user["id"], user_columns(body), actor=admin.display_name)
    return Response(status_code=204)


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(
    request: Request, user_id: str, admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))]
) -> Response:
    await _directory(request).delete_user(admin.org_id, user_id, actor=admin.display_name)
    return Response(status_code=204)


async def _member_of(request: Request, admin: Principal, user_id: str, *, transitive: bool) -> dict[str, Any]:
    directory = _directory(request)
    user = await directory.user(admin.org_id, user_id)
    groups = await directory.member_of(admin.org_id, user["id"], transitive=transitive)
    return _MEMBER_OF.response(request, [{"@odata.type": "#microsoft.graph.group", **graph_group(g)} for g in groups])


_GROUP_KINDS: dict[str, type] = dict.fromkeys((*_GROUP_PROPERTIES, "membershipRuleProcessingState"), str) | {
    "createdDateTime": datetime,
    "securityEnabled": bool,
    "mailEnabled": bool,
}
_USER_KINDS: dict[str, type] = dict.fromkeys(_USER_PROPERTIES, str) | {
    "createdDateTime": datetime,
    "accountEnabled": bool,
}
_MEMBER_OF = GraphCollection("directoryObjects", _GROUP_KINDS, ("groupTypes",))
# members are users, groups and devices: a property another kind lacks is null on it
_MEMBERS = GraphCollection(
    "directoryObjects",
    _USER_KINDS | _GROUP_KINDS | dict.fromkeys(("operatingSystem", "operatingSystemVersion"), str),
    ("groupTypes",),
)


@router.get("/users/{user_id}/memberOf", dependencies=[ODATA_QUERY_OPTIONS])
async def member_of(
    request: Request, user_id: str, admin: Annotated[Principal, Depends(require(Permission.USERS_READ))]
) -> dict[str, Any]:
    return await _member_of(request, admin, user_id, transitive=False)


@router.get("/users/{user_id}/transitiveMemberOf", dependencies=[ODATA_QUERY_OPTIONS])
async def transitive_member_of(
    request: Request, user_id: str, admin: Annotated[Principal, Depends(require(Permission.USERS_READ))]
) -> dict[str, Any]:
    return await _member_of(request, admin, user_id, transitive=True)


class GroupUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    displayName: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=1024)
    mailNickname: str | None = Field(default=None, max_length=64)
    groupTypes: list[str] | None = Field(default=None, max_length=4)
    membershipRule: str | None = Field(default=None, max_length=3072)
    membershipRuleProcessingState: str | None = Field(default=None, max_length=20)


class GroupCreate(GroupUpdate):
    displayName: str = Field(min_length=1, max_length=256)
    groupTypes: list[str] = Field(default_factory=list, max_length=4)


def group_columns(body: BaseModel) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    fields.pop("membershipRuleProcessingState", None)  # always "On": rules are evaluated as soon as they change
    columns = {_GROUP_PROPERTIES[name]: value for name, value in fields.items() if name in _GROUP_PROPERTIES}
    if "groupTypes" in fields:
        types = fields["groupTypes"] or []
        unknown = [t for t in types if t not in (DYNAMIC_MEMBERSHIP, "Unified")]
        if unknown:
            raise InvalidInput(f"groupTypes: unsupported value {unknown[0]!r}")
        columns["membership_type"] = DYNAMIC if DYNAMIC_MEMBERSHIP in types else ASSIGNED
    return columns


@router.get("/groups")
async def list_groups(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.GROUPS_READ))]
) -> dict[str, Any]:
    return await _page(request, admin, "groups", (*_GROUP_PROPERTIES, *_GROUP_COMPUTED))


@router.post("/groups", status_code=201)
async def create_group(
    request: Request, body: GroupCreate, admin: Annotated[Principal, Depends(require(Permission.GROUPS_WRITE))]
) -> dict[str, Any]:
    columns = group_columns(body) | {"membership_type": DYNAMIC if DYNAMIC_MEMBERSHIP in body.groupTypes else ASSIGNED}
    row = await _directory(request).create_group(admin.org_id, columns, actor=admin.display_name, source="api")
    return graph_group(row)


@router.get("/groups/{group_id}")
async def get_group(
    request: Request, group_id: str, admin: Annotated[Principal, Depends(require(Permission.GROUPS_READ))]
) -> dict[str, Any]:
    return graph_group(await _directory(request).group(admin.org_id, group_id))


@router.patch("/groups/{group_id}", status_code=204)
async def update_group(
    request: Request,
    group_id: str,
    body: GroupUpdate,
    admin: Annotated[Principal, Depends(require(Permission.GROUPS_WRITE))],
) -> Response:
    await _directory(request).update_group(admin.org_id, group_id, group_columns(body), actor=admin.display_name)
    return Response(status_code=204)


@router.delete("/groups/{group_id}", status_code=204)
async def delete_group(
    request: Request, group_id: str, admin: Annotated[Principal, Depends(require(Permission.GROUPS_WRITE))]
) -> Response:
    await _directory(request).delete_group(admin.org_id, group_id, actor=admin.display_name)
    return Response(status_code=204)


@router.get("/groups/{group_id}/members", dependencies=[ODATA_QUERY_OPTIONS])
async def list_members(
    request: Request, group_id: str, admin: Annotated[Principal, Depends(require(Permission.GROUPS_READ))]
) -> dict[str, Any]:
    rows = await _directory(request).members(admin.org_id, group_id)
    return _MEMBERS.response(request, [directory_object(row) for row in rows])


@router.get("/groups/{group_id}/transitiveMembers", dependencies=[ODATA_QUERY_OPTIONS])
async def list_transitive_members(
    request: Request, group_id: str, admin: Annotated[Principal, Depends(require(Permission.GROUPS_READ))]
) -> dict[str, Any]:
    rows = await _directory(request).transitive_members(admin.org_id, group_id)
    return _MEMBERS.response(request, [directory_object(row) for row in rows])


class MemberReference(BaseModel):
    odata_id: str = Field(alias="@odata.id", max_length=2048, description=".../directoryObjects/{id}")


@router.post("/groups/{group_id}/members/$ref", status_code=204)
async def add_member(
    request: Request,
    group_id: str,
    body: MemberReference,
    admin: Annotated[Principal, Depends(require(Permission.GROUPS_WRITE))],
) -> Response:
    prefix, _, member_id = body.odata_id.rstrip("/").rpartition("/")
    if not prefix.endswith("directoryObjects") or not member_id:
        raise InvalidInput("@odata.id must reference .../directoryObjects/{id}")
    await _directory(request).add_member(admin.org_id, group_id, member_id, actor=admin.display_name)
    return Response(status_code=204)


@router.delete("/groups/{group_id}/members/{member_id}/$ref", status_code=204)
async def remove_member(
    request: Request,
    group_id: str,
    member_id: str,
    admin: Annotated[Principal, Depends(require(Permission.GROUPS_WRITE))],
) -> Response:
    await _directory(request).remove_member(admin.org_id, group_id, member_id, actor=admin.display_name)
    return Response(status_code=204)


class ProvisioningTokenCreate(BaseModel):
    displayName: str = Field(min_length=1, max_length=256, description="Which identity provider uses it.")


def _token(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "displayName": row["display_name"],
        "createdBy": row["created_by"],
        "createdDateTime": _value(row["created_at"]),
        "lastUsedDateTime": _value(row.get("last_used_at")),
    }


@router.post("/directory/provisioningTokens", status_code=201)
async def create_provisioning_token(
    request: Request,
    body: ProvisioningTokenCreate,
    admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))],
) -> dict[str, Any]:
    """Muster-only: a SCIM bearer secret for an identity provider; `secretText` is shown this once."""
    tokens = container(request).provisioning_tokens
    row, secret = await tokens.create(admin.org_id, body.displayName, actor=admin.display_name)
    return _token(row) | {"secretText": secret, "scimEndpoint": f"{request.base_url}scim/v2"}


@router.get("/directory/provisioningTokens", dependencies=[ODATA_QUERY_OPTIONS])
async def list_provisioning_tokens(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))]
) -> dict[str, Any]:
    rows = await container(request).provisioning_tokens.list(admin.org_id)
    return _PROVISIONING_TOKENS.response(request, [_token(row) for row in rows])


_PROVISIONING_TOKENS = GraphCollection(
    "directory/provisioningTokens",
    {"id": str, "displayName": str, "createdBy": str, "createdDateTime": datetime, "lastUsedDateTime": datetime},
)


@router.delete("/directory/provisioningTokens/{token_id}", status_code=204)
async def revoke_provisioning_token(
    request: Request, token_id: str, admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))]
) -> Response:
    await container(request).provisioning_tokens.revoke(admin.org_id, token_id, actor=admin.display_name)
    return Response(status_code=204)


@router.post("/users/importCsv")
async def import_users_csv(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))]
) -> dict[str, Any]:
    """Muster-only: create or update users from a CSV file (text/csv body), all rows or none; see docs/directory.md."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
        raise InvalidInput("send the CSV file as the body, with Content-Type: text/csv")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_CSV_BYTES:
            raise InvalidInput(f"the CSV file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB")
    result = await container(request).user_import.run(admin.org_id, bytes(data), actor=admin.display_name)
    return {
        "rowCount": result.rows,
        "createdCount": result.created,
        "updatedCount": result.updated,
        "unchangedCount": result.unchanged,
        "membershipsAddedCount": result.memberships_added,
    }
