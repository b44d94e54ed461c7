import contextlib
import plistlib
import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.protocols.apple import plist
from muster.protocols.errors import ParseError

TESTDATA = Path(__file__).parent / "testdata"
GOLDEN = sorted(TESTDATA.glob("*.plist"))
XML_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def binary_plist(objects: list[bytes], top: int = 0) -> bytes:
    """Assemble a binary plist by hand (2-byte object refs), to build inputs plistlib would never write."""
    body = bytearray(b"bplist00")
    offsets = []
    for encoded in objects:
        offsets.append(len(body))
        body += encoded
    table = len(body)
    for offset in offsets:
        body += struct.pack(">I", offset)
    body += struct.pack(">6xBBQQQ", 4, 2, len(objects), top, table)
    return bytes(body)


def one_entry_dict(key_ref: int, value_ref: int) -> bytes:
    return bytes([0xD1]) + struct.pack(">HH", key_ref, value_ref)


# XML 1.0 cannot carry most control characters or U+FFFE/U+FFFF, and parsers normalise "\r" to "\n".
xml_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, codec="utf-8", exclude_characters="\ufffe\uffff")
    | st.sampled_from("\t\n"),
    max_size=20,
)
scalars = st.one_of(
    xml_text,
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
    st.booleans(),
    st.binary(max_size=40),
    st.floats(allow_nan=False),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
)
plist_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(xml_text, children, max_size=4),
    max_leaves=20,
)
plist_dicts = st.dictionaries(xml_text, plist_values, max_size=6)


def test_reads_xml_with_apples_doctype() -> None:
    body = plist.dumps({"MessageType": "Authenticate", "Token": b"\x00\x01"})
    assert b"<!DOCTYPE plist PUBLIC" in body
    assert plist.loads(body) == {"MessageType": "Authenticate", "Token": b"\x00\x01"}


