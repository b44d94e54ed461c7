"""What the codecs emit, and the golden messages they read, checked against Apple's device-management YAML."""

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from muster.protocols.apple import commands, plist
from muster.protocols.apple.profiles import build_enrollment_profile

from .test_profiles import SPEC

# tests/protocols/apple/test_schema.py -> repository root -> ../shared (CI checks it out beside the repository)
SCHEMAS = Path(__file__).resolve().parents[3] / ".." / "shared" / "apple-device-management" / "mdm"
TESTDATA = Path(__file__).parent / "testdata"

TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "<string>": lambda value: isinstance(value, str),
    "<integer>": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "<real>": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "<boolean>": lambda value: isinstance(value, bool),
    "<data>": lambda value: isinstance(value, bytes),
    "<date>": lambda value: isinstance(value, datetime),
    "<dictionary>": lambda value: isinstance(value, dict),
    "<array>": lambda value: isinstance(value, list),
    "<any>": lambda value: True,
}


@cache
def schema(relative: str) -> dict[str, Any]:
    path = SCHEMAS / relative
    assert path.exists(), f"Apple's schemas are missing: expected {path.resolve()}"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def problems_in_dict(value: dict[str, Any], keys: list[dict[str, Any]], path: str, *, presence: bool) -> list[str]:
    declared = {key["key"]: key for key in keys}
    found = []
    for name, item in value.items():
        spec = declared.get(name) or declared.get("ANY")
        if spec is None:
            found.append(f"{path}.{name}: not in schema")
        else:
            found += problems_in_value(item, spec, f"{path}.{name}", presence=presence)
    if presence:
        found += [
            f"{path}.{key['key']}: required but missing"
            for key in keys
            if key.get("presence") == "required" and key["key"] != "ANY" and key["key"] not in value
        ]
    return found


def problems_in_value(value: Any, spec: dict[str, Any], path: str, *, presence: bool) -> list[str]:
    if not TYPE_CHECKS[spec["type"]](value):
        return [f"{path}: {type(value).__name__} is not {spec['type']}"]
    if "rangelist" in spec and value not in spec["rangelist"]:
        return [f"{path}: {value!r} not in {spec['rangelist']}"]
    if "format" in spec and not re.match(spec["format"], value):
        return [f"{path}: {value!r} does not match {spec['format']}"]
    subkeys = spec.get("subkeys")
    if not subkeys:
        return []
    if isinstance(value, dict):
        return problems_in_dict(value, subkeys, path, presence=presence)
    if isinstance(value, str):  # DeviceInformation's Queries: the allowed strings are listed as subkeys
        return [] if value in {key["key"] for key in subkeys} else [f"{path}: {value!r} is not a listed value"]
    if isinstance(value, list):
        return [
            problem
            for index, item in enumerate(value)
            for problem in problems_in_item(item, subkeys, f"{path}[{index}]", presence=presence)
        ]
    return []


def problems_in_item(item: Any, alternatives: list[dict[str, Any]], path: str, *, presence: bool) -> list[str]:
    """An array item must match its one item schema, or one of several (Settings items, keyed by `Item`)."""
    results = [problems_in_value(item, spec, path, presence=presence) for spec in alternatives]
    return [] if any(not result for result in results) else results[0]


def command_problems(command: dict[str, Any], relative: str) -> list[str]:
    document = schema(f"commands/{relative}")
    body = {key: value for key, value in command.items() if key != "RequestType"}
    found = problems_in_dict(body, document.get("payloadkeys") or [], "Command", presence=True)
    if command["RequestType"] != document["payload"]["requesttype"]:
        found.append(f"RequestType {command['RequestType']} is not {document['payload']['requesttype']}")
    return found


