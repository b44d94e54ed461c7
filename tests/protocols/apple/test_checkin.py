from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple import plist
from muster.protocols.apple.checkin import (
    SHARED_IPAD_USER_ID,
    Authenticate,
    CheckOut,
    DeclarativeManagement,
    EnrollmentIdentity,
    EnrollmentKind,
    GetBootstrapToken,
    GetToken,
    ReturnToService,
    SetBootstrapToken,
    TokenUpdate,
    UnknownCheckin,
    UserAuthenticate,
    decode_checkin,
    encode_bootstrap_token,
    encode_checkin,
    encode_get_token,
    encode_return_to_service,
    encode_user_authenticate_challenge,
    encode_user_authenticate_token,
    identity_from,
    identity_keys,
)
from muster.protocols.errors import ParseError

TESTDATA = Path(__file__).parent / "testdata"
UDID = "00008030-001A2B3C4D5E6F70"
MAC_UDID = "470E005B-8C9F-4E3A-9D21-6F1B2C3D4E5F"
MAC_USER = "F151140B-4A2C-4B3D-8E5F-6A7B8C9D0E1F"
EID = "B2A3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5"
TOPIC = "com.apple.mgmt.External.9a0b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d"
DEVICE = EnrollmentIdentity(UDID, None, EnrollmentKind.DEVICE)
MAC = EnrollmentIdentity(MAC_UDID, None, EnrollmentKind.DEVICE)
MAC_USER_CHANNEL = EnrollmentIdentity(MAC_UDID, MAC_USER, EnrollmentKind.USER_CHANNEL)


def golden(name: str) -> Any:
    return decode_checkin((TESTDATA / f"checkin_{name}.plist").read_bytes())


def test_authenticate_ios() -> None:
    message = golden("authenticate_ios")
    assert message == Authenticate(
        identity=DEVICE,
        raw=message.raw,
        topic=TOPIC,
        serial_number="F2LXK0ABCD12",
        os_version="18.1",
        build_version="22B83",
        product_name="iPhone15,2",
        imei="35 209900 176148 1",
        meid="35209900176148",
    )
    assert message.raw["FutureKey"] == "kept"
    assert message.raw["MessageType"] == "Authenticate"


def test_authenticate_macos_has_the_mac_only_keys() -> None:
    message = golden("authenticate_macos")
    assert isinstance(message, Authenticate)
    assert (message.device_name, message.model, message.model_name) == (
        "Ada's MacBook Air",
        "Mac14,2",
        "MacBook Air",
    )
    assert message.imei is None
    assert message.identity == MAC


def test_authenticate_user_enrollment() -> None:
    message = golden("authenticate_user_enrollment")
    assert isinstance(message, Authenticate)
    assert message.identity == EnrollmentIdentity(EID, None, EnrollmentKind.USER_ENROLLMENT)
    assert message.identity.id == EID
    assert message.serial_number is None


def test_token_update_device_channel() -> None:
    message = golden("tokenupdate_device")
    assert message == TokenUpdate(
        identity=DEVICE,
        raw=message.raw,
        topic=TOPIC,
        token=bytes.fromhex("6b1e2c9f0a7d4e3b8c5f1a2d3e4b5c6d7e8f90112233445566778899aabbccdd"),
        push_magic="2A4D6F8B-1C3E-4F5A-9B7D-0E2C4A6E8F10",
        unlock_token=b"unlock-token-bytes\x00\x01",
        awaiting_configuration=True,
    )
    assert message.raw["NewIn27"] == {"Nested": [1, 2]}


def test_token_update_macos_user_channel() -> None:
    message = golden("tokenupdate_macos_user")
    assert isinstance(message, TokenUpdate)
    assert message.identity == MAC_USER_CHANNEL
    assert message.identity.id == f"{MAC_UDID}:{MAC_USER}"
    assert message.identity.is_user_channel
    assert (message.user_short_name, message.user_long_name) == ("ada", "Ada Lovelace")
    assert message.not_on_console is False
    assert message.unlock_token is None


def test_token_update_shared_ipad_user_is_keyed_by_managed_apple_account() -> None:
    message = golden("tokenupdate_shared_ipad")
    expected = EnrollmentIdentity(UDID, "student1@appleid.example.com", EnrollmentKind.SHARED_IPAD_USER)
    assert message.identity == expected
    assert message.identity.id == f"{UDID}:student1@appleid.example.com"


def test_token_update_user_enrollment_user_channel() -> None:
    message = golden("tokenupdate_user_enrollment_user")
    expected = EnrollmentIdentity(EID, "9D8C7B6A-UE-USER", EnrollmentKind.USER_ENROLLMENT_USER)
    assert message.identity == expected
    assert message.identity.id == f"{EID}:9D8C7B6A-UE-USER"


