"""Graph `depOnboardingSettings/{id}/enrollmentProfiles` and `.../importedAppleDeviceIdentities`.

Profiles carry their own scope tags (`roleScopeTagIds`); imported devices belong to their token, whose tags decide.
An admin reaches only what is within its scope for the route's permission, else 403.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field

from muster.domain.ade_profiles import AdeProfileSettings, Platform, graph_name
from muster.domain.errors import InvalidInput
from muster.domain.rbac import Permission, Principal, TaggedObject
from muster.protocols.odata import next_link, parse_query_options
from muster.services.ade_profile_settings import ODATA_TYPES
from muster.services.ade_profiles import AdeProfileRow
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, grantable_tags, requested_tags, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/depOnboardingSettings/{{token_id}}", tags=["depOnboardingSettings"])


def _on_profile(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """`require(permission)` over the profile the path names."""
    return require(permission, TaggedObject.ADE_PROFILE, "profile_id")


def _on_token(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """`require(permission)` over the token the path names."""
    return require(permission, TaggedObject.DEP_TOKEN, "token_id")


_PLATFORMS = {odata: platform for platform, odata in ODATA_TYPES.items()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def graph_profile(row: AdeProfileRow, tags: list[str], warnings: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        **row.settings,
        "@odata.type": ODATA_TYPES[Platform(row.platform)],
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "abmProfileUuid": row.abm_profile_uuid,
        "createdDateTime": _iso(row.created_at),
        "lastModifiedDateTime": _iso(row.updated_at),
        "roleScopeTagIds": tags,
    }
    if warnings is not None:
        body["warnings"] = warnings
    return body


async def _graph(request: Request, row: AdeProfileRow, warnings: list[str] | None = None) -> dict[str, Any]:
    tags = await container(request).roles.tags_of(TaggedObject.ADE_PROFILE, [row.id])
    return graph_profile(row, tags[row.id], warnings)


def _tag_ids(body: dict[str, Any]) -> list[str] | None:
    """`roleScopeTagIds` taken out of a profile body (it is not a profile setting)."""
    tags = requested_tags(body)
    body.pop("roleScopeTagIds", None)
    return tags


@router.get("/enrollmentProfiles", dependencies=[ODATA_QUERY_OPTIONS])
async def list_profiles(
    request: Request,
    token_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROFILES_READ))],
) -> dict[str, Any]:
    c = container(request)
    rows = await c.ade_profiles.list_for_token(admin.org_id, token_id, admin.scope(Permission.ENROLLMENT_PROFILES_READ))
    tags = await c.roles.tags_of(TaggedObject.ADE_PROFILE, [row.id for row in rows])
    return _PROFILES.response(request, [graph_profile(row, tags[row.id]) for row in rows])


def _setting_kinds() -> tuple[dict[str, type], tuple[str, ...]]:
    """The profile settings $filter can use (text, numbers, booleans, enums as text), and the others."""
    scalar: dict[str, type] = {}
    others: list[str] = []
    hints = get_type_hints(AdeProfileSettings)
    for field in dataclasses.fields(AdeProfileSettings):
        hint = hints[field.name]
        # bool first: it is an int too
        kind = next((k for k in (bool, int, str) if hint in (k, k | None) or _subclass(hint, k)), None)
        if kind is None:
            others.append(graph_name(field.name))
        else:
            scalar[graph_name(field.name)] = kind
    return scalar, tuple(others)


def _subclass(hint: Any, kind: type) -> bool:
    return isinstance(hint, type) and issubclass(hint, kind)


_SETTING_KINDS, _OTHER_SETTINGS = _setting_kinds()
_PROFILES = GraphCollection(
    "deviceManagement/depOnboardingSettings('{token_id}')/enrollmentProfiles",
    _SETTING_KINDS
    | dict.fromkeys(("id", "displayName", "description", "abmProfileUuid"), str)
    | dict.fromkeys(("createdDateTime", "lastModifiedDateTime"), datetime),
    (*_OTHER_SETTINGS, "roleScopeTagIds"),
)


@router.post("/enrollmentProfiles", status_code=201)
async def create_profile(
    request: Request,
    token_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROFILES_WRITE))],
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    platform = _PLATFORMS.get(body.get("@odata.type", ""))
    if platform is None:
        raise InvalidInput(f"@odata.type must be one of {', '.join(_PLATFORMS)}")
    tags = await grantable_tags(request, admin, Permission.ENROLLMENT_PROFILES_WRITE, _tag_ids(body))
    row, warnings = await container(request).ade_profiles.create(
        org_id=admin.org_id, token_id=token_id, platform=platform, body=body, actor=admin.display_name, tag_ids=tags
    )
    return await _graph(request, row, warnings)


@router.get("/enrollmentProfiles/{profile_id}")
async def get_profile(
    request: Request,
    token_id: str,
    profile_id: str,
    admin: Annotated[Principal, Depends(_on_profile(Permission.ENROLLMENT_PROFILES_READ))],
) -> dict[str, Any]:
    return await _graph(request, await container(request).ade_profiles.get(admin.org_id, profile_id))


@router.patch("/enrollmentProfiles/{profile_id}")
async def update_profile(
    request: Request,
    token_id: str,
    profile_id: str,
    admin: Annotated[Principal, Depends(_on_profile(Permission.ENROLLMENT_PROFILES_WRITE))],
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    c = container(request)
    await c.ade_profiles.get(admin.org_id, profile_id)
    wanted = _tag_ids(body)
    tags = (
        None if wanted is None else await grantable_tags(request, admin, Permission.ENROLLMENT_PROFILES_WRITE, wanted)
    )
    warnings: list[str] = []
    if body:
        _, warnings = await c.ade_profiles.update(
            org_id=admin.org_id, profile_id=profile_id, body=body, actor=admin.display_name
        )
    if tags is not None:
        await c.roles.set_object_tags(
            org_id=admin.org_id,
            object_type=TaggedObject.ADE_PROFILE,
            object_id=profile_id,
            tag_ids=tags,
            actor=admin.display_name,
        )
    return await _graph(request, await c.ade_profiles.get(admin.org_id, profile_id), warnings)


@router.delete("/enrollmentProfiles/{profile_id}", status_code=204)
async def delete_profile(
    request: Request,
    token_id: str,
    profile_id: str,
    admin: Annotated[Principal, Depends(_on_profile(Permission.ENROLLMENT_PROFILES_WRITE))],
) -> Response:
    await container(request).ade_profiles.delete(org_id=admin.org_id, profile_id=profile_id, actor=admin.display_name)
    return Response(status_code=204)


@router.post("/enrollmentProfiles/{profile_id}/setDefaultProfile", status_code=204)
async def set_default(
    request: Request,
    token_id: str,
    profile_id: str,
    admin: Annotated[Principal, Depends(_on_profile(Permission.ENROLLMENT_PROFILES_WRITE))],
) -> Response:
    await container(request).ade_profiles.set_default(
        org_id=admin.org_id, profile_id=profile_id, actor=admin.display_name
    )
    return Response(status_code=204)


class DeviceAssignment(BaseModel):
    deviceIds: list[str] = Field(min_length=1, max_length=200_000, description="Serial numbers.")


@router.post("/enrollmentProfiles/{profile_id}/updateDeviceProfileAssignment")
async def assign(
    request: Request,
    token_id: str,
    profile_id: str,
    body: DeviceAssignment,
    admin: Annotated[Principal, Depends(_on_profile(Permission.ENROLLMENT_PROFILES_WRITE))],
) -> dict[str, Any]:
    outcome = await container(request).ade_profiles.assign(
        org_id=admin.org_id, profile_id=profile_id, serials=body.deviceIds, actor=admin.display_name
    )
    return {
        "succeeded": outcome.succeeded,
        "failed": [{"serialNumber": s, "status": status} for s, status in outcome.failed.items()],
    }


@router.get("/importedAppleDeviceIdentities")
async def imported_devices(
    request: Request,
    token_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_READ))],
) -> dict[str, Any]:
    """The token's devices, their ABM and assignment state, and why an assignment failed (retried by Muster)."""
    c = container(request)
    await c.ade_tokens.get(admin.org_id, token_id)
    options = parse_query_options(dict(request.query_params))
    rows, skiptoken, total = await c.ade_devices.page(admin.org_id, token_id, options)
    page: dict[str, Any] = {
        "value": [
            {
                "@odata.type": "#microsoft.graph.importedAppleDeviceIdentity",
                "id": r["id"],
                "serialNumber": r["serial_number"],
                "description": r["description"],
                "model": r["model"],
                "color": r["color"],
                "platform": r["os"],
                "deviceFamily": r["device_family"],
                "discoverySource": "deviceEnrollmentProgram",
                "requestedEnrollmentProfileId": r["profile_id"],
                "requestedEnrollmentProfileName": r["profile_name"],
                "profileAssignmentStatus": r["assignment_status"],
                "profileAssignmentError": r["assignment_error"],
                "profileAssignmentAttempts": r["assignment_attempts"],
                "abmProfileStatus": r["abm_profile_status"],
                "abmStatus": r["abm_status"],
                "isDeleted": r["abm_status"] == "released",
                "releasedDateTime": _iso(r["released_at"]),
                "enrollmentState": r["enrollment_state"],
                "managedDeviceId": r["managed_device_id"],
                "createdDateTime": _iso(r["created_at"]),
                "lastModifiedDateTime": _iso(r["updated_at"]),
            }
            for r in rows
        ]
    }
    if total is not None:
        page["@odata.count"] = total
    if skiptoken:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), skiptoken)
    return page


@router.delete("/importedAppleDeviceIdentities/{device_id}", status_code=204)
async def delete_imported_device(
    request: Request,
    token_id: str,
    device_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_UPDATE))],
) -> Response:
    """Remove the device here; unassign it in Apple Business Manager too, or the next full sync brings it back."""
    await container(request).ade_tokens.delete_device(
        org_id=admin.org_id, token_id=token_id, device_id=device_id, actor=admin.display_name
    )
    return Response(status_code=204)