BUILT_COMMANDS = [
    ("information.device.yaml", commands.device_information()),
    (
        "information.device.yaml",
        commands.device_information(sorted(commands.KNOWN_DEVICE_QUERIES), device_attestation_nonce=b"n" * 32),
    ),
    ("information.security.yaml", commands.security_info()),
    ("application.installed.list.yaml", commands.installed_application_list()),
    (
        "application.installed.list.yaml",
        commands.installed_application_list(managed_only=True, identifiers=["com.apple.Keynote"]),
    ),
    ("profile.list.yaml", commands.profile_list(managed_only=True)),
    ("certificate.list.yaml", commands.certificate_list(managed_only=True)),
    ("profile.install.yaml", commands.install_profile(b"<plist/>")),
    ("profile.remove.yaml", commands.remove_profile("com.example.wifi")),
    ("device.lock.yaml", commands.device_lock(message="Call IT", phone_number="+1 555 0100", pin="123456")),
    (
        "device.erase.yaml",
        commands.erase_device(
            pin="123456",
            preserve_data_plan=True,
            disallow_proximity_setup=True,
            obliteration_behavior="ObliterateWithWarning",
            return_to_service={"Enabled": True, "WiFiProfileData": b"w", "MDMProfileData": b"m"},
        ),
    ),
    ("device.restart.yaml", commands.restart_device(notify_user=True)),
    ("device.shutdown.yaml", commands.shut_down_device()),
    ("passcode.clear.yaml", commands.clear_passcode(b"unlock")),
    ("settings.yaml", commands.settings_device_name("Front desk iPad")),
    ("device.configured.yaml", commands.device_configured()),
    (
        "application.install.yaml",
        commands.install_application(itunes_store_id=361309726, purchase_method=1, management_flags=5),
    ),
    (
        "application.install.yaml",
        commands.install_application(
            identifier="com.apple.Keynote",
            install_as_managed=True,
            change_management_state="Managed",
            configuration={"anything": [1, {"nested": True}]},
        ),
    ),
    ("application.install.yaml", commands.install_application(manifest_url="https://apps.example.com/m.plist")),
    ("application.remove.yaml", commands.remove_application("com.example.app")),
    ("device.lostmode.enable.yaml", commands.enable_lost_mode(message="Lost", phone_number="1", footnote="Thanks")),
    ("device.lostmode.disable.yaml", commands.disable_lost_mode()),
]


@pytest.mark.parametrize(("relative", "command"), BUILT_COMMANDS, ids=[c["RequestType"] for _, c in BUILT_COMMANDS])
def test_built_commands_match_apples_schema(relative: str, command: dict[str, Any]) -> None:
    assert command_problems(command, relative) == []


def test_the_checker_catches_mistakes() -> None:
    assert command_problems({"RequestType": "EraseDevice", "PIN": 123456}, "device.erase.yaml") == [
        "Command.PIN: int is not <string>"
    ]
    assert command_problems({"RequestType": "RemoveProfile"}, "profile.remove.yaml") == [
        "Command.Identifier: required but missing"
    ]
    assert command_problems({"RequestType": "DeviceLock", "Pin": "1"}, "device.lock.yaml") == [
        "Command.Pin: not in schema"
    ]
    assert (
        command_problems(
            {"RequestType": "Settings", "Settings": [{"Item": "DeviceName", "Name": "x"}]}, "settings.yaml"
        )
        != []
    )


def test_known_queries_are_exactly_the_schema_list() -> None:
    queries = schema("commands/information.device.yaml")["payloadkeys"][0]["subkeys"][0]["subkeys"]
    assert {query["key"] for query in queries} == commands.KNOWN_DEVICE_QUERIES


def test_user_enrollment_forbidden_matches_the_ios_schema() -> None:
    forbidden = set()
    for path in (SCHEMAS / "commands").glob("*.yaml"):
        payload = schema(f"commands/{path.name}")["payload"]
        ios = payload["supportedOS"].get("iOS") or {}
        if (ios.get("userenrollment") or {}).get("mode") == "forbidden":
            forbidden.add(payload["requesttype"])
    assert forbidden == commands.USER_ENROLLMENT_FORBIDDEN


