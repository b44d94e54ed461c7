"""Muster-only: the OpenID Connect identity provider users sign in with to enroll, and Intune's "require
multifactor authentication for enrollment". The client secret can be set, never read back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.rbac import Permission, Principal
from muster.services.identity_provider import (
    DEFAULT_SCOPES,
    DEFAULT_UPN_CLAIM,
    IdentityProviderChange,
    IdentityProviderConfig,
)
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=DEVICE_MANAGEMENT, tags=["identity provider"])
PATH = "/identityProviderSettings"
ODATA_TYPE = "#muster.identityProviderSettings"


class IdentityProviderPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str | None = Field(default=None, max_length=500, description="Issuer URL; empty to remove the provider.")
    clientId: str | None = Field(default=None, max_length=256)
    clientSecret: str | None = Field(default=None, max_length=1024, description="Write-only; empty to remove.")
    scopes: list[str] | None = Field(default=None, max_length=20)
    userPrincipalNameClaim: str | None = Field(default=None, max_length=64)
    requireMultiFactorAuthenticationForEnrollment: bool | None = None
    multiFactorAuthenticationAcrValues: list[str] | None = Field(
        default=None, max_length=20, description="`acr` values the provider asserts only after MFA."
    )


def _read(request: Request, config: IdentityProviderConfig | None) -> dict[str, Any]:
    redirect_uri = f"{container(request).endpoints.public_url}/enroll/oidc/callback"
    base: dict[str, Any] = {"@odata.type": ODATA_TYPE, "redirectUri": redirect_uri}
    if config is None:
        return base | {
            "issuer": None,
            "clientId": None,
            "isClientSecretSet": False,
            "scopes": list(DEFAULT_SCOPES),
            "userPrincipalNameClaim": DEFAULT_UPN_CLAIM,
            "requireMultiFactorAuthenticationForEnrollment": False,
            "multiFactorAuthenticationAcrValues": [],
            "lastModifiedDateTime": None,
        }
    return base | {
        "issuer": config.issuer,
        "clientId": config.client_id,
        "isClientSecretSet": config.client_secret_encrypted is not None,
        "scopes": list(config.scopes),
        "userPrincipalNameClaim": config.user_principal_name_claim,
        "requireMultiFactorAuthenticationForEnrollment": config.require_mfa_for_enrollment,
        "multiFactorAuthenticationAcrValues": list(config.mfa_acr_values),
        "lastModifiedDateTime": config.updated_at.isoformat().replace("+00:00", "Z"),
    }


@router.get(PATH)
async def get_identity_provider_settings(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_READ))]
) -> dict[str, Any]:
    return _read(request, await container(request).identity_providers.get(admin.org_id))


@router.patch(PATH)
async def update_identity_provider_settings(
    request: Request,
    body: IdentityProviderPatch,
    admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_UPDATE))],
) -> dict[str, Any]:
    change = IdentityProviderChange(
        issuer=body.issuer,
        client_id=body.clientId,
        client_secret=body.clientSecret,
        scopes=tuple(body.scopes) if body.scopes is not None else None,
        user_principal_name_claim=body.userPrincipalNameClaim,
        require_mfa_for_enrollment=body.requireMultiFactorAuthenticationForEnrollment,
        mfa_acr_values=tuple(body.multiFactorAuthenticationAcrValues)
        if body.multiFactorAuthenticationAcrValues is not None
        else None,
    )
    updated = await container(request).identity_providers.update(admin.org_id, change, actor=admin.display_name)
    return _read(request, updated)
