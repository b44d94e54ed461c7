"""Apple's ADE ("DEP") API for ABM/ASM: the JSON of devices, fetch/sync pages, profiles, assignments, account.

Spec: apple-protocols.md §7.3 (endpoints), §7.4 (profile). Token and OAuth are `dep_token`, errors `dep_errors`,
MachineInfo `machine_info`; HTTP is `muster.clients.dep` (our side) and `muster.simulators.abm` (Apple's).
Decoders keep unknown keys in `raw` and raise `ParseError`, and only that, on malformed or incomplete input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from muster.protocols.apple.dep_errors import DepErrorCode
from muster.protocols.errors import ParseError

MEDIA_TYPE = "application/json;charset=UTF8"  # NanoDEP's exact value (§7)
SESSION_HEADER = "X-ADM-Auth-Session"
PROTOCOL_VERSION_HEADER = "X-Server-Protocol-Version"
MAX_SERIALS_PER_REQUEST = 1000  # §7.3: assign at most 1,000 serials per request
MAX_FETCH_LIMIT = 1000
DEFAULT_FETCH_LIMIT = 100
MAX_JSON_BYTES = 8 * 1024 * 1024  # a page of 1,000 devices is well under 1 MiB


# --- JSON helpers, shared with dep_token ---------------------------------------------------------------


def json_object(body: bytes | Mapping[str, Any], what: str) -> dict[str, Any]:
    """A size-limited JSON object; `what` names it in the `ParseError`."""
    if isinstance(body, Mapping):
        return dict(body)
    if len(body) > MAX_JSON_BYTES:
        raise ParseError(f"{what} larger than {MAX_JSON_BYTES} bytes")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise ParseError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise ParseError(f"{what} must be a JSON object")
    return value


def encode_json(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as every DEP body is sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _string(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ParseError(f"{key} must be a string")
    return value


def required_string(obj: Mapping[str, Any], key: str) -> str:
    """`obj[key]`, which must be a non-empty string."""
    value = _string(obj, key)
    if not value:
        raise ParseError(f"missing {key}")
    return value


def _bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise ParseError(f"{key} must be a boolean")
    return value


def _required_bool(obj: Mapping[str, Any], key: str) -> bool:
    value = _bool(obj, key)
    if value is None:
        raise ParseError(f"missing {key}")
    return value


def _strings(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ParseError(f"{key} must be a list of strings")
    return tuple(value)


def _time(obj: Mapping[str, Any], key: str) -> datetime | None:
    value = _string(obj, key)
    return None if value is None else parse_time(value, key)


def parse_time(value: str, what: str = "time stamp") -> datetime:
    """An ISO 8601 time stamp as Apple writes them ("2015-01-14T21:27:41Z"); naive ones are UTC."""
    try:
        return _utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise ParseError(f"{what} is not an ISO 8601 time stamp") from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Apple's time stamp form, in UTC with a `Z`."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Devices (§7.3) --------------------------------------------------------------------------------------


class OpType(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


class ProfileStatus(StrEnum):
    EMPTY = "empty"
    ASSIGNED = "assigned"
    PUSHED = "pushed"
    REMOVED = "removed"


_DEVICE_TIMES = frozenset({"profile_assign_time", "profile_push_time", "device_assigned_date", "op_date"})


@dataclass(frozen=True)
class DepDevice:
    """Apple's Device object (§7.3). `op_type`/`op_date` come only from sync, `response_status` only from
    device details; enum-like fields stay strings so values from newer releases pass through."""

    serial_number: str
    model: str
    description: str | None = None
    color: str | None = None
    asset_tag: str | None = None
    os: str | None = None
    device_family: str | None = None
    profile_uuid: str | None = None
    profile_status: str | None = None
    profile_assign_time: datetime | None = None
    profile_push_time: datetime | None = None
    device_assigned_date: datetime | None = None
    device_assigned_by: str | None = None
    op_type: str | None = None
    op_date: datetime | None = None
    response_status: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.raw)
        for name in _DEVICE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = format_time(value) if isinstance(value, datetime) else value
        return out


_DEVICE_FIELDS = tuple(item.name for item in fields(DepDevice) if item.name != "raw")


def decode_device(obj: Any) -> DepDevice:
    """One Device object; `model` is required except on deleted and inaccessible records."""
    if not isinstance(obj, dict):
        raise ParseError("device must be a JSON object")
    values: dict[str, Any] = {name: (_time if name in _DEVICE_TIMES else _string)(obj, name) for name in _DEVICE_FIELDS}
    live = values["op_type"] != OpType.DELETED and values["response_status"] in (None, "SUCCESS")
    values["serial_number"] = required_string(obj, "serial_number")
    values["model"] = required_string(obj, "model") if live else values["model"] or ""
    return DepDevice(**values, raw=obj)


@dataclass(frozen=True)
class FetchPage:
    """One FetchDeviceResponse of fetch or sync (§7.3)."""

    cursor: str
    devices: tuple[DepDevice, ...]
    fetched_until: datetime | None
    more_to_follow: bool


def decode_fetch_page(body: bytes) -> FetchPage:
    """A fetch/sync answer. `fetched_until` is informational, so its absence is tolerated."""
    obj = json_object(body, "device list")
    devices = obj.get("devices") or []
    if not isinstance(devices, list):
        raise ParseError("devices must be a list")
    return FetchPage(
        cursor=required_string(obj, "cursor"),
        devices=tuple(decode_device(device) for device in devices),
        fetched_until=_time(obj, "fetched_until"),
        more_to_follow=_required_bool(obj, "more_to_follow"),
    )


def encode_fetch_page(page: FetchPage) -> bytes:
    body: dict[str, Any] = {
        "cursor": page.cursor,
        "devices": [device.to_json() for device in page.devices],
        "more_to_follow": page.more_to_follow,
    }
    if page.fetched_until is not None:
        body["fetched_until"] = format_time(page.fetched_until)
    return encode_json(body)


def decode_device_details(body: bytes) -> dict[str, DepDevice]:
    """`POST /devices`: serial -> Device, each with its `response_status`."""
    obj = json_object(body, "device details")
    devices = obj.get("devices") or {}
    if not isinstance(devices, dict):
        raise ParseError("devices must be an object")
    return {serial: decode_device({"serial_number": serial, **_object(entry)}) for serial, entry in devices.items()}


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError("expected a JSON object")
    return value


def encode_cursor_request(cursor: str | None, limit: int | None) -> bytes:
    return encode_json({key: value for key, value in (("cursor", cursor), ("limit", limit)) if value is not None})


def decode_cursor_request(body: bytes) -> tuple[str | None, int | None]:
    """(cursor, limit) of a fetch or sync request; an empty body asks for the first page."""
    obj = json_object(body, "request") if body.strip() else {}
    limit = obj.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise ParseError("limit must be an integer")
    return _string(obj, "cursor") or None, limit


def encode_serials_request(serials: Iterable[str], profile_uuid: str | None = None) -> bytes:
    body: dict[str, Any] = {"devices": list(serials)}
    if profile_uuid is not None:
        body["profile_uuid"] = profile_uuid
    return encode_json(body)


def decode_serials_request(body: bytes) -> tuple[str | None, tuple[str, ...]]:
    """(profile_uuid, serials) of an assign, remove, details or disown request."""
    obj = json_object(body, "request") if body.strip() else {}
    return _string(obj, "profile_uuid") or None, _strings(obj, "devices")


# --- Profiles (§7.4) ------------------------------------------------------------------------------------


class ProfileRejected(ParseError):
    """A profile Apple would refuse; `codes` are Apple's error names (the first is what Apple answers)."""

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = tuple(codes)
        super().__init__(", ".join(self.codes))