def payload_problems(payload: dict[str, Any], relative: str) -> list[str]:
    keys = schema("profiles/CommonPayloadKeys.yaml")["payloadkeys"] + schema(f"profiles/{relative}")["payloadkeys"]
    found = problems_in_dict(payload, keys, payload["PayloadType"], presence=True)
    if payload["PayloadType"] != schema(f"profiles/{relative}")["payload"]["payloadtype"]:
        found.append(f"PayloadType {payload['PayloadType']} does not match {relative}")
    return found


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"enrollment_mode": "BYOD", "assigned_managed_apple_id": "ada@example.com"},
        {"enrollment_mode": "ADDE", "assigned_managed_apple_id": "ada@example.com", "checkin_url": None},
    ],
)
def test_enrollment_profile_matches_apples_schema(changes: dict[str, Any]) -> None:
    spec = dataclasses.replace(
        SPEC,
        scep_subject=(("O", "Example"), ("2.5.4.3", "device")),
        server_capabilities=("com.apple.mdm.per-user-connections", "com.apple.mdm.token"),
    )
    profile = build_enrollment_profile(dataclasses.replace(spec, **changes))
    top_level = schema("profiles/TopLevel.yaml")["payloadkeys"]
    assert problems_in_dict(profile, top_level, "Configuration", presence=True) == []
    files = {
        "com.apple.mdm": "com.apple.mdm.yaml",
        "com.apple.security.scep": "com.apple.security.scep.yaml",
        "com.apple.security.root": "com.apple.security.root.yaml",
    }
    for payload in profile["PayloadContent"]:
        assert payload_problems(payload, files[payload["PayloadType"]]) == []


# Keys every check-in / report carries to identify the channel (§1.3); several YAML files leave them out.
IDENTITY_KEYS = {"UDID", "EnrollmentID", "EnrollmentUserID", "UserID", "UserShortName", "UserLongName"}
REPORT_KEYS = IDENTITY_KEYS | {"Status", "CommandUUID", "ErrorChain"}
CHECKIN_SCHEMAS = {
    "authenticate": "authenticate.yaml",
    "tokenupdate": "tokenupdate.yaml",
    "checkout": "checkout.yaml",
    "userauthenticate": "userauthenticate.yaml",
    "setbootstraptoken": "setbootstraptoken.yaml",
    "getbootstraptoken": "getbootstraptoken.yaml",
    "declarativemanagement": "declarativemanagement.yaml",
    "gettoken": "gettoken.yaml",
}
# Golden files deliberately carry a few keys from "future releases" and wrong types, to test tolerance.
DELIBERATE = {
    "checkin_authenticate_ios.plist": ["Checkin.FutureKey: not in schema"],
    "checkin_tokenupdate_device.plist": ["Checkin.NewIn27: not in schema"],
    "result_deviceinformation.plist": [
        "Result.QueryResponses.NewQueryFrom2026: not in schema",
        "Result.QueryResponses.HasBattery: str is not <boolean>",
    ],
    "result_installedapplicationlist.plist": ["Result.InstalledApplicationList[1].BundleSize: str is not <integer>"],
    "result_profilelist.plist": [
        "Result.ProfileList[2].PayloadUUID: required but missing",
        "Result.ProfileList[2].PayloadIdentifier: required but missing",
    ],
    "result_certificatelist.plist": [
        "Result.CertificateList[2].Data: required but missing",
    ],
}


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("checkin_*.plist")), ids=lambda path: path.stem)
def test_golden_checkins_are_shaped_like_apples(path: Path) -> None:
    message = plist.loads(path.read_bytes())
    relative = CHECKIN_SCHEMAS.get(message["MessageType"].lower())
    if relative is None:  # ReturnToService (newer than the snapshot) and the deliberately unknown type
        assert set(message) <= IDENTITY_KEYS | {"MessageType", "Whatever"}
        return
    keys = schema(f"checkin/{relative}")["payloadkeys"]
    body = {key: value for key, value in message.items() if key not in IDENTITY_KEYS}
    assert problems_in_dict(body, keys, "Checkin", presence=False) == DELIBERATE.get(path.name, [])


RESULT_SCHEMAS = {
    "deviceinformation": "information.device.yaml",
    "securityinfo_ios": "information.security.yaml",
    "securityinfo_macos": "information.security.yaml",
    "installedapplicationlist": "application.installed.list.yaml",
    "profilelist": "profile.list.yaml",
    "certificatelist": "certificate.list.yaml",
}


@pytest.mark.parametrize("name", sorted(RESULT_SCHEMAS))
def test_golden_results_are_shaped_like_apples(name: str) -> None:
    message = plist.loads((TESTDATA / f"result_{name}.plist").read_bytes())
    keys = schema(f"commands/{RESULT_SCHEMAS[name]}")["responsekeys"]
    body = {key: value for key, value in message.items() if key not in REPORT_KEYS}
    found = problems_in_dict(body, keys, "Result", presence=True)
    assert sorted(found) == sorted(DELIBERATE.get(f"result_{name}.plist", []))