def test_check_out() -> None:
    message = golden("checkout")
    assert message == CheckOut(identity=DEVICE, raw=message.raw, topic=TOPIC)


def test_user_authenticate_both_steps() -> None:
    first, second = golden("userauthenticate_first"), golden("userauthenticate_second")
    assert first == UserAuthenticate(
        identity=MAC_USER_CHANNEL, raw=first.raw, user_short_name="ada", user_long_name="Ada Lovelace"
    )
    assert isinstance(second, UserAuthenticate)
    assert second.digest_response is not None
    assert second.digest_response.startswith('username="ada"')


def test_bootstrap_token_messages() -> None:
    set_message, get_message = golden("setbootstraptoken"), golden("getbootstraptoken")
    assert set_message == SetBootstrapToken(
        identity=MAC,
        raw=set_message.raw,
        bootstrap_token=b"bootstrap-secret-0123456789",
        awaiting_configuration=True,
    )
    assert get_message == GetBootstrapToken(identity=MAC, raw=get_message.raw)


def test_empty_bootstrap_token_means_delete() -> None:
    body = encode_checkin("SetBootstrapToken", {"UDID": MAC_UDID}, BootstrapToken=b"")
    message = decode_checkin(body)
    assert isinstance(message, SetBootstrapToken)
    assert message.bootstrap_token is None


def test_declarative_management() -> None:
    message = golden("declarativemanagement")
    assert isinstance(message, DeclarativeManagement)
    assert message.endpoint == "status"
    assert message.data is not None
    assert message.data.startswith(b'{"StatusItems"')


def test_get_token() -> None:
    message = golden("gettoken")
    assert message == GetToken(
        identity=DEVICE,
        raw=message.raw,
        token_service_type="com.apple.watch.pairing",
        token_parameters={"PhoneUDID": UDID, "SecurityToken": "c2VjdXJpdHk=", "WatchUDID": "WATCH-UDID-1"},
    )


def test_return_to_service_and_unknown_types() -> None:
    assert golden("returntoservice") == ReturnToService(identity=DEVICE, raw=golden("returntoservice").raw)
    unknown = golden("unknown")
    assert isinstance(unknown, UnknownCheckin)
    assert unknown.message_type == "FutureCheckin"
    assert unknown.raw["Whatever"] == 42