_LANGUAGE = re.compile(r"[a-z]{2,3}")
_REGION = re.compile(r"[A-Z]{2}")
_PROFILE_LISTS = frozenset({"skip_setup_items", "anchor_certs", "supervising_host_certs", "devices"})
_PROFILE_BOOLS = frozenset(
    {
        "allow_pairing",
        "is_supervised",
        "is_multi_user",
        "is_mandatory",
        "is_mdm_removable",
        "await_device_configured",
        "auto_advance_setup",
        "is_return_to_service",
        "do_not_use_profile_from_backup",
    }
)
# field -> (Apple's error name, maximum characters); empty values are invalid too (§7.4)
_PROFILE_LENGTHS = {
    "profile_name": (DepErrorCode.CONFIG_NAME_INVALID, 125),
    "url": (DepErrorCode.CONFIG_URL_INVALID, 2000),
    "department": (DepErrorCode.DEPARTMENT_INVALID, 125),
    "support_phone_number": (DepErrorCode.SUPPORT_PHONE_INVALID, 50),
    "support_email_address": (DepErrorCode.SUPPORT_EMAIL_INVALID, 250),
    "org_magic": (DepErrorCode.MAGIC_INVALID, 256),
}


@dataclass(frozen=True)
class DepProfile:
    """An ADE enrollment profile as `POST /profile` takes it (§7.4). None and empty lists are left out
    of the JSON, so Apple's defaults apply."""

    profile_name: str
    url: str
    allow_pairing: bool | None = None
    is_supervised: bool | None = None
    is_multi_user: bool | None = None
    is_mandatory: bool | None = None
    is_mdm_removable: bool | None = None
    await_device_configured: bool | None = None
    auto_advance_setup: bool | None = None
    skip_setup_items: tuple[str, ...] = ()
    department: str | None = None
    support_phone_number: str | None = None
    support_email_address: str | None = None
    org_magic: str | None = None
    anchor_certs: tuple[str, ...] = ()
    supervising_host_certs: tuple[str, ...] = ()
    configuration_web_url: str | None = None
    language: str | None = None
    region: str | None = None
    is_return_to_service: bool | None = None
    do_not_use_profile_from_backup: bool | None = None
    devices: tuple[str, ...] = ()
    profile_uuid: str | None = None  # set by Apple, returned by GET /profile

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and value != ():
                out[item.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: bytes | Mapping[str, Any]) -> DepProfile:
        """Decode a profile; a missing name or URL raises `ProfileRejected` with Apple's code."""
        obj = json_object(data, "profile")
        if obj.get("profile_name") is None:
            raise ProfileRejected([DepErrorCode.CONFIG_NAME_REQUIRED])
        if obj.get("url") is None:
            raise ProfileRejected([DepErrorCode.CONFIG_URL_REQUIRED])
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in _PROFILE_LISTS:
                values[item.name] = _strings(obj, item.name)
            elif item.name in _PROFILE_BOOLS:
                values[item.name] = _bool(obj, item.name)
            else:
                values[item.name] = _string(obj, item.name)
        return cls(**values)

    def problems(self) -> list[DepErrorCode]:
        """Apple's error names for every limit this profile breaks (§7.4)."""
        found = [
            code
            for name, (code, limit) in _PROFILE_LENGTHS.items()
            if (value := getattr(self, name)) is not None and not 0 < len(value) <= limit
        ]
        if DepErrorCode.CONFIG_URL_INVALID not in found and not _is_http_url(self.url):
            found.append(DepErrorCode.CONFIG_URL_INVALID)
        if self.is_mdm_removable is False and self.is_supervised is not True:
            found.append(DepErrorCode.FLAGS_INVALID)
        bad_language = self.language is not None and not _LANGUAGE.fullmatch(self.language)
        if bad_language or (self.region is not None and not _REGION.fullmatch(self.region)):
            found.append(DepErrorCode.LOCALE_INVALID)
        return found

    def validate(self) -> None:
        """Raise `ProfileRejected` when Apple would answer 400 to this profile."""
        problems = self.problems()
        if problems:
            raise ProfileRejected(problems)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.netloc) and not any(c.isspace() for c in url)


