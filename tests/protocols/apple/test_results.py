from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple import plist
from muster.protocols.apple.checkin import EnrollmentIdentity, EnrollmentKind, identity_keys
from muster.protocols.apple.results import (
    CommandReport,
    CommandStatus,
    ErrorChainItem,
    decode_report,
    encode_report,
)
from muster.protocols.errors import ParseError

TESTDATA = Path(__file__).parent / "testdata"
UDID = "00008030-001A2B3C4D5E6F70"
DEVICE = EnrollmentIdentity(UDID, None, EnrollmentKind.DEVICE)


def golden(name: str) -> CommandReport:
    return decode_report((TESTDATA / f"result_{name}.plist").read_bytes())


def test_idle() -> None:
    report = golden("idle")
    assert report == CommandReport(
        identity=DEVICE, status=CommandStatus.IDLE, command_uuid=None, error_chain=(), raw=report.raw
    )


def test_acknowledged_on_a_user_channel() -> None:
    report = golden("acknowledged_user_channel")
    assert report.status is CommandStatus.ACKNOWLEDGED
    assert report.command_uuid == "0B5B2A64-7E0A-4C1B-9A7F-1D2C3B4A5E6F"
    assert report.identity.kind is EnrollmentKind.USER_CHANNEL
    assert report.identity.id == "470E005B-8C9F-4E3A-9D21-6F1B2C3D4E5F:F151140B-4A2C-4B3D-8E5F-6A7B8C9D0E1F"


def test_error_chain_in_order() -> None:
    report = golden("error")
    assert report.status is CommandStatus.ERROR
    assert report.error_chain == (
        ErrorChainItem(
            code=4001,
            domain="MCProfileErrorDomain",
            localized_description="Le profil n\u2019a pas pu \u00eatre install\u00e9.",
            us_english_description="The profile could not be installed.",
        ),
        ErrorChainItem(
            code=9000,
            domain="MCInstallationErrorDomain",
            localized_description="Payload missing",
            us_english_description="Payload missing",
        ),
    )


def test_not_now_and_command_format_error() -> None:
    not_now = golden("notnow")
    assert (not_now.status, not_now.command_uuid) == (CommandStatus.NOT_NOW, "5A6B7C8D-NOTNOW")
    assert not_now.identity.kind is EnrollmentKind.USER_ENROLLMENT
    assert golden("commandformaterror").status is CommandStatus.COMMAND_FORMAT_ERROR


def test_command_specific_keys_stay_in_raw() -> None:
    report = golden("deviceinformation")
    assert report.raw["QueryResponses"]["DeviceName"] == "Ada's iPhone"


def test_status_values_match_the_wire() -> None:
    assert [status.value for status in CommandStatus] == [
        "Idle",
        "Acknowledged",
        "Error",
        "CommandFormatError",
        "NotNow",
    ]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"UDID": UDID}, "missing Status"),
        ({"UDID": UDID, "Status": "Done", "CommandUUID": "C"}, "unknown Status 'Done'"),
        ({"UDID": UDID, "Status": "Acknowledged"}, "missing CommandUUID"),
        ({"UDID": UDID, "Status": "Error", "CommandUUID": 5}, "CommandUUID must be a string"),
        ({"Status": "Idle"}, "missing UDID or EnrollmentID"),
    ],
)
def test_bad_reports(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        decode_report(plist.dumps(message))
    assert caught.value.reason == reason


def test_odd_error_chains_are_tolerated() -> None:
    body = encode_report(
        "Error",
        {"UDID": UDID},
        "C1",
        ErrorChain=["not a dict", {"ErrorCode": "12", "ErrorDomain": 3, "USEnglishDescription": "x"}],
    )
    assert decode_report(body).error_chain == (ErrorChainItem(None, None, None, "x"),)
    assert decode_report(encode_report("Error", {"UDID": UDID}, "C1", ErrorChain={})).error_chain == ()


def test_encode_report_requires_a_uuid_unless_idle() -> None:
    with pytest.raises(ValueError, match="needs a command_uuid"):
        encode_report(CommandStatus.ACKNOWLEDGED, {"UDID": UDID})
    with pytest.raises(ValueError):
        encode_report("Finished", {"UDID": UDID}, "C1")
    assert plist.loads(encode_report(CommandStatus.IDLE, {"UDID": UDID})) == {"Status": "Idle", "UDID": UDID}


@given(
    st.sampled_from(list(CommandStatus)),
    st.uuids().map(str),
    st.sampled_from(list(EnrollmentKind)),
    st.dictionaries(
        st.sampled_from(["QueryResponses", "SecurityInfo"]), st.dictionaries(st.text("abcXYZ_ 1"), st.booleans())
    ),
)
def test_report_round_trip(
    status: CommandStatus, command_uuid: str, kind: EnrollmentKind, result_keys: dict[str, Any]
) -> None:
    user = None if kind in (EnrollmentKind.DEVICE, EnrollmentKind.USER_ENROLLMENT) else "user-1"
    identity = EnrollmentIdentity("device-1", user, kind)
    body = encode_report(status, identity_keys(identity), command_uuid, **result_keys)
    report = decode_report(body)
    assert (report.status, report.command_uuid, report.identity) == (status, command_uuid, identity)
    for key, value in result_keys.items():
        assert report.raw[key] == value