def test_reads_binary() -> None:
    body = plistlib.dumps({"Status": "Idle", "Nested": [1, 2.5, True]}, fmt=plistlib.FMT_BINARY)
    assert plist.loads(body) == {"Status": "Idle", "Nested": [1, 2.5, True]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (plistlib.dumps(["a"]), "plist top level is not a dictionary"),
        (plistlib.dumps("text"), "plist top level is not a dictionary"),
        (XML_HEADER + b"<!DOCTYPE html><plist><dict/></plist>", "unexpected DOCTYPE"),
        (
            XML_HEADER + b'<!DOCTYPE plist [<!ENTITY a "boom">]><plist><dict/></plist>',
            "DTD internal subset not allowed",
        ),
        (XML_HEADER + b"<!-- nothing -->", "malformed XML: no element found"),
    ],
)
def test_rejects(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        plist.loads(body)
    assert caught.value.reason == reason


def test_rejects_billion_laughs() -> None:
    entities = b'<!ENTITY a0 "lol">' + b"".join(
        b'<!ENTITY a%d "&a%d;&a%d;&a%d;&a%d;">' % (level, level - 1, level - 1, level - 1, level - 1)
        for level in range(1, 12)
    )
    body = XML_HEADER + b"<!DOCTYPE plist [" + entities + b"]><plist><dict><key>k</key>"
    body += b"<string>&a11;</string></dict></plist>"
    with pytest.raises(ParseError, match="DTD internal subset"):
        plist.loads(body)


def test_external_dtd_is_never_fetched() -> None:
    body = XML_HEADER + b'<!DOCTYPE plist SYSTEM "file:///etc/passwd"><plist><dict><key>k</key>'
    assert plist.loads(body + b"<string>v</string></dict></plist>") == {"k": "v"}
    # With an unread external DTD, expat skips references it cannot resolve instead of loading anything.
    assert plist.loads(body + b"<string>a&secret;b</string></dict></plist>") == {"k": "ab"}


def test_size_limit() -> None:
    body = plist.dumps({"Blob": b"x" * 1000})
    assert plist.loads(body, max_bytes=len(body)) == {"Blob": b"x" * 1000}
    with pytest.raises(ParseError, match="larger than"):
        plist.loads(body, max_bytes=len(body) - 1)


def test_default_size_limit_is_four_mebibytes() -> None:
    assert plist.DEFAULT_MAX_BYTES == 4 * 1024 * 1024
    with pytest.raises(ParseError, match="larger than"):
        plist.loads(b" " * (plist.DEFAULT_MAX_BYTES + 1))


def test_deep_xml_nesting_is_rejected_without_recursion() -> None:
    depth = 200_000  # as deep as the default size limit allows
    body = XML_HEADER + b"<plist><dict><key>a</key>" + b"<array>" * depth + b"</array>" * depth
    with pytest.raises(ParseError, match="nested too deeply"):
        plist.loads(body + b"</dict></plist>")


def test_nesting_up_to_the_limit_is_fine() -> None:
    value: Any = "leaf"
    for _ in range(plist.MAX_DEPTH - 1):
        value = [value]
    assert plist.loads(plistlib.dumps({"a": value}))["a"] == value


def test_deep_binary_nesting_is_rejected() -> None:
    depth = 5000  # each dict holds the next: plistlib would recurse past the interpreter's limit
    objects = [one_entry_dict(depth + 1, level + 1) for level in range(depth)]
    objects += [bytes([0xD0]), bytes([0x51]) + b"k"]
    with pytest.raises(ParseError, match="nested too deeply"):
        plist.loads(binary_plist(objects))


def test_cyclic_binary_plist_is_rejected() -> None:
    body = binary_plist([one_entry_dict(1, 0), bytes([0x51]) + b"k"])
    with pytest.raises(ParseError, match="shared or cyclic"):
        plist.loads(body)


def test_shared_binary_containers_are_rejected() -> None:
    # {"k": [X, X]} where X is one array object referenced twice (a DAG that could expand exponentially)
    objects = [
        one_entry_dict(1, 2),
        bytes([0x51]) + b"k",
        bytes([0xA2]) + struct.pack(">HH", 3, 3),
        bytes([0xA0]),
    ]
    with pytest.raises(ParseError, match="shared or cyclic"):
        plist.loads(binary_plist(objects))


@pytest.mark.parametrize(
    ("objects", "reason"),
    [
        ([one_entry_dict(1, 1), bytes([0x10, 5])], "plist dictionary key is not a string"),
        ([one_entry_dict(1, 2), bytes([0x51]) + b"k", bytes([0x80, 7])], "unsupported plist value (UID)"),
        ([one_entry_dict(1, 2), bytes([0x51]) + b"k", bytes([0x00])], "unsupported plist value (NoneType)"),
    ],
)
def test_binary_values_that_xml_cannot_express_are_rejected(objects: list[bytes], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        plist.loads(binary_plist(objects))
    assert caught.value.reason == reason


def test_binary_object_count_larger_than_the_body() -> None:
    trailer = struct.pack(">6xBBQQQ", 1, 1, 1 << 40, 0, 8)
    with pytest.raises(ParseError):
        plist.loads(b"bplist00" + b"\x00" * 8 + trailer)


def test_typed_accessors_name_the_key() -> None:
    message = {"Flag": "yes", "Count": True, "Name": ""}
    with pytest.raises(ParseError, match=r"^Flag must be a boolean$"):
        plist.optional_bool(message, "Flag")
    with pytest.raises(ParseError, match=r"^missing Name$"):
        plist.required_string(message, "Name")
    with pytest.raises(ParseError, match=r"^missing Topic$"):
        plist.required_string(message, "Topic")
    with pytest.raises(ParseError, match=r"^Flag must be data$"):
        plist.optional_data(message, "Flag")
    assert plist.optional_string(message, "Absent") is None
    assert plist.optional_bool(message, "Absent", default=True) is True


@given(plist_dicts)
def test_xml_round_trip(value: dict[str, Any]) -> None:
    assert plist.loads(plist.dumps(value)) == value


@given(plist_dicts)
def test_binary_round_trip(value: dict[str, Any]) -> None:
    assert plist.loads(plistlib.dumps(value, fmt=plistlib.FMT_BINARY)) == value


@given(st.binary(max_size=400))
def test_garbage_raises_only_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        plist.loads(body)


@given(st.binary(max_size=200))
def test_garbage_after_binary_magic_raises_only_parse_error(tail: bytes) -> None:
    with contextlib.suppress(ParseError):
        plist.loads(b"bplist00" + tail)


def mutate(data: st.DataObject, body: bytes) -> bytes:
    """Truncate, overwrite, insert and delete bytes of a valid body."""
    mutated = bytearray(body[: data.draw(st.integers(1, len(body)), label="keep")])
    for _ in range(data.draw(st.integers(0, 8), label="edits")):
        position = data.draw(st.integers(0, len(mutated)), label="position")
        action = data.draw(st.sampled_from(["overwrite", "insert", "delete"]), label="action")
        byte = data.draw(st.integers(0, 255), label="byte")
        if action == "insert" or position == len(mutated):
            mutated.insert(position, byte)
        elif action == "overwrite":
            mutated[position] = byte
        else:
            del mutated[position]
    return bytes(mutated)


@settings(max_examples=300)
@given(st.data(), st.sampled_from(GOLDEN), st.booleans())
def test_mutated_valid_plists_raise_only_parse_error(data: st.DataObject, path: Path, binary: bool) -> None:
    body = path.read_bytes()
    if binary:
        body = plistlib.dumps(plistlib.loads(body), fmt=plistlib.FMT_BINARY)
    with contextlib.suppress(ParseError):
        plist.loads(mutate(data, body))
