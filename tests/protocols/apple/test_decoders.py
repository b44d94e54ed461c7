"""Untrusted bodies of every shape: the decoders answer with a typed message or a ParseError, nothing else."""

import contextlib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from muster.protocols.apple import plist
from muster.protocols.apple.checkin import decode_checkin
from muster.protocols.apple.commands import decode_command
from muster.protocols.apple.results import decode_report
from muster.protocols.errors import ParseError

TESTDATA = Path(__file__).parent / "testdata"
DECODERS = (decode_checkin, decode_report, decode_command)

KEYS = [
    "MessageType", "UDID", "EnrollmentID", "EnrollmentUserID", "UserID", "UserShortName", "UserLongName",
    "Topic", "Token", "PushMagic", "UnlockToken", "AwaitingConfiguration", "NotOnConsole", "DigestResponse",
    "BootstrapToken", "Endpoint", "Data", "TokenServiceType", "TokenParameters", "Status", "CommandUUID",
    "ErrorChain", "ErrorCode", "Command", "RequestType",
]  # fmt: skip
MESSAGE_TYPES = [
    "Authenticate", "TokenUpdate", "CheckOut", "UserAuthenticate", "SetBootstrapToken", "GetBootstrapToken",
    "DeclarativeManagement", "GetToken", "ReturnToService", "Other",
]  # fmt: skip
STATUSES = ["Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow", "Other"]

text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=12)
leaves = st.one_of(
    st.sampled_from(MESSAGE_TYPES + STATUSES + ["FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", ""]),
    text,
    st.booleans(),
    st.integers(-10, 10),
    st.binary(max_size=8),
    st.floats(allow_nan=False),
)
values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
)
messages = st.dictionaries(st.sampled_from(KEYS), values, max_size=10)


def decode_all(body: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(ParseError):
            decode(body)


@settings(max_examples=400)
@given(messages)
def test_plausible_but_wrong_messages_raise_only_parse_error(message: dict[str, Any]) -> None:
    decode_all(plist.dumps(message))


@given(st.binary(max_size=300))
def test_garbage_raises_only_parse_error(body: bytes) -> None:
    decode_all(body)


@settings(max_examples=200)
@given(st.sampled_from(sorted(TESTDATA.glob("*.plist"))), st.data())
def test_golden_messages_with_a_key_dropped_or_retyped(path: Path, data: st.DataObject) -> None:
    message = plist.loads(path.read_bytes())
    key = data.draw(st.sampled_from(sorted(message)))
    if data.draw(st.booleans()):
        del message[key]
    else:
        message[key] = data.draw(leaves)
    decode_all(plist.dumps(message))
