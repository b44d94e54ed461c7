import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple.apns import (
    PushOutcome,
    PushTarget,
    build_push,
    classify_response,
    encode_error_body,
    parse_device_path,
    parse_push_body,
)
from muster.protocols.errors import ParseError

TOKEN = bytes.fromhex("5ac4a7ae0d4c1a0f3ebd8e8e8c9b4f3f7f5f5c2b1a0d9e8f7a6b5c4d3e2f1a0b")
TOPIC = "com.apple.mgmt.External.e3b8ceac-1f18-2c8e-8a63-dd17d99435d9"
TARGET = PushTarget(token=TOKEN, push_magic="7F3DA35B-3E9B-4E43-A1B5-1C7E6A0C0C61", topic=TOPIC)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
GARBAGE_BODIES = st.binary(max_size=600) | JSON_VALUES.map(lambda value: json.dumps(value).encode())


def test_build_push_is_byte_exact() -> None:
    path, headers, body = build_push(TARGET)

    assert path == "/3/device/5ac4a7ae0d4c1a0f3ebd8e8e8c9b4f3f7f5f5c2b1a0d9e8f7a6b5c4d3e2f1a0b"
    assert headers == {"apns-push-type": "mdm", "apns-topic": TOPIC, "apns-priority": "10"}
    assert body == b'{"mdm":"7F3DA35B-3E9B-4E43-A1B5-1C7E6A0C0C61"}'


def test_build_push_optional_headers() -> None:
    apns_id = "123e4567-e89b-12d3-a456-426614174000"

    _, headers, _ = build_push(TARGET, priority=5, expiration=0, apns_id=apns_id)

    assert headers["apns-priority"] == "5"
    assert headers["apns-expiration"] == "0"
    assert headers["apns-id"] == apns_id


@pytest.mark.parametrize(
    "options",
    [
        {"priority": 7},
        {"expiration": -1},
        {"apns_id": "123E4567-E89B-12D3-A456-426614174000"},
        {"apns_id": "not-a-uuid"},
    ],
)
def test_build_push_refuses_invalid_options(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_push(TARGET, **options)  # type: ignore[arg-type]


def test_build_push_refuses_oversized_payload() -> None:
    with pytest.raises(ValueError, match="4096"):
        build_push(PushTarget(TOKEN, "x" * 4096, TOPIC))


@pytest.mark.parametrize(
    ("token", "magic", "topic"),
    [(b"", "m", TOPIC), (TOKEN, "", TOPIC), (TOKEN, "m", ""), (b"x" * 101, "m", TOPIC)],
)
def test_push_target_validates(token: bytes, magic: str, topic: str) -> None:
    with pytest.raises(ValueError):
        PushTarget(token, magic, topic)


APPLE_ERRORS = [
    (400, "BadCollapseId", PushOutcome.REJECTED),
    (400, "BadDeviceToken", PushOutcome.UNREGISTERED),
    (400, "BadExpirationDate", PushOutcome.REJECTED),
    (400, "BadMessageId", PushOutcome.REJECTED),
    (400, "BadPriority", PushOutcome.REJECTED),
    (400, "BadTopic", PushOutcome.REJECTED),
    (400, "DeviceTokenNotForTopic", PushOutcome.REJECTED),
    (400, "DuplicateHeaders", PushOutcome.REJECTED),
    (400, "IdleTimeout", PushOutcome.RETRY),
    (400, "InvalidPushType", PushOutcome.REJECTED),
    (400, "MissingDeviceToken", PushOutcome.REJECTED),
    (400, "MissingTopic", PushOutcome.REJECTED),
    (400, "PayloadEmpty", PushOutcome.REJECTED),
    (400, "TopicDisallowed", PushOutcome.REJECTED),
    (403, "BadCertificate", PushOutcome.REJECTED),
    (403, "BadCertificateEnvironment", PushOutcome.REJECTED),
    (403, "ExpiredProviderToken", PushOutcome.REJECTED),
    (403, "Forbidden", PushOutcome.REJECTED),
    (403, "InvalidProviderToken", PushOutcome.REJECTED),
    (403, "MissingProviderToken", PushOutcome.REJECTED),
    (403, "UnrelatedKeyIdInToken", PushOutcome.REJECTED),
    (404, "BadPath", PushOutcome.REJECTED),
    (405, "MethodNotAllowed", PushOutcome.REJECTED),
    (410, "ExpiredToken", PushOutcome.UNREGISTERED),
    (410, "Unregistered", PushOutcome.UNREGISTERED),
    (413, "PayloadTooLarge", PushOutcome.REJECTED),
    (429, "TooManyProviderTokenUpdates", PushOutcome.RETRY),
    (429, "TooManyRequests", PushOutcome.RETRY),
    (500, "InternalServerError", PushOutcome.RETRY),
    (503, "ServiceUnavailable", PushOutcome.RETRY),
    (503, "Shutdown", PushOutcome.RETRY),
]


@pytest.mark.parametrize(("status", "reason", "outcome"), APPLE_ERRORS)
def test_classify_every_documented_error(status: int, reason: str, outcome: PushOutcome) -> None:
    timestamp = 1_700_000_000_000 if status == 410 else None
    body = encode_error_body(reason, timestamp_ms=timestamp)

    assert classify_response(status, body) == (outcome, reason)


def test_classify_success_has_no_reason() -> None:
    assert classify_response(200, b"") == (PushOutcome.DELIVERED, None)


def test_error_body_shape() -> None:
    assert json.loads(encode_error_body("Unregistered", timestamp_ms=12)) == {
        "reason": "Unregistered",
        "timestamp": 12,
    }
    assert encode_error_body("BadTopic") == b'{"reason":"BadTopic"}'


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>Bad Gateway</html>",
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b'{"reason": 42}',
        b'{"reason": "has spaces and \\n newline"}',
        b'{"reason": "' + b"A" * 65 + b'"}',
        b"[" * 4000,
        b"[" * 100_000,
        b'{"reason": "Unregistered"}' + b" " * 5000,
    ],
)
def test_classify_tolerates_garbage_bodies(body: bytes) -> None:
    assert classify_response(400, body) == (PushOutcome.REJECTED, None)
    assert classify_response(410, body) == (PushOutcome.UNREGISTERED, None)
    assert classify_response(503, body) == (PushOutcome.RETRY, None)


