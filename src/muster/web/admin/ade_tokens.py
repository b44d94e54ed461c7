"""Graph `depOnboardingSettings`: enrollment program tokens, their public key, server token upload and sync.

Tokens carry scope tags (`roleScopeTagIds`); an admin sees and acts on those within its scope, else 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain import ade_tokens as rules
from muster.domain.rbac import Permission, Principal, TaggedObject
from muster.services.ade_tokens import TokenRow
from muster.web.admin.collections import ODATA_QUERY_OPTIONS, GraphCollection
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, grantable_tags, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/depOnboardingSettings", tags=["depOnboardingSettings"])


def _on_token(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """`require(permission)` over the token the path names."""
    return require(permission, TaggedObject.DEP_TOKEN, "token_id")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def graph_token(row: TokenRow, now: datetime, tags: list[str]) -> dict[str, Any]:
    running = row.sync_lease_expires_at is not None and row.sync_lease_expires_at > now
    warning = None
    if row.token_expires_at is not None:
        days = rules.days_until_expiration(row.token_expires_at, now)
        if rules.is_expired(row.token_expires_at, now):
            warning = rules.token_use_decision(row.token_expires_at, now, action="sync devices").reason
        elif days <= max(rules.EXPIRY_WARNING_DAYS):
            warning = f"The token expires in {days} days: renew it with a new token from the same MDM server."
    return {
        "@odata.type": "#microsoft.graph.depOnboardingSetting",
        "id": row.id,
        "tokenName": row.name,
        "tokenType": row.program if row.credentials_encrypted else "none",
        "appleIdentifier": row.apple_id,
        "tokenExpirationDateTime": _iso(row.token_expires_at),
        "lastModifiedDateTime": _iso(row.updated_at),
        "lastSuccessfulSyncDateTime": _iso(row.last_successful_sync_at),
        "lastSyncTriggeredDateTime": _iso(row.last_sync_started_at),
        "lastSyncErrorCode": 0 if row.last_sync_outcome in (None, "succeeded") else 1,
        "lastSyncError": row.last_sync_error,
        "syncState": "running" if running else "idle",
        "syncedDeviceCount": row.device_count,
        "profileCount": row.profile_count,
        "dataSharingConsentGranted": True,
        "shareTokenWithSchoolDataSyncService": False,
        "serverName": row.server_name,
        "organizationName": row.abm_org_name,
        "defaultIosEnrollmentProfileId": row.default_ios_profile_id,
        "defaultMacOsEnrollmentProfileId": row.default_macos_profile_id,
        "expiryWarning": warning,
        "roleScopeTagIds": tags,
    }


async def _graph(request: Request, row: TokenRow) -> dict[str, Any]:
    c = container(request)
    tags = await c.roles.tags_of(TaggedObject.DEP_TOKEN, [row.id])
    return graph_token(row, c.clock.now(), tags[row.id])


_TagIds = list[Annotated[str, Field(min_length=1, max_length=64)]]


class TokenCreate(BaseModel):
    tokenName: str = Field(default="Apple Business Manager", min_length=1, max_length=200)
    roleScopeTagIds: _TagIds = Field(default_factory=list, max_length=100)


class TokenUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roleScopeTagIds: _TagIds = Field(max_length=100)


class TokenUpload(BaseModel):
    appleId: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    depToken: str = Field(min_length=1, max_length=256_000, description="The server token file's content (.p7m).")


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_tokens(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.ENROLLMENT_PROGRAM_TOKEN_READ))]
) -> dict[str, Any]:
    c = container(request)
    now = c.clock.now()
    rows = await c.ade_tokens.list_for_org(admin.org_id, admin.scope(Permission.ENROLLMENT_PROGRAM_TOKEN_READ))
    tags = await c.roles.tags_of(TaggedObject.DEP_TOKEN, [row.id for row in rows])
    return _TOKENS.response(request, [graph_token(row, now, tags[row.id]) for row in rows])


_TOKEN_TEXT = (
    "id",
    "tokenName",
    "tokenType",
    "appleIdentifier",
    "lastSyncError",
    "syncState",
    "serverName",
    "organizationName",
    "defaultIosEnrollmentProfileId",
    "defaultMacOsEnrollmentProfileId",
    "expiryWarning",
)
_TOKEN_TIMES = (
    "tokenExpirationDateTime",
    "lastModifiedDateTime",
    "lastSuccessfulSyncDateTime",
    "lastSyncTriggeredDateTime",
)
_TOKENS = GraphCollection(
    "deviceManagement/depOnboardingSettings",
    dict.fromkeys(_TOKEN_TEXT, str)
    | dict.fromkeys(_TOKEN_TIMES, datetime)
    | dict.fromkeys(("lastSyncErrorCode", "syncedDeviceCount", "profileCount"), int)
    | dict.fromkeys(("dataSharingConsentGranted", "shareTokenWithSchoolDataSyncService"), bool),
    ("roleScopeTagIds",),
)


@router.post("", status_code=201)
async def create_token(
    request: Request,
    body: TokenCreate,
    admin: Annotated[Principal, Depends(require(Permission.ENROLLMENT_PROGRAM_TOKEN_CREATE))],
) -> dict[str, Any]:
    tags = await grantable_tags(request, admin, Permission.ENROLLMENT_PROGRAM_TOKEN_CREATE, body.roleScopeTagIds)
    row = await container(request).ade_tokens.create(
        org_id=admin.org_id, name=body.tokenName, actor=admin.display_name, tag_ids=tags
    )
    return await _graph(request, row)


@router.get("/{token_id}")
async def get_token(
    request: Request,
    token_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_READ))],
) -> dict[str, Any]:
    return await _graph(request, await container(request).ade_tokens.get(admin.org_id, token_id))


@router.patch("/{token_id}")
async def update_token(
    request: Request,
    token_id: str,
    body: TokenUpdate,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_UPDATE))],
) -> dict[str, Any]:
    """Set the token's scope tags (within the admin's own scope)."""
    c = container(request)
    await c.ade_tokens.get(admin.org_id, token_id)
    tags = await grantable_tags(request, admin, Permission.ENROLLMENT_PROGRAM_TOKEN_UPDATE, body.roleScopeTagIds)
    await c.roles.set_object_tags(
        org_id=admin.org_id,
        object_type=TaggedObject.DEP_TOKEN,
        object_id=token_id,
        tag_ids=tags,
        actor=admin.display_name,
    )
    return await _graph(request, await c.ade_tokens.get(admin.org_id, token_id))


@router.get("/{token_id}/generateEncryptionPublicKey()")
@router.get("/{token_id}/generateEncryptionPublicKey")
async def public_key(
    request: Request,
    token_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_READ))],
) -> dict[str, str]:
    """The certificate to upload to the MDM server in Apple Business Manager (ADE-02)."""
    row = await container(request).ade_tokens.get(admin.org_id, token_id)
    return {"value": row.certificate_pem}


@router.post("/{token_id}/uploadDepToken")
async def upload_token(
    request: Request,
    token_id: str,
    body: TokenUpload,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_UPDATE))],
) -> dict[str, Any]:
    row = await container(request).ade_tokens.upload(
        org_id=admin.org_id,
        token_id=token_id,
        apple_id=body.appleId,
        token=body.depToken.encode(),
        actor=admin.display_name,
    )
    return await _graph(request, row)


@router.post("/{token_id}/syncWithAppleDeviceEnrollmentProgram", status_code=204)
async def sync(
    request: Request,
    token_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_SYNC))],
) -> Response:
    await container(request).ade_tokens.sync(org_id=admin.org_id, token_id=token_id, actor=admin.display_name)
    return Response(status_code=204)


@router.delete("/{token_id}", status_code=204)
async def delete_token(
    request: Request,
    token_id: str,
    admin: Annotated[Principal, Depends(_on_token(Permission.ENROLLMENT_PROGRAM_TOKEN_DELETE))],
) -> Response:
    await container(request).ade_tokens.delete(org_id=admin.org_id, token_id=token_id, actor=admin.display_name)
    return Response(status_code=204)