# --- Assignment results ---------------------------------------------------------------------------------


class AssignmentStatus(StrEnum):
    SUCCESS = "SUCCESS"
    NOT_ACCESSIBLE = "NOT_ACCESSIBLE"
    FAILED = "FAILED"
    THROTTLED = "THROTTLED"  # protocol version 9 and later


@dataclass(frozen=True)
class AssignmentResult:
    """Per-serial outcome of define, assign, remove or disown (§7.3). An HTTP 200 may still carry
    FAILED serials: record and retry them (GUIDE §2)."""

    profile_uuid: str
    devices: Mapping[str, str]
    retry_after_seconds: int | None = None  # protocol version 10 and later, with THROTTLED

    def serials_with(self, status: AssignmentStatus) -> list[str]:
        return [serial for serial, value in self.devices.items() if value == status]

    @property
    def all_succeeded(self) -> bool:
        return all(value == AssignmentStatus.SUCCESS for value in self.devices.values())


def decode_assignment(body: bytes) -> AssignmentResult:
    """An Assign/Define/ClearProfile response; `profile_uuid` is empty where Apple leaves it out."""
    obj = json_object(body, "assignment result")
    devices = obj.get("devices") or {}
    if not isinstance(devices, dict) or not all(isinstance(value, str) for value in devices.values()):
        raise ParseError("devices must map serial numbers to status strings")
    retry = obj.get("retry_after_seconds")
    if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool) or retry < 0):
        raise ParseError("retry_after_seconds must be a non-negative integer")
    return AssignmentResult(_string(obj, "profile_uuid") or "", devices, retry)


def encode_assignment(result: AssignmentResult) -> bytes:
    body: dict[str, Any] = {"devices": dict(result.devices)}
    if result.profile_uuid:
        body["profile_uuid"] = result.profile_uuid
    if result.retry_after_seconds is not None:
        body["retry_after_seconds"] = result.retry_after_seconds
    return encode_json(body)


# --- Account ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepAccount:
    """`GET /account` (§7.3): the MDM server and organisation the token belongs to."""

    server_name: str
    server_uuid: str
    admin_id: str | None = None
    org_name: str | None = None
    org_email: str | None = None
    org_phone: str | None = None
    org_address: str | None = None
    org_id: str | None = None
    org_id_hash: str | None = None
    org_type: str | None = None
    org_version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def decode_account(body: bytes) -> DepAccount:
    obj = json_object(body, "account")
    values: dict[str, Any] = {item.name: _string(obj, item.name) for item in fields(DepAccount) if item.name != "raw"}
    values["server_name"] = required_string(obj, "server_name")
    values["server_uuid"] = required_string(obj, "server_uuid")
    return DepAccount(**values, raw=obj)


def encode_account(account: DepAccount) -> bytes:
    values = {item.name: getattr(account, item.name) for item in fields(account) if item.name != "raw"}
    return encode_json({**account.raw, **{name: value for name, value in values.items() if value is not None}})
