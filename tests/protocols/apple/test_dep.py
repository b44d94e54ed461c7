import base64
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple import dep
from muster.protocols.apple.dep import AssignmentStatus, DepDevice, DepProfile, FetchPage, ProfileRejected
from muster.protocols.apple.dep_errors import DepErrorCode
from muster.protocols.errors import ParseError

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
GARBAGE_JSON = st.binary(max_size=400) | JSON_VALUES.map(lambda value: json.dumps(value).encode())


# --- devices --------------------------------------------------------------------------------------------

APPLE_PAGE: dict[str, Any] = {
    "cursor": "MTU1NjE0NTQ2MjAwMA==",
    "fetched_until": "2019-04-24T22:37:42Z",
    "more_to_follow": False,
    "devices": [
        {
            "serial_number": "C8TJ500QF1MN",
            "model": "IPAD",
            "description": "IPAD WI-FI 16GB",
            "color": "BLACK",
            "asset_tag": "233",
            "profile_status": "assigned",
            "profile_uuid": "43BC8A6A3A5E4F46B5D6A4E8C6C3B0F1",
            "profile_assign_time": "2013-01-01T00:00:00Z",
            "device_assigned_date": "2013-01-01T00:00:00Z",
            "device_assigned_by": "admin@example.com",
            "os": "iPadOS",
            "device_family": "iPad",
            "wifi_mac_address": "00:11:22:33:44:55",
        },
        {"serial_number": "C8TJ500QF1MO", "op_type": "deleted", "op_date": "2019-04-24T22:30:00.123Z"},
    ],
}


def test_decode_apple_shaped_page_keeps_unknown_keys() -> None:
    page = dep.decode_fetch_page(json.dumps(APPLE_PAGE).encode())
    ipad, deleted = page.devices

    assert (page.cursor, page.more_to_follow) == ("MTU1NjE0NTQ2MjAwMA==", False)
    assert page.fetched_until == datetime(2019, 4, 24, 22, 37, 42, tzinfo=UTC)
    assert (ipad.serial_number, ipad.model, ipad.os, ipad.device_family) == ("C8TJ500QF1MN", "IPAD", "iPadOS", "iPad")
    assert ipad.profile_assign_time == datetime(2013, 1, 1, tzinfo=UTC)
    assert ipad.raw["wifi_mac_address"] == "00:11:22:33:44:55"
    assert (deleted.op_type, deleted.model) == (dep.OpType.DELETED, "")
    assert deleted.op_date == datetime(2019, 4, 24, 22, 30, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cursor": None}, "missing cursor"),
        ({"more_to_follow": None}, "missing more_to_follow"),
        ({"more_to_follow": "yes"}, "more_to_follow must be a boolean"),
        ({"devices": [{"serial_number": "X"}]}, "missing model"),
        ({"devices": [{"model": "IPAD"}]}, "missing serial_number"),
        ({"devices": [{"serial_number": "X", "model": "M", "op_date": "yesterday"}]}, "op_date"),
        ({"devices": {"X": {}}}, "devices must be a list"),
    ],
)
def test_page_missing_required_fields_is_refused(change: dict[str, Any], reason: str) -> None:
    body = {key: value for key, value in {**APPLE_PAGE, **change}.items() if value is not None}

    with pytest.raises(ParseError, match=reason):
        dep.decode_fetch_page(json.dumps(body).encode())


TIMES = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))
TEXT = st.none() | st.text(max_size=12)
DEVICES = st.builds(
    DepDevice,
    serial_number=st.text(min_size=1, max_size=12),
    model=st.text(min_size=1, max_size=12),
    description=TEXT,
    color=TEXT,
    os=TEXT,
    profile_uuid=TEXT,
    profile_status=st.none() | st.sampled_from(list(dep.ProfileStatus)),
    profile_assign_time=TIMES,
    device_assigned_date=TIMES,
    op_type=st.none() | st.sampled_from(list(dep.OpType)),
    op_date=TIMES,
)


@given(st.text(min_size=1, max_size=30), st.lists(DEVICES, max_size=5), TIMES, st.booleans())
def test_fetch_page_round_trip(cursor: str, devices: list[DepDevice], until: datetime | None, more: bool) -> None:
    page = FetchPage(cursor, tuple(devices), until, more)

    assert dep.decode_fetch_page(dep.encode_fetch_page(page)) == page


def test_device_details_report_inaccessible_serials() -> None:
    body = {"devices": {"C8TJ500QF1MN": {**APPLE_PAGE["devices"][0], "response_status": "SUCCESS"}}}
    body["devices"]["UNKNOWN1"] = {"response_status": "NOT_ACCESSIBLE"}

    details = dep.decode_device_details(json.dumps(body).encode())

    assert details["C8TJ500QF1MN"].model == "IPAD"
    assert details["UNKNOWN1"] == DepDevice("UNKNOWN1", "", response_status="NOT_ACCESSIBLE")


def test_requests_are_compact_json() -> None:
    assert dep.encode_cursor_request(None, 1000) == b'{"limit":1000}'
    assert dep.encode_cursor_request("abc", None) == b'{"cursor":"abc"}'
    assert dep.encode_serials_request(["A", "B"], "P1") == b'{"devices":["A","B"],"profile_uuid":"P1"}'
    assert dep.decode_serials_request(b'{"devices":["A"],"profile_uuid":"P1"}') == ("P1", ("A",))
    assert dep.decode_cursor_request(b"") == (None, None)
    assert dep.decode_cursor_request(b'{"cursor":"c","limit":5}') == ("c", 5)


