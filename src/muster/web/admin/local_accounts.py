"""Muster-only Graph-style action on `users`: set the local sign-in password of a directory user, and whether a
second factor (TOTP) is required. The password is never returned nor logged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.rbac import Permission, Principal
from muster.web.admin.deps import GRAPH, container, require

router = APIRouter(prefix=f"{GRAPH}/users", tags=["localAccounts"])


class SetPassword(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    new_password: str = Field(alias="newPassword", max_length=256)
    require_totp: bool = Field(default=False, alias="requireTotp")
    reset_totp: bool = Field(default=False, alias="resetTotp", description="Forget the enrolled authenticator.")


@router.post("/{user_id}/setPassword", status_code=204)
async def set_password(
    request: Request,
    user_id: str,
    body: SetPassword,
    admin: Annotated[Principal, Depends(require(Permission.USERS_WRITE))],
) -> Response:
    await container(request).local_accounts.set_password(
        org_id=admin.org_id,
        user_id=user_id,
        password=body.new_password,
        require_totp=body.require_totp,
        reset_totp=body.reset_totp,
        actor=admin.display_name,
    )
    return Response(status_code=204)
