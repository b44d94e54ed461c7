"""Property-list codec for untrusted MDM bodies (spec: apple-protocols.md §1.1, §2.1, §11).

`loads` accepts XML or binary plists whose top level is a dictionary and turns every failure into a
`ParseError`. On top of `plistlib` it enforces a size limit, refuses XML entity declarations and internal DTD
subsets (entity-expansion attacks), bounds nesting depth and rejects binary plists whose containers are shared
or cyclic, so that code walking the result recursively can never blow up.

The `required_*` / `optional_*` helpers read typed values out of a decoded message and raise a `ParseError`
naming the offending key.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from xml.parsers import expat

from muster.protocols.errors import ParseError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 128
_BINARY_MAGIC = b"bplist00"
_SCALARS = (str, bytes, bool, int, float, datetime)

T = TypeVar("T")


def loads(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Decode an XML or binary plist whose top level is a dictionary."""
    if not isinstance(data, bytes | bytearray):
        raise ParseError("body is not bytes")
    if not data:
        raise ParseError("empty body")
    if len(data) > max_bytes:
        raise ParseError(f"body larger than {max_bytes} bytes")
    data = bytes(data)
    is_binary = data.startswith(_BINARY_MAGIC)
    if not is_binary:
        _check_xml_prolog(data)
    try:
        value = plistlib.loads(data, fmt=plistlib.FMT_BINARY if is_binary else plistlib.FMT_XML)
    except RecursionError:
        raise ParseError("plist nested too deeply") from None
    except Exception as exc:
        # plistlib signals malformed input with many unrelated exception types (ExpatError, ValueError,
        # AttributeError on bad dates, binascii.Error, struct.error, ...): all of them mean "bad body".
        raise ParseError(f"malformed plist ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise ParseError("plist top level is not a dictionary")
    _check_tree(value)
    return value


def dumps(value: Mapping[str, Any], *, binary: bool = False) -> bytes:
    """Encode a mapping as an XML plist (keys sorted, as plistlib does), or as a binary one, which can also
    carry strings with control characters that XML cannot."""
    return plistlib.dumps(dict(value), fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML)


class _PrologDone(Exception):
    """Raised to stop the prolog scan once the root element starts."""


def _check_xml_prolog(data: bytes) -> None:
    """Reject DTD internal subsets and entity declarations before plistlib sees the document.

    Real devices send `<!DOCTYPE plist PUBLIC ...>` with an external DTD that expat never fetches; that form
    is allowed. Anything declaring entities could expand exponentially, so it is refused outright.
    """

    def on_doctype(name: str, _sysid: str | None, _pubid: str | None, has_internal_subset: int) -> None:
        if name != "plist":
            raise ParseError("unexpected DOCTYPE")
        if has_internal_subset:
            raise ParseError("DTD internal subset not allowed")

    def on_entity(*_args: object) -> NoReturn:
        raise ParseError("XML entity declarations not allowed")

    def on_root(*_args: object) -> NoReturn:
        raise _PrologDone

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = on_doctype
    parser.EntityDeclHandler = on_entity
    parser.UnparsedEntityDeclHandler = on_entity
    parser.StartElementHandler = on_root
    try:
        parser.Parse(data, True)
    except _PrologDone:
        return
    except expat.ExpatError as exc:
        raise ParseError(f"malformed XML: {expat.ErrorString(exc.code)}") from None
    except LookupError:  # an XML declaration naming an encoding Python does not know
        raise ParseError("malformed XML: unknown or invalid encoding") from None
    raise ParseError("XML document has no root element")


def _check_tree(root: dict[str, Any]) -> None:
    """Iteratively check depth, key types, value types and that every container appears exactly once."""
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str) and "\x00" in node:
            raise ParseError("plist string contains a NUL character")
        if isinstance(node, _SCALARS):
            continue
        if not isinstance(node, dict | list):
            raise ParseError(f"unsupported plist value ({type(node).__name__})")
        if depth > MAX_DEPTH:
            raise ParseError("plist nested too deeply")
        if id(node) in seen:
            raise ParseError("plist containers are shared or cyclic")
        seen.add(id(node))
        if isinstance(node, dict):
            if not all(isinstance(key, str) and "\x00" not in key for key in node):
                raise ParseError("plist dictionary key is not a string")
            stack.extend((child, depth + 1) for child in node.values())
        else:
            stack.extend((child, depth + 1) for child in node)


def _wrong_type(key: str, expected: str) -> NoReturn:
    raise ParseError(f"{key} must be {expected}")


def _typed(message: Mapping[str, Any], key: str, kind: type[T], expected: str) -> T | None:
    value = message.get(key)
    if value is None:
        return None
    # bool is an int subclass: never let True pass as an integer.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        _wrong_type(key, expected)
    return value


# Strings that name things (identifiers, topics, tokens) are short; anything longer is not a real device's.
MAX_NAME_LENGTH = 256


def required_string(message: Mapping[str, Any], key: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """A non-empty string of at most `max_length` characters that must be present."""
    value = optional_string(message, key, max_length=max_length)
    if not value:
        raise ParseError(f"missing {key}")
    return value


def optional_string(message: Mapping[str, Any], key: str, *, max_length: int = MAX_NAME_LENGTH) -> str | None:
    """A string of at most `max_length` characters, or None when absent."""
    value = _typed(message, key, str, "a string")
    if value is not None and len(value) > max_length:
        raise ParseError(f"{key} longer than {max_length} characters")
    return value


def required_data(message: Mapping[str, Any], key: str) -> bytes:
    """A non-empty data value that must be present."""
    value = _typed(message, key, bytes, "data")
    if not value:
        raise ParseError(f"missing {key}")
    return value


def optional_data(message: Mapping[str, Any], key: str) -> bytes | None:
    """A data value, or None when absent."""
    return _typed(message, key, bytes, "data")


def optional_bool(message: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """A boolean, or `default` when absent."""
    value = _typed(message, key, bool, "a boolean")
    return default if value is None else value


def optional_dict(message: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A dictionary, or None when absent."""
    return _typed(message, key, dict, "a dictionary")