@pytest.mark.parametrize(
    "decoder",
    [
        dep.decode_fetch_page,
        dep.decode_device_details,
        dep.decode_assignment,
        dep.decode_account,
        dep.decode_cursor_request,
        dep.decode_serials_request,
        DepProfile.from_json,
    ],
)
@given(body=GARBAGE_JSON)
def test_garbage_dep_json_raises_only_parse_error(decoder: Any, body: bytes) -> None:
    with contextlib.suppress(ParseError):
        decoder(body)


# --- profiles -------------------------------------------------------------------------------------------

PROFILE = DepProfile(
    profile_name="Corporate iPads",
    url="https://mdm.example.com/mdm/ade/enroll",
    is_supervised=True,
    is_mandatory=True,
    is_mdm_removable=False,
    await_device_configured=True,
    skip_setup_items=("Location", "Restore", "Siri"),
    department="IT",
    support_phone_number="+1 555 0100",
    support_email_address="it@example.com",
    org_magic="A1B2C3D4",
    anchor_certs=(base64.b64encode(b"\x30\x03\x02\x01\x01").decode(),),
    language="en",
    region="US",
    devices=("C8TJ500QF1MN",),
)


def test_profile_json_round_trip_leaves_out_defaults() -> None:
    document = PROFILE.to_json()

    assert document["skip_setup_items"] == ["Location", "Restore", "Siri"]
    assert "allow_pairing" not in document and "configuration_web_url" not in document
    assert DepProfile.from_json(dep.encode_json(document)) == PROFILE
    PROFILE.validate()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"profile_name": ""}, DepErrorCode.CONFIG_NAME_INVALID),
        ({"profile_name": "n" * 126}, DepErrorCode.CONFIG_NAME_INVALID),
        ({"url": "https://example.com/" + "u" * 1981}, DepErrorCode.CONFIG_URL_INVALID),
        ({"url": "not a url"}, DepErrorCode.CONFIG_URL_INVALID),
        ({"department": "d" * 126}, DepErrorCode.DEPARTMENT_INVALID),
        ({"support_phone_number": "5" * 51}, DepErrorCode.SUPPORT_PHONE_INVALID),
        ({"support_email_address": "e" * 251}, DepErrorCode.SUPPORT_EMAIL_INVALID),
        ({"org_magic": ""}, DepErrorCode.MAGIC_INVALID),
        ({"org_magic": "m" * 257}, DepErrorCode.MAGIC_INVALID),
        ({"is_supervised": False}, DepErrorCode.FLAGS_INVALID),
        ({"is_supervised": None}, DepErrorCode.FLAGS_INVALID),
        ({"language": "english"}, DepErrorCode.LOCALE_INVALID),
        ({"region": "usa"}, DepErrorCode.LOCALE_INVALID),
    ],
)
def test_profile_limits_use_apples_error_names(change: dict[str, Any], code: DepErrorCode) -> None:
    profile = DepProfile(**{**PROFILE.to_json(), **change})

    with pytest.raises(ProfileRejected) as rejected:
        profile.validate()
    assert rejected.value.codes == (code,)


def test_profile_at_the_limits_is_valid() -> None:
    DepProfile(
        profile_name="n" * 125,
        url="https://example.com/" + "u" * 1980,
        department="d" * 125,
        support_phone_number="5" * 50,
        support_email_address="e" * 250,
        org_magic="m" * 256,
        is_mdm_removable=True,
    ).validate()


@pytest.mark.parametrize(
    ("missing", "code"), [("profile_name", "CONFIG_NAME_REQUIRED"), ("url", "CONFIG_URL_REQUIRED")]
)
def test_profile_without_name_or_url_is_rejected_with_apples_code(missing: str, code: str) -> None:
    document = {name: value for name, value in PROFILE.to_json().items() if name != missing}

    with pytest.raises(ProfileRejected) as rejected:
        DepProfile.from_json(dep.encode_json(document))
    assert rejected.value.codes == (code,)


@pytest.mark.parametrize("change", [{"is_supervised": "yes"}, {"skip_setup_items": "Siri"}, {"department": 3}])
def test_profile_with_wrong_types_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ParseError):
        DepProfile.from_json(dep.encode_json({**PROFILE.to_json(), **change}))


# --- assignment, account ------------------------------------------------------------------------------


def test_assignment_result_with_throttling() -> None:
    body = b'{"profile_uuid":"P1","devices":{"A":"SUCCESS","B":"THROTTLED","C":"FAILED"},"retry_after_seconds":30}'

    result = dep.decode_assignment(body)

    assert result.serials_with(AssignmentStatus.THROTTLED) == ["B"]
    assert result.serials_with(AssignmentStatus.FAILED) == ["C"]
    assert result.retry_after_seconds == 30 and not result.all_succeeded
    assert dep.decode_assignment(dep.encode_assignment(result)) == result


@pytest.mark.parametrize(
    "body", [b'{"devices":{"A":1}}', b'{"devices":["A"]}', b'{"devices":{},"retry_after_seconds":-1}']
)
def test_malformed_assignment_result_is_refused(body: bytes) -> None:
    with pytest.raises(ParseError):
        dep.decode_assignment(body)


def test_account() -> None:
    account = dep.decode_account(
        b'{"server_name":"Muster","server_uuid":"677cd4f4-7f2e","org_name":"Example","org_type":"org","urls":[]}'
    )

    assert (account.server_name, account.org_type, account.raw["urls"]) == ("Muster", "org", [])
    assert dep.decode_account(dep.encode_account(account)) == account
    with pytest.raises(ParseError, match="server_uuid"):
        dep.decode_account(b'{"server_name":"Muster"}')
