"""Device-facing endpoints: Apple MDM check-in and command loop, and SCEP.

Errors here are plain text with 400/403/413, never 401 (a 401 on an MDM endpoint unenrolls the device), except
the ADE profile request's legacy authentication challenge.
"""

from __future__ import annotations

import base64
import binascii
import logging

from fastapi import APIRouter, Request, Response

from muster.app import Container
from muster.protocols.errors import ParseError
from muster.services.ade_enrollment import BasicCredentials, SoftwareUpdateRequired, UserAuthenticationRequired
from muster.services.device_auth import DeviceRequestRejected
from muster.services.enrollment_profiles import MOBILECONFIG_TYPE
from muster.services.mdm import Reply
from muster.web.identity import certificate_from_headers

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

SCEP_MAX_BYTES = 256 * 1024
MAX_BASIC_CREDENTIALS = 2048  # base64 of a user name (320) and a password (256), with room to spare


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def _mdm(request: Request, endpoint: str) -> Response:
    container = _container(request)
    try:
        body = await read_body(request, container.settings.max_device_body_bytes)
        certificate = certificate_from_headers(request.headers, body, container.settings.client_cert_header)
        reply: Reply = await (container.mdm.checkin if endpoint == "checkin" else container.mdm.connect)(
            body, certificate
        )
    except BodyTooLarge:
        return Response("request body too large\n", status_code=413, media_type="text/plain")
    except ParseError as error:
        await container.audit.device_event(
            activity="malformedDeviceRequest", target=endpoint, detail={"reason": error.reason}
        )
        return Response(f"{error.reason}\n", status_code=400, media_type="text/plain")
    except DeviceRequestRejected as error:
        return Response(f"{error.reason}\n", status_code=error.status, media_type="text/plain")
    if not reply.body:
        return Response(status_code=200)  # zero bytes: "nothing more to do"
    return Response(reply.body, media_type=reply.content_type)


@router.put("/mdm/checkin")
async def checkin(request: Request) -> Response:
    return await _mdm(request, "checkin")


@router.put("/mdm/connect")
async def connect(request: Request) -> Response:
    # Devices without a CheckInURL send check-ins to the ServerURL too; the content type tells them apart.
    kind = request.headers.get("content-type", "")
    return await _mdm(request, "checkin" if kind.startswith("application/x-apple-aspen-mdm-checkin") else "connect")


@router.get("/scep")
async def scep_get(request: Request, operation: str = "", message: str = "") -> Response:
    scep = _container(request).scep
    match operation:
        case "GetCACaps":
            return Response(scep.ca_caps(), media_type="text/plain")
        case "GetCACert":
            body, content_type = scep.ca_cert()
            return Response(body, media_type=content_type)
        case "PKIOperation":
            try:
                der = base64.b64decode(message, validate=False)
            except (binascii.Error, ValueError):
                return Response("message is not base64\n", status_code=400, media_type="text/plain")
            return await _pki_operation(request, der)
    return Response("unknown SCEP operation\n", status_code=400, media_type="text/plain")


@router.post("/scep")
async def scep_post(request: Request, operation: str = "") -> Response:
    if operation != "PKIOperation":
        return Response("unknown SCEP operation\n", status_code=400, media_type="text/plain")
    try:
        der = await read_body(request, SCEP_MAX_BYTES)
    except BodyTooLarge:
        return Response("request body too large\n", status_code=413, media_type="text/plain")
    return await _pki_operation(request, der)


async def _pki_operation(request: Request, der: bytes) -> Response:
    try:
        reply = await _container(request).scep.pki_operation(der)
    except ParseError as error:
        return Response(f"{error.reason}\n", status_code=400, media_type="text/plain")
    return Response(reply, media_type="application/x-pki-message")


@router.post("/mdm/ade/enroll")
async def ade_enroll(request: Request) -> Response:
    """The DEP profile's `url`: a device in Setup Assistant posts its signed MachineInfo (apple-protocols.md §7.5).

    The one device endpoint that answers 401: Setup Assistant's legacy authentication is Apple's basic HTTP
    authentication (003:960), so the challenge makes the device ask the user for credentials and post again."""
    container = _container(request)
    try:
        credentials = basic_credentials(request.headers.get("authorization"))
        body = await read_body(request, SCEP_MAX_BYTES)
        profile = await container.ade_enrollment.profile_for(body, credentials)
    except BodyTooLarge:
        return Response("request body too large\n", status_code=413, media_type="text/plain")
    except ParseError as error:
        return Response(f"{error.reason}\n", status_code=400, media_type="text/plain")
    except DeviceRequestRejected as error:
        return Response(f"{error.reason}\n", status_code=error.status, media_type="text/plain")
    except SoftwareUpdateRequired as required:
        return Response(required.body, status_code=403, media_type="application/json")
    except UserAuthenticationRequired as challenge:
        realm = container.settings.organization_name.replace("\\", "").replace('"', "")
        return Response(
            f"{challenge.reason}\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'},
        )
    return Response(profile, media_type=MOBILECONFIG_TYPE)


def basic_credentials(header: str | None) -> BasicCredentials | None:
    """RFC 7617 credentials (UTF-8), or None when the request carries none; garbage is a ParseError."""
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip() or len(encoded) > MAX_BASIC_CREDENTIALS:
        raise ParseError("the Authorization header is not usable Basic credentials")
    try:
        user, separator, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise ParseError("the Authorization header is not usable Basic credentials") from None
    if not separator or not user:
        raise ParseError("the Basic credentials have no user name")
    return BasicCredentials(user_principal_name=user[:320], password=password)
