"""Check-in protocol messages (spec: apple-protocols.md §1).

`decode_checkin` turns a check-in body into one typed, frozen message. Every message keeps the whole decoded
plist in `raw` (unknown keys from newer OS releases included) and its `EnrollmentIdentity` (§1.3). Secrets
(tokens, digests, the raw plist) are left out of `repr` so they never reach a log line.

The simulator side builds check-in bodies with `identity_keys` + `encode_checkin`, which take Apple's key
names verbatim:

    encode_checkin("TokenUpdate", identity_keys(identity), Topic=topic, Token=token, PushMagic=magic)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from muster.protocols.apple import plist
from muster.protocols.apple.plist import (
    optional_bool,
    optional_data,
    optional_dict,
    optional_string,
    required_data,
    required_string,
)
from muster.protocols.errors import ParseError

SHARED_IPAD_USER_ID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"
# UDIDs, EnrollmentIDs and user GUIDs are at most a few dozen characters; UserShortName (a Managed Apple
# Account on Shared iPad) may be an e-mail address of up to 256. An enrollment id is "<device>:<user>".
MAX_ID_LENGTH = 128


class EnrollmentKind(StrEnum):
    """Which channel of which enrollment style a message belongs to (§1.3 table)."""

    DEVICE = "device"
    USER_ENROLLMENT = "user_enrollment"
    USER_CHANNEL = "user_channel"
    SHARED_IPAD_USER = "shared_ipad_user"
    USER_ENROLLMENT_USER = "user_enrollment_user"


_USER_KINDS = frozenset(
    {EnrollmentKind.USER_CHANNEL, EnrollmentKind.SHARED_IPAD_USER, EnrollmentKind.USER_ENROLLMENT_USER}
)


@dataclass(frozen=True)
class EnrollmentIdentity:
    """The channel a request comes from, normalised the way NanoMDM does (§1.3)."""

    device_id: str
    user_id: str | None
    kind: EnrollmentKind

    def __post_init__(self) -> None:
        if not self.device_id:
            raise ValueError("device_id must not be empty")
        if self.is_user_channel != bool(self.user_id):
            raise ValueError(f"{self.kind} enrollment {'needs' if self.is_user_channel else 'has no'} user_id")

    @property
    def id(self) -> str:
        """`<device>` for a device channel, `<device>:<user>` for a user channel."""
        return f"{self.device_id}:{self.user_id}" if self.user_id else self.device_id

    @property
    def is_user_channel(self) -> bool:
        return self.kind in _USER_KINDS


def identity_from(message: Mapping[str, Any]) -> EnrollmentIdentity:
    """Resolve the identity keys of a check-in or command report (§1.3)."""
    udid = optional_string(message, "UDID", max_length=MAX_ID_LENGTH)
    if udid:
        return _device_enrollment_identity(message, udid)
    enrollment_id = optional_string(message, "EnrollmentID", max_length=MAX_ID_LENGTH)
    if enrollment_id:
        enrollment_user_id = optional_string(message, "EnrollmentUserID", max_length=MAX_ID_LENGTH)
        if enrollment_user_id:
            return EnrollmentIdentity(enrollment_id, enrollment_user_id, EnrollmentKind.USER_ENROLLMENT_USER)
        return EnrollmentIdentity(enrollment_id, None, EnrollmentKind.USER_ENROLLMENT)
    raise ParseError("missing UDID or EnrollmentID")


def _device_enrollment_identity(message: Mapping[str, Any], udid: str) -> EnrollmentIdentity:
    user_id = optional_string(message, "UserID", max_length=MAX_ID_LENGTH)
    if not user_id:
        return EnrollmentIdentity(udid, None, EnrollmentKind.DEVICE)
    if user_id.upper() != SHARED_IPAD_USER_ID:
        return EnrollmentIdentity(udid, user_id, EnrollmentKind.USER_CHANNEL)
    # Shared iPad users all share the all-F UserID; the Managed Apple Account tells them apart.
    short_name = optional_string(message, "UserShortName")
    if not short_name:
        raise ParseError("missing UserShortName for a Shared iPad user")
    return EnrollmentIdentity(udid, short_name, EnrollmentKind.SHARED_IPAD_USER)


def identity_keys(identity: EnrollmentIdentity) -> dict[str, str]:
    """The plist identity keys a device sends for `identity` (inverse of `identity_from`)."""
    device, user = identity.device_id, identity.user_id or ""
    match identity.kind:
        case EnrollmentKind.DEVICE:
            return {"UDID": device}
        case EnrollmentKind.USER_CHANNEL:
            return {"UDID": device, "UserID": user}
        case EnrollmentKind.SHARED_IPAD_USER:
            return {"UDID": device, "UserID": SHARED_IPAD_USER_ID, "UserShortName": user}
        case EnrollmentKind.USER_ENROLLMENT:
            return {"EnrollmentID": device}
        case EnrollmentKind.USER_ENROLLMENT_USER:
            return {"EnrollmentID": device, "EnrollmentUserID": user}


@dataclass(frozen=True, kw_only=True)
class _Checkin:
    identity: EnrollmentIdentity
    raw: dict[str, Any] = field(repr=False, hash=False)


@dataclass(frozen=True, kw_only=True)
class Authenticate(_Checkin):
    """§1.4: the MDM payload is being installed; the macOS-only device_name, model, model_name may be None."""

    topic: str
    serial_number: str | None = None
    os_version: str | None = None
    build_version: str | None = None
    product_name: str | None = None
    model: str | None = None
    model_name: str | None = None
    device_name: str | None = None
    imei: str | None = None
    meid: str | None = None


@dataclass(frozen=True, kw_only=True)
class TokenUpdate(_Checkin):
    """§1.5: APNs token and push magic; the first one after Authenticate completes enrollment."""

    topic: str
    token: bytes
    push_magic: str = field(repr=False)
    unlock_token: bytes | None = field(default=None, repr=False)
    awaiting_configuration: bool = False
    not_on_console: bool = False
    user_short_name: str | None = None
    user_long_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class CheckOut(_Checkin):
    """§1.6: the MDM profile was removed (best effort)."""

    topic: str


@dataclass(frozen=True, kw_only=True)
class UserAuthenticate(_Checkin):
    """§1.6: macOS user-channel handshake; `digest_response` is None on the first request."""

    digest_response: str | None = field(default=None, repr=False)
    user_short_name: str | None = None
    user_long_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class SetBootstrapToken(_Checkin):
    """§1.7: escrow a bootstrap token; None means "delete the stored token"."""

    bootstrap_token: bytes | None = field(default=None, repr=False)
    awaiting_configuration: bool = False


@dataclass(frozen=True, kw_only=True)
class GetBootstrapToken(_Checkin):
    """§1.7: the Mac asks for its escrowed bootstrap token."""

    awaiting_configuration: bool = False


@dataclass(frozen=True, kw_only=True)
class DeclarativeManagement(_Checkin):
    """§1.8: a declarative-management request to `endpoint`, with optional JSON `data`."""

    endpoint: str
    data: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class GetToken(_Checkin):
    """§1.9: the device asks for a token of `token_service_type` (for example `com.apple.maid`)."""

    token_service_type: str
    token_parameters: dict[str, Any] = field(default_factory=dict, repr=False, hash=False)


@dataclass(frozen=True, kw_only=True)
class ReturnToService(_Checkin):
    """§1.10: the device asks for its Return to Service configuration (iOS 26)."""


@dataclass(frozen=True, kw_only=True)
class UnknownCheckin(_Checkin):
    """A MessageType this codec does not know; kept whole in `raw`."""

    message_type: str


CheckinMessage = (
    Authenticate
    | TokenUpdate
    | CheckOut
    | UserAuthenticate
    | SetBootstrapToken
    | GetBootstrapToken
    | DeclarativeManagement
    | GetToken
    | ReturnToService
    | UnknownCheckin
)


def decode_checkin(body: bytes) -> CheckinMessage:
    """Decode a check-in request body (§1.2); ParseError on anything malformed."""
    message = plist.loads(body)
    message_type = required_string(message, "MessageType", max_length=64)
    identity = identity_from(message)
    decoder = _DECODERS.get(message_type)
    if decoder is None:
        return UnknownCheckin(identity=identity, raw=message, message_type=message_type)
    return decoder(identity, message)


def _authenticate(identity: EnrollmentIdentity, m: dict[str, Any]) -> Authenticate:
    return Authenticate(
        identity=identity,
        raw=m,
        topic=required_string(m, "Topic"),
        serial_number=optional_string(m, "SerialNumber"),
        os_version=optional_string(m, "OSVersion"),
        build_version=optional_string(m, "BuildVersion"),
        product_name=optional_string(m, "ProductName"),
        model=optional_string(m, "Model"),
        model_name=optional_string(m, "ModelName"),
        device_name=optional_string(m, "DeviceName"),
        imei=optional_string(m, "IMEI"),
        meid=optional_string(m, "MEID"),
    )


def _token_update(identity: EnrollmentIdentity, m: dict[str, Any]) -> TokenUpdate:
    return TokenUpdate(
        identity=identity,
        raw=m,
        topic=required_string(m, "Topic"),
        token=required_data(m, "Token"),
        push_magic=required_string(m, "PushMagic", max_length=128),
        unlock_token=optional_data(m, "UnlockToken") or None,
        awaiting_configuration=optional_bool(m, "AwaitingConfiguration"),
        not_on_console=optional_bool(m, "NotOnConsole"),
        user_short_name=optional_string(m, "UserShortName"),
        user_long_name=optional_string(m, "UserLongName"),
    )


def _check_out(identity: EnrollmentIdentity, m: dict[str, Any]) -> CheckOut:
    return CheckOut(identity=identity, raw=m, topic=required_string(m, "Topic"))


def _user_authenticate(identity: EnrollmentIdentity, m: dict[str, Any]) -> UserAuthenticate:
    return UserAuthenticate(
        identity=identity,
        raw=m,
        digest_response=optional_string(m, "DigestResponse"),
        user_short_name=optional_string(m, "UserShortName"),
        user_long_name=optional_string(m, "UserLongName"),
    )


def _set_bootstrap_token(identity: EnrollmentIdentity, m: dict[str, Any]) -> SetBootstrapToken:
    return SetBootstrapToken(
        identity=identity,
        raw=m,
        bootstrap_token=optional_data(m, "BootstrapToken") or None,
        awaiting_configuration=optional_bool(m, "AwaitingConfiguration"),
    )


def _get_bootstrap_token(identity: EnrollmentIdentity, m: dict[str, Any]) -> GetBootstrapToken:
    return GetBootstrapToken(identity=identity, raw=m, awaiting_configuration=optional_bool(m, "AwaitingConfiguration"))


def _declarative_management(identity: EnrollmentIdentity, m: dict[str, Any]) -> DeclarativeManagement:
    return DeclarativeManagement(
        identity=identity,
        raw=m,
        endpoint=required_string(m, "Endpoint"),
        data=optional_data(m, "Data"),
    )


def _get_token(identity: EnrollmentIdentity, m: dict[str, Any]) -> GetToken:
    return GetToken(
        identity=identity,
        raw=m,
        token_service_type=required_string(m, "TokenServiceType"),
        token_parameters=optional_dict(m, "TokenParameters") or {},
    )


def _return_to_service(identity: EnrollmentIdentity, m: dict[str, Any]) -> ReturnToService:
    return ReturnToService(identity=identity, raw=m)


_DECODERS: dict[str, Callable[[EnrollmentIdentity, dict[str, Any]], CheckinMessage]] = {
    "Authenticate": _authenticate,
    "TokenUpdate": _token_update,
    "CheckOut": _check_out,
    "UserAuthenticate": _user_authenticate,
    "SetBootstrapToken": _set_bootstrap_token,
    "GetBootstrapToken": _get_bootstrap_token,
    "DeclarativeManagement": _declarative_management,
    "GetToken": _get_token,
    "ReturnToService": _return_to_service,
}


def encode_user_authenticate_challenge(challenge: str) -> bytes:
    """§1.6 first reply: `{DigestChallenge}`; an empty challenge means "no AuthToken needed"."""
    return plist.dumps({"DigestChallenge": challenge})


def encode_user_authenticate_token(auth_token: str) -> bytes:
    """§1.6 second reply: `{AuthToken}`; an empty token tells the Mac the password was wrong."""
    return plist.dumps({"AuthToken": auth_token})


def encode_bootstrap_token(token: bytes) -> bytes:
    """§1.7 GetBootstrapToken reply (answer with an empty body instead when no token is stored)."""
    return plist.dumps({"BootstrapToken": token})


def encode_get_token(token_data: bytes) -> bytes:
    """§1.9 GetToken reply (a string token is sent as its UTF-8 bytes)."""
    return plist.dumps({"TokenData": token_data})


def encode_return_to_service(
    *,
    enabled: bool,
    wifi_profile_data: bytes | None = None,
    mdm_profile_data: bytes | None = None,
    bootstrap_token: bytes | None = None,
) -> bytes:
    """§1.10 ReturnToService check-in reply."""
    config: dict[str, Any] = {"Enabled": enabled}
    optional = {
        "WiFiProfileData": wifi_profile_data,
        "MDMProfileData": mdm_profile_data,
        "BootstrapToken": bootstrap_token,
    }
    config.update({key: value for key, value in optional.items() if value is not None})
    return plist.dumps({"ReturnToService": config})


def encode_checkin(message_type: str, identity_keys: Mapping[str, Any], **fields: Any) -> bytes:
    """Build a check-in body as a device would (for simulators and tests).

    `identity_keys` is usually `identity_keys(identity)`; `fields` use Apple's key names verbatim
    (`Topic=...`, `Token=b"..."`, `PushMagic=...`). Fields whose value is None are left out.
    """
    if not message_type:
        raise ValueError("message_type must not be empty")
    message: dict[str, Any] = {"MessageType": message_type, **identity_keys}
    message.update({key: value for key, value in fields.items() if value is not None})
    return plist.dumps(message)