def test_repr_hides_secrets() -> None:
    text = repr(golden("tokenupdate_device")) + repr(golden("setbootstraptoken"))
    text += repr(golden("userauthenticate_second")) + repr(golden("gettoken"))
    for secret in ("unlock-token-bytes", "bootstrap-secret", "2A4D6F8B", "6629fae4", "c2VjdXJpdHk="):
        assert secret not in text


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"UDID": UDID}, "missing MessageType"),
        ({"MessageType": 7, "UDID": UDID}, "MessageType must be a string"),
        ({"MessageType": "Authenticate", "Topic": TOPIC}, "missing UDID or EnrollmentID"),
        ({"MessageType": "Authenticate", "UDID": UDID}, "missing Topic"),
        (
            {"MessageType": "Authenticate", "UDID": UDID, "Topic": TOPIC, "OSVersion": 18},
            "OSVersion must be a string",
        ),
        ({"MessageType": "TokenUpdate", "UDID": UDID, "Topic": TOPIC, "PushMagic": "m"}, "missing Token"),
        (
            {"MessageType": "TokenUpdate", "UDID": UDID, "Topic": TOPIC, "Token": "ab", "PushMagic": "m"},
            "Token must be data",
        ),
        ({"MessageType": "TokenUpdate", "UDID": UDID, "Topic": TOPIC, "Token": b"t"}, "missing PushMagic"),
        (
            {
                "MessageType": "TokenUpdate",
                "UDID": UDID,
                "Topic": TOPIC,
                "Token": b"t",
                "PushMagic": "m",
                "AwaitingConfiguration": "true",
            },
            "AwaitingConfiguration must be a boolean",
        ),
        ({"MessageType": "CheckOut", "UDID": UDID}, "missing Topic"),
        ({"MessageType": "DeclarativeManagement", "UDID": UDID}, "missing Endpoint"),
        ({"MessageType": "GetToken", "UDID": UDID}, "missing TokenServiceType"),
        (
            {
                "MessageType": "GetToken",
                "UDID": UDID,
                "TokenServiceType": "com.apple.maid",
                "TokenParameters": [],
            },
            "TokenParameters must be a dictionary",
        ),
        ({"MessageType": "CheckOut", "UDID": ["x"], "Topic": TOPIC}, "UDID must be a string"),
        (
            {"MessageType": "TokenUpdate", "UDID": UDID, "UserID": SHARED_IPAD_USER_ID, "Topic": TOPIC},
            "missing UserShortName for a Shared iPad user",
        ),
    ],
)
def test_bad_messages_name_the_key(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        decode_checkin(plist.dumps(message))
    assert caught.value.reason == reason


def test_identity_table() -> None:
    cases = [
        ({"UDID": "U"}, ("U", None, EnrollmentKind.DEVICE, "U", False)),
        ({"UDID": "U", "UserID": "G"}, ("U", "G", EnrollmentKind.USER_CHANNEL, "U:G", True)),
        (
            {"UDID": "U", "UserID": SHARED_IPAD_USER_ID.lower(), "UserShortName": "a@b"},
            ("U", "a@b", EnrollmentKind.SHARED_IPAD_USER, "U:a@b", True),
        ),
        ({"EnrollmentID": "E"}, ("E", None, EnrollmentKind.USER_ENROLLMENT, "E", False)),
        (
            {"EnrollmentID": "E", "EnrollmentUserID": "V"},
            ("E", "V", EnrollmentKind.USER_ENROLLMENT_USER, "E:V", True),
        ),
        # UDID wins when both are present, and empty strings count as absent.
        ({"UDID": "U", "EnrollmentID": "E"}, ("U", None, EnrollmentKind.DEVICE, "U", False)),
        (
            {"UDID": "", "EnrollmentID": "E", "UserID": ""},
            ("E", None, EnrollmentKind.USER_ENROLLMENT, "E", False),
        ),
    ]
    for keys, (device, user, kind, full_id, is_user) in cases:
        identity = identity_from(keys)
        assert (identity.device_id, identity.user_id, identity.kind) == (device, user, kind), keys
        assert (identity.id, identity.is_user_channel) == (full_id, is_user), keys


def test_identity_rejects_inconsistent_construction() -> None:
    with pytest.raises(ValueError, match="needs user_id"):
        EnrollmentIdentity("U", None, EnrollmentKind.USER_CHANNEL)
    with pytest.raises(ValueError, match="has no user_id"):
        EnrollmentIdentity("U", "G", EnrollmentKind.DEVICE)
    with pytest.raises(ValueError, match="device_id"):
        EnrollmentIdentity("", None, EnrollmentKind.DEVICE)


ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
identities = st.one_of(
    st.builds(
        EnrollmentIdentity,
        ids,
        st.none(),
        st.sampled_from([EnrollmentKind.DEVICE, EnrollmentKind.USER_ENROLLMENT]),
    ),
    st.builds(
        EnrollmentIdentity,
        ids,
        ids.filter(lambda user: user.upper() != SHARED_IPAD_USER_ID),
        st.sampled_from(
            [k for k in EnrollmentKind if k not in (EnrollmentKind.DEVICE, EnrollmentKind.USER_ENROLLMENT)]
        ),
    ),
)


@given(identities)
def test_identity_keys_round_trip(identity: EnrollmentIdentity) -> None:
    assert identity_from(identity_keys(identity)) == identity


@given(identities, st.binary(min_size=1, max_size=64), st.text(min_size=1, max_size=40).filter(str.isprintable))
def test_token_update_encode_decode_round_trip(identity: EnrollmentIdentity, token: bytes, magic: str) -> None:
    body = encode_checkin(
        "TokenUpdate", identity_keys(identity), Topic=TOPIC, Token=token, PushMagic=magic, UnlockToken=None
    )
    message = decode_checkin(body)
    assert isinstance(message, TokenUpdate)
    assert (message.identity, message.token, message.push_magic, message.topic) == (
        identity,
        token,
        magic,
        TOPIC,
    )
    assert "UnlockToken" not in message.raw


def test_encode_checkin_builds_what_a_device_sends() -> None:
    body = encode_checkin("Authenticate", identity_keys(MAC), Topic=TOPIC, SerialNumber="C02", DeviceName=None)
    assert plist.loads(body) == {
        "MessageType": "Authenticate",
        "UDID": MAC_UDID,
        "Topic": TOPIC,
        "SerialNumber": "C02",
    }
    with pytest.raises(ValueError):
        encode_checkin("", {"UDID": UDID})


def test_reply_encoders() -> None:
    assert plist.loads(encode_user_authenticate_challenge("")) == {"DigestChallenge": ""}
    assert plist.loads(encode_user_authenticate_token("tok")) == {"AuthToken": "tok"}
    assert plist.loads(encode_bootstrap_token(b"\x00bt")) == {"BootstrapToken": b"\x00bt"}
    assert plist.loads(encode_get_token(b"jwt")) == {"TokenData": b"jwt"}
    assert plist.loads(encode_return_to_service(enabled=True, mdm_profile_data=b"<mdm/>")) == {
        "ReturnToService": {"Enabled": True, "MDMProfileData": b"<mdm/>"}
    }
    assert plist.loads(encode_return_to_service(enabled=False)) == {"ReturnToService": {"Enabled": False}}