def test_bad_device_token_without_readable_reason_is_rejected_not_unregistered() -> None:
    assert classify_response(400, b"junk")[0] is PushOutcome.REJECTED


@given(st.integers(min_value=0, max_value=1000), GARBAGE_BODIES)
def test_classify_never_raises(status: int, body: bytes) -> None:
    outcome, reason = classify_response(status, body)

    assert outcome in PushOutcome
    assert reason is None or (reason.isascii() and reason.isalnum())


@given(
    st.binary(min_size=1, max_size=100),
    st.text(min_size=1, max_size=200),
    st.sampled_from([1, 5, 10]),
)
def test_build_then_parse_round_trips(token: bytes, magic: str, priority: int) -> None:
    path, _, body = build_push(PushTarget(token, magic, TOPIC), priority=priority)

    assert parse_device_path(path) == token
    assert parse_push_body(body) == magic


@given(GARBAGE_BODIES)
def test_parse_push_body_garbage_only_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        assert parse_push_body(body)


@given(st.text(max_size=300))
def test_parse_device_path_garbage_only_parse_error(path: str) -> None:
    with contextlib.suppress(ParseError):
        parse_device_path("/3/device/" + path)
    with contextlib.suppress(ParseError):
        parse_device_path(path)


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"mdm":""}', b'{"mdm":1}', b'{"mdm":"m","aps":{}}', b'["mdm"]', b"{", b" " * 4097],
)
def test_parse_push_body_refuses(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_push_body(body)


@pytest.mark.parametrize(
    "path", ["/3/device/", "/3/device/abc", "/3/device/zz", "/2/device/ab", "/3/device/" + "a" * 202]
)
def test_parse_device_path_refuses(path: str) -> None:
    with pytest.raises(ParseError):
        parse_device_path(path)
