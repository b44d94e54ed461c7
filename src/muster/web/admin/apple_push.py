"""Graph `applePushNotificationCertificate`: the CSR to take to Apple, and the certificate Apple issued."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from muster.domain.rbac import Permission, Principal
from muster.services.push_certificates import PushCertificateStatus
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, require

router = APIRouter(
    prefix=f"{DEVICE_MANAGEMENT}/applePushNotificationCertificate", tags=["applePushNotificationCertificate"]
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _graph(status: PushCertificateStatus | None) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.type": "#microsoft.graph.applePushNotificationCertificate"}
    if status is None:
        return {**body, "certificateUploadStatus": "notUploaded"}
    row = status.row
    return {
        **body,
        "id": row.id,
        "appleIdentifier": row.apple_id,
        "topicIdentifier": row.topic,
        "subjectId": status.subject_id,
        "certificateSerialNumber": row.serial_number,
        "expirationDateTime": _iso(row.not_after),
        "lastModifiedDateTime": _iso(row.uploaded_at),
        "certificateUploadStatus": "uploaded",
        "status": "expired" if status.expired else "active",
        "daysUntilExpiration": status.days_until_expiration,
        "expiryWarning": status.warning,
    }


@router.get("")
async def get_certificate(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_READ))]
) -> dict[str, Any]:
    return _graph(await container(request).push_certificates.describe())


@router.get("/downloadApplePushNotificationCertificateSigningRequest()")
@router.get("/downloadApplePushNotificationCertificateSigningRequest")
async def signing_request(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_UPDATE))]
) -> dict[str, str]:
    """A fresh certificate signing request; its private key never leaves Muster."""
    return {"value": await container(request).push_certificates.signing_request(actor=admin.display_name)}


class CertificateUpload(BaseModel):
    certificate: str = Field(min_length=1, max_length=64_000, description="The PEM certificate Apple issued.")
    appleIdentifier: str = Field(
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="The Apple Account that created the certificate: renewals must use the same one.",
    )


@router.patch("")
async def upload_certificate(
    request: Request,
    body: CertificateUpload,
    admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_UPDATE))],
) -> dict[str, Any]:
    certificates = container(request).push_certificates
    await certificates.upload(certificate_pem=body.certificate, apple_id=body.appleIdentifier, actor=admin.display_name)
    return _graph(await certificates.describe())


@router.delete("", status_code=204)
async def delete_certificate(
    request: Request, admin: Annotated[Principal, Depends(require(Permission.ORGANIZATION_UPDATE))]
) -> Response:
    await container(request).push_certificates.delete(actor=admin.display_name)
    return Response(status_code=204)
