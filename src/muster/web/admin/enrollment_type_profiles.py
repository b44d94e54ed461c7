"""Graph `deviceManagement/appleUserInitiatedEnrollmentProfiles`: Apple enrollment type profiles (Device
Enrollment, User Enrollment, or the user's choice; seed-catalog-C §1.10).

CRUD, `assign`, `assignments`, `setPriority`, and the Muster function `resolve(userPrincipalName='...')`: which
profile applies to a user and what the user is offered (a what-if for support; a function, since it changes
nothing). An admin sees and changes only the profiles within its scope for the route's permission; others answer
404, as if absent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel

from muster.domain.enrollment_type_profiles import ODATA_TYPE, EnrollmentOffer
from muster.domain.rbac import Permission, Principal
from muster.services.enrollment_type_profiles import ProfileRow
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, grantable_tags, requested_tags, require

router = APIRouter(
    prefix=f"{DEVICE_MANAGEMENT}/appleUserInitiatedEnrollmentProfiles", tags=["appleUserInitiatedEnrollmentProfiles"]
)

READ, WRITE = Permission.ENROLLMENT_PROFILES_READ, Permission.ENROLLMENT_PROFILES_WRITE
Reader = Annotated[Principal, Depends(require(READ))]
Writer = Annotated[Principal, Depends(require(WRITE))]
ASSIGNMENT_TYPE = "#microsoft.graph.appleEnrollmentProfileAssignment"


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def graph_profile(row: ProfileRow) -> dict[str, Any]:
    return {
        "@odata.type": ODATA_TYPE,
        "id": row.id,
        "displayName": row.profile.display_name,
        "description": row.profile.description,
        "platform": row.profile.platform,
        **row.profile.setting.to_graph(),
        "priority": row.priority,
        "createdDateTime": _time(row.created_at),
        "lastModifiedDateTime": _time(row.updated_at),
        "roleScopeTagIds": list(row.scope_tag_ids),
    }


def _assignment(row: ProfileRow, index: int) -> dict[str, Any]:
    return {"@odata.type": ASSIGNMENT_TYPE, "id": f"{row.id}_{index}", "target": row.targets[index].to_graph()}


_PROFILES = GraphCollection(
    "deviceManagement/appleUserInitiatedEnrollmentProfiles",
    dict.fromkeys(("id", "displayName", "description", "platform", "defaultEnrollmentType"), str)
    | {"priority": int}
    | dict.fromkeys(("createdDateTime", "lastModifiedDateTime"), datetime),
    ("roleScopeTagIds", "availableEnrollmentTypeOptions"),
    default_orderby="priority",
)
_ASSIGNMENTS = GraphCollection(
    "deviceManagement/appleUserInitiatedEnrollmentProfiles('{profile_id}')/assignments", {"id": str}, ("target",)
)


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_profiles(request: Request, admin: Reader) -> dict[str, Any]:
    rows = await container(request).enrollment_type_profiles.all(admin.org_id, admin.scope(READ))
    return _PROFILES.response(request, [graph_profile(row) for row in rows])


@router.post("", status_code=201)
async def create_profile(request: Request, admin: Writer, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    tags = await grantable_tags(request, admin, WRITE, requested_tags(body))
    row = await container(request).enrollment_type_profiles.create(
        org_id=admin.org_id, actor=admin.display_name, body=body, tag_ids=tags
    )
    return graph_profile(row)


# Declared before `/{profile_id}`, which would otherwise take the function call for a profile id.
@router.get("/resolve(userPrincipalName='{user_principal_name}')")
async def resolve_profile(request: Request, user_principal_name: str, admin: Reader) -> dict[str, Any]:
    """The profile that applies to the user (the highest-priority one assigned to them, R-211) and the
    enrollment types offered. A profile outside the admin's scope is not named, but its offer is shown."""
    profiles = container(request).enrollment_type_profiles
    upn = user_principal_name.replace("''", "'")  # an OData string literal doubles its quotes
    user_id, offer = await profiles.offer_for_upn(admin.org_id, upn)
    visible = offer.profile is None or await profiles.visible(admin.org_id, offer.profile.id, admin.scope(READ))
    return _graph_offer(upn, user_id, offer, visible=visible)


def _graph_offer(upn: str, user_id: str, offer: EnrollmentOffer, *, visible: bool) -> dict[str, Any]:
    profile = offer.profile
    return {
        "userPrincipalName": upn,
        "userId": user_id,
        "profile": (
            {"id": profile.id, "displayName": profile.display_name, "priority": profile.priority}
            if profile is not None and visible
            else None
        ),
        "profileOutsideYourScope": not visible,
        **offer.setting.to_graph(),
        "userChooses": offer.setting.user_chooses,
        "offeredEnrollmentTypes": [kind.value for kind in offer.setting.offered],
    }


@router.get("/{profile_id}")
async def get_profile(request: Request, profile_id: str, admin: Reader) -> dict[str, Any]:
    row = await container(request).enrollment_type_profiles.get(admin.org_id, profile_id, admin.scope(READ))
    return graph_profile(row)


@router.patch("/{profile_id}")
async def update_profile(
    request: Request, profile_id: str, admin: Writer, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    profiles = container(request).enrollment_type_profiles
    await profiles.get(admin.org_id, profile_id, admin.scope(WRITE))  # 404 before any tag check
    wanted = requested_tags(body)
    tags = None if wanted is None else await grantable_tags(request, admin, WRITE, wanted)
    row = await profiles.update(
        admin.org_id, profile_id, admin.scope(WRITE), actor=admin.display_name, body=body, tag_ids=tags
    )
    return graph_profile(row)


@router.delete("/{profile_id}", status_code=204)
async def delete_profile(request: Request, profile_id: str, admin: Writer) -> Response:
    profiles = container(request).enrollment_type_profiles
    await profiles.delete(admin.org_id, profile_id, admin.scope(WRITE), actor=admin.display_name)
    return Response(status_code=204)


class PriorityBody(BaseModel):
    priority: int


@router.post("/{profile_id}/setPriority", status_code=204)
async def set_priority(request: Request, profile_id: str, body: PriorityBody, admin: Writer) -> Response:
    """Move the profile to `priority` (1 is the highest); the others keep their relative order, those outside
    the admin's scope included."""
    await container(request).enrollment_type_profiles.set_priority(
        admin.org_id, profile_id, admin.scope(WRITE), actor=admin.display_name, priority=body.priority
    )
    return Response(status_code=204)


class AssignBody(BaseModel):
    appleEnrollmentProfileAssignments: list[dict[str, Any]]


@router.post("/{profile_id}/assign", status_code=204)
async def assign_profile(request: Request, profile_id: str, body: AssignBody, admin: Writer) -> Response:
    """Replace the assignments: user groups to include or exclude, or all users; never devices (003:5474-5487).
    Unassigned, a profile applies to nobody."""
    await container(request).enrollment_type_profiles.assign(
        admin.org_id,
        profile_id,
        admin.scope(WRITE),
        actor=admin.display_name,
        assignments=body.appleEnrollmentProfileAssignments,
    )
    return Response(status_code=204)


@router.get("/{profile_id}/assignments", dependencies=[ODATA_QUERY_OPTIONS])
async def list_assignments(request: Request, profile_id: str, admin: Reader) -> dict[str, Any]:
    row = await container(request).enrollment_type_profiles.get(admin.org_id, profile_id, admin.scope(READ))
    return _ASSIGNMENTS.response(request, [_assignment(row, index) for index in range(len(row.targets))])
