"""MachineInfo, the signed plist a device in Setup Assistant sends to the ADE profile's `url`, and the
software-update answer that can hold its enrollment back.

Spec: apple-protocols.md §7.5 (MachineInfo, `com.apple.softwareupdate.required`) and §7.6 (the
`x-apple-aspen-deviceinfo` header of the web-view flow). Decoders raise `ParseError`, and only that.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from muster.protocols.apple import plist
from muster.protocols.apple.dep import encode_json
from muster.protocols.cms import PrivateKey, sign_attached, verify_attached
from muster.protocols.errors import ParseError


@dataclass(frozen=True)
class MachineInfo:
    """The signed plist a device in Setup Assistant POSTs to the profile `url` (§7.5)."""

    udid: str
    serial: str
    product: str
    version: str
    os_version: str | None = None
    imei: str | None = None
    meid: str | None = None
    language: str | None = None
    mdm_can_request_software_update: bool = False
    software_update_device_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def decode_machine_info(der: bytes) -> tuple[MachineInfo, x509.Certificate]:
    """Verify the CMS signature and read the MachineInfo; the caller decides whether to trust the
    signer (Apple's device CA chain is checked elsewhere)."""
    content, signer = verify_attached(der)
    obj = plist.loads(content)
    info = MachineInfo(
        udid=plist.required_string(obj, "UDID"),
        serial=plist.required_string(obj, "SERIAL"),
        product=plist.required_string(obj, "PRODUCT"),
        version=plist.required_string(obj, "VERSION"),
        os_version=plist.optional_string(obj, "OS_VERSION"),
        imei=plist.optional_string(obj, "IMEI"),
        meid=plist.optional_string(obj, "MEID"),
        language=plist.optional_string(obj, "LANGUAGE"),
        mdm_can_request_software_update=plist.optional_bool(obj, "MDM_CAN_REQUEST_SOFTWARE_UPDATE"),
        software_update_device_id=plist.optional_string(obj, "SOFTWARE_UPDATE_DEVICE_ID"),
        raw=obj,
    )
    return info, signer


def decode_machine_info_header(value: str) -> tuple[MachineInfo, x509.Certificate]:
    """The `x-apple-aspen-deviceinfo` header of the web-view flow (§7.6): base64 of the same message."""
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("x-apple-aspen-deviceinfo is not base64") from None
    return decode_machine_info(der)


def encode_machine_info(info: MachineInfo, *, certificate: x509.Certificate, key: PrivateKey) -> bytes:
    """What a virtual device sends: the MachineInfo plist in an attached SignedData."""
    values: dict[str, Any] = {
        "UDID": info.udid,
        "SERIAL": info.serial,
        "PRODUCT": info.product,
        "VERSION": info.version,
        "OS_VERSION": info.os_version,
        "IMEI": info.imei,
        "MEID": info.meid,
        "LANGUAGE": info.language,
        "SOFTWARE_UPDATE_DEVICE_ID": info.software_update_device_id,
    }
    if info.mdm_can_request_software_update:
        values["MDM_CAN_REQUEST_SOFTWARE_UPDATE"] = True
    body = plist.dumps({name: value for name, value in values.items() if value is not None})
    return sign_attached(body, certificate, key)


def software_update_required(
    os_version: str,
    build_version: str | None = None,
    message: str = "A software update is required before this device can enroll.",
    *,
    description: str | None = None,
    beta_program: tuple[str, str] | None = None,
) -> bytes:
    """The 403 JSON body `com.apple.softwareupdate.required` (§7.5). `beta_program` is (description,
    ABM seeding token) for `RequireBetaProgram` (iOS 17.5 / macOS 14.5)."""
    details: dict[str, Any] = {"OSVersion": os_version}
    if build_version is not None:
        details["BuildVersion"] = build_version
    if beta_program is not None:
        details["RequireBetaProgram"] = {"Description": beta_program[0], "Token": beta_program[1]}
    body: dict[str, Any] = {"code": "com.apple.softwareupdate.required", "message": message, "details": details}
    if description is not None:
        body["description"] = description
    return encode_json(body)
