"""Command results sent by the device to ServerURL (spec: apple-protocols.md §2.1).

`decode_report` reads the envelope every result shares (identity, Status, CommandUUID, ErrorChain) and keeps
the whole plist in `raw`; command-specific keys (QueryResponses, ProfileList, ...) are read from `raw` by
`muster.protocols.apple.inventory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from muster.protocols.apple import plist
from muster.protocols.apple.checkin import EnrollmentIdentity, identity_from
from muster.protocols.apple.plist import optional_string, required_string
from muster.protocols.errors import ParseError


class CommandStatus(StrEnum):
    """The `Status` of a report (§2.1)."""

    IDLE = "Idle"
    ACKNOWLEDGED = "Acknowledged"
    ERROR = "Error"
    COMMAND_FORMAT_ERROR = "CommandFormatError"
    NOT_NOW = "NotNow"


@dataclass(frozen=True)
class ErrorChainItem:
    """One `ErrorChain` entry; the first one is the top-level error. Codes are diagnostic only."""

    code: int | None
    domain: str | None
    localized_description: str | None
    us_english_description: str | None


@dataclass(frozen=True)
class CommandReport:
    """A device's PUT to ServerURL: either `Idle` or the result of the command `command_uuid`."""

    identity: EnrollmentIdentity
    status: CommandStatus
    command_uuid: str | None
    error_chain: tuple[ErrorChainItem, ...]
    raw: dict[str, Any] = field(repr=False, hash=False)


def decode_report(body: bytes) -> CommandReport:
    """Decode a command report; CommandUUID is required unless the status is Idle."""
    message = plist.loads(body)
    identity = identity_from(message)
    status_text = required_string(message, "Status")
    try:
        status = CommandStatus(status_text)
    except ValueError:
        raise ParseError(f"unknown Status {status_text[:40]!r}") from None
    if status is CommandStatus.IDLE:
        command_uuid = optional_string(message, "CommandUUID", max_length=64) or None
    else:
        command_uuid = required_string(message, "CommandUUID", max_length=64)
    return CommandReport(
        identity=identity,
        status=status,
        command_uuid=command_uuid,
        error_chain=_error_chain(message.get("ErrorChain")),
        raw=message,
    )


def _error_chain(value: object) -> tuple[ErrorChainItem, ...]:
    """Tolerant: the chain is diagnostic, so odd entries are skipped rather than failing the report."""
    if not isinstance(value, list):
        return ()
    return tuple(_error_item(item) for item in value if isinstance(item, dict))


def _error_item(item: dict[str, Any]) -> ErrorChainItem:
    code = item.get("ErrorCode")
    return ErrorChainItem(
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        domain=_string_or_none(item.get("ErrorDomain")),
        localized_description=_string_or_none(item.get("LocalizedDescription")),
        us_english_description=_string_or_none(item.get("USEnglishDescription")),
    )


def _string_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def encode_report(
    status: CommandStatus | str,
    identity_keys: Mapping[str, Any],
    command_uuid: str | None = None,
    **result_keys: Any,
) -> bytes:
    """Build a report body as a device would (for simulators and tests).

    `identity_keys` is usually `checkin.identity_keys(identity)`; `result_keys` use Apple's names verbatim,
    e.g. `QueryResponses={...}` or `ErrorChain=[{...}]`.
    """
    status = CommandStatus(status)
    if status is not CommandStatus.IDLE and not command_uuid:
        raise ValueError(f"a {status} report needs a command_uuid")
    message: dict[str, Any] = {"Status": status.value, **identity_keys, **result_keys}
    if command_uuid:
        message["CommandUUID"] = command_uuid
    return plist.dumps(message)
