"""Graph `dataSharingConsents`: the admin's consent to share data with Apple before the push certificate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from muster.domain.rbac import Permission, Principal
from muster.services.consents import Consent
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/dataSharingConsents", tags=["dataSharingConsents"])


def _graph(consent: Consent) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.dataSharingConsent",
        "id": consent.id,
        "serviceDisplayName": consent.service,
        "termsUrl": None,
        "consentText": consent.terms,
        "granted": consent.granted,
        "grantDateTime": consent.granted_at.isoformat().replace("+00:00", "Z") if consent.granted_at else None,
        "grantedByUpn": consent.granted_by,
    }


@router.get("/{consent_id}")
async def get_consent(
    request: Request, consent_id: str, admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_READ))]
) -> dict[str, Any]:
    return _graph(await container(request).consents.get(admin.org_id, consent_id))


@router.post("/{consent_id}/consentToDataSharing")
async def consent(
    request: Request, consent_id: str, admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_UPDATE))]
) -> dict[str, Any]:
    return _graph(await container(request).consents.grant(admin.org_id, consent_id, actor=admin.display_name))
