"""Profile-based Apple enrollment: the admin exports a signed enrollment profile for a user or userless."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from muster.domain.rbac import Permission, Principal
from muster.services.enrollment_profiles import MOBILECONFIG_TYPE
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=DEVICE_MANAGEMENT, tags=["enrollment"])


class ProfileExport(BaseModel):
    userPrincipalName: str | None = Field(default=None, max_length=320, description="None for a userless profile.")


@router.post(
    "/exportAppleEnrollmentProfile",
    response_class=Response,
    responses={200: {"content": {MOBILECONFIG_TYPE: {}}}},
)
async def export_profile(
    request: Request,
    body: ProfileExport,
    admin: Annotated[Principal, Depends(require(Permission.ENROLLMENT_PROFILES_WRITE))],
) -> Response:
    """A signed `.mobileconfig` carrying a fresh one-time SCEP challenge (valid 15 minutes, usable once)."""
    profile, _ = await container(request).profiles.export(
        org_id=admin.org_id, user_principal_name=body.userPrincipalName, actor=admin.display_name
    )
    return Response(
        profile,
        media_type=MOBILECONFIG_TYPE,
        headers={"Content-Disposition": 'attachment; filename="enroll.mobileconfig"'},
    )
