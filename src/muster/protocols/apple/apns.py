"""APNs wake-up pushes for MDM: request encoding and response classification.

Implements spec/apple-protocols.md §6.1 (sending a push) and §6.2 (responses). The device token and
push magic come from the device's `TokenUpdate` check-in (§1.5). Transport (HTTP/2, mTLS) lives in
`muster.clients.apns`; this module only turns values into bytes and bytes into values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from muster.protocols.errors import ParseError

DEVICE_PATH_PREFIX = "/3/device/"
MAX_PAYLOAD_BYTES = 4096  # §6.1: APNs refuses larger payloads with 413
# Error bodies are tiny JSON objects; anything bigger is not worth decoding.
MAX_ERROR_BODY_BYTES = 4096
MAX_REASON_CHARS = 64
# Apple's tokens are 32 bytes today but documented as variable length; 100 bytes leaves head-room.
MAX_TOKEN_BYTES = 100
PRIORITIES = frozenset({1, 5, 10})

_TOKEN_HEX = re.compile(rf"[0-9a-fA-F]{{2,{MAX_TOKEN_BYTES * 2}}}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REASON = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class PushTarget:
    """One device channel to wake (§1.5 `Token` + `PushMagic`, §6.3 topic).

    `token` is the raw `Token` data from TokenUpdate; it is hex-encoded only on the wire.
    """

    token: bytes
    push_magic: str
    topic: str

    def __post_init__(self) -> None:
        if not 0 < len(self.token) <= MAX_TOKEN_BYTES:
            raise ValueError(f"device token must be 1..{MAX_TOKEN_BYTES} bytes")
        if not self.push_magic:
            raise ValueError("push magic must not be empty")
        if not self.topic:
            raise ValueError("topic must not be empty")

    @property
    def token_hex(self) -> str:
        return self.token.hex()


class PushOutcome(StrEnum):
    """What the sender should do after one push attempt (§6.2)."""

    DELIVERED = "delivered"
    # The token is dead for this topic: stop pushing until the device sends a new TokenUpdate.
    UNREGISTERED = "unregistered"
    # Transient: throttled, APNs trouble or a broken connection. Try again later.
    RETRY = "retry"
    # Our request or certificate is wrong; repeating it cannot help.
    REJECTED = "rejected"


@dataclass(frozen=True)
class PushResult:
    """The final outcome of pushing to one target (§6.2). `status` is None when no response came."""

    target: PushTarget
    outcome: PushOutcome
    status: int | None
    reason: str | None
    apns_id: str | None


def build_push(
    target: PushTarget,
    *,
    priority: int = 10,
    expiration: int | None = None,
    apns_id: str | None = None,
) -> tuple[str, dict[str, str], bytes]:
    """Encode one MDM push as (path, headers, body) per §6.1.

    `expiration` is UNIX seconds (0 = deliver once, never store); `apns_id` a canonical lowercase UUID.
    """
    if priority not in PRIORITIES:
        raise ValueError(f"apns-priority must be one of {sorted(PRIORITIES)}")
    headers = {"apns-push-type": "mdm", "apns-topic": target.topic, "apns-priority": str(priority)}
    if expiration is not None:
        if expiration < 0:
            raise ValueError("apns-expiration must be a non-negative UNIX time")
        headers["apns-expiration"] = str(expiration)
    if apns_id is not None:
        if not is_canonical_uuid(apns_id):
            raise ValueError("apns-id must be a canonical lowercase UUID")
        headers["apns-id"] = apns_id
    body = encode_push_body(target.push_magic)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"push payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    return DEVICE_PATH_PREFIX + target.token_hex, headers, body


def encode_push_body(push_magic: str) -> bytes:
    """The exact MDM payload: compact JSON `{"mdm":"<PushMagic>"}`, no `aps` key (§6.1)."""
    return json.dumps({"mdm": push_magic}, separators=(",", ":"), ensure_ascii=False).encode()


def parse_push_body(body: bytes) -> str:
    """Decode an MDM push payload back to its push magic; the receiving side of `encode_push_body`."""
    if not body:
        raise ParseError("payload is empty")
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ParseError(f"payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ParseError("payload is not JSON") from error
    if not isinstance(payload, dict) or set(payload) != {"mdm"}:
        raise ParseError('payload must be a JSON object with exactly one key, "mdm"')
    push_magic = payload["mdm"]
    if not isinstance(push_magic, str) or not push_magic:
        raise ParseError('"mdm" must be a non-empty string')
    return push_magic


def parse_device_path(path: str) -> bytes:
    """Extract the raw device token from `/3/device/<hex token>` (§6.1)."""
    if not path.startswith(DEVICE_PATH_PREFIX):
        raise ParseError("path is not /3/device/<token>")
    token_hex = path[len(DEVICE_PATH_PREFIX) :]
    if len(token_hex) % 2 or not _TOKEN_HEX.fullmatch(token_hex):
        raise ParseError("device token is not hex of a plausible length")
    return bytes.fromhex(token_hex)


def is_canonical_uuid(value: str) -> bool:
    return _CANONICAL_UUID.fullmatch(value) is not None


def encode_error_body(reason: str, *, timestamp_ms: int | None = None) -> bytes:
    """APNs' error JSON `{"reason": ..., "timestamp": ...}`; the timestamp only accompanies 410 (§6.2)."""
    payload: dict[str, str | int] = {"reason": reason}
    if timestamp_ms is not None:
        payload["timestamp"] = timestamp_ms
    return json.dumps(payload, separators=(",", ":")).encode()


def classify_response(status: int, body: bytes) -> tuple[PushOutcome, str | None]:
    """Map an APNs answer to what the sender should do next, plus Apple's reason string (§6.2).

    The body is untrusted: anything that is not a small JSON object with a word-like `reason` yields
    reason None, never an exception.
    """
    if status == 200:
        return PushOutcome.DELIVERED, None
    reason = _error_reason(body)
    return _outcome_for(status, reason), reason


def _outcome_for(status: int, reason: str | None) -> PushOutcome:
    if status == 410 or (status == 400 and reason == "BadDeviceToken"):
        # BadDeviceToken usually means a token from another environment: as dead as a 410 for us.
        return PushOutcome.UNREGISTERED
    if status == 429 or 500 <= status <= 599:
        return PushOutcome.RETRY
    if status == 400 and reason == "IdleTimeout":
        # Sent when APNs closes an idle connection; the push itself was fine.
        return PushOutcome.RETRY
    return PushOutcome.REJECTED


def _error_reason(body: bytes) -> str | None:
    if not body or len(body) > MAX_ERROR_BODY_BYTES:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    reason = payload.get("reason") if isinstance(payload, dict) else None
    # Only Apple's CamelCase words pass, so the value is safe to log and store.
    if isinstance(reason, str) and len(reason) <= MAX_REASON_CHARS and _REASON.fullmatch(reason):
        return reason
    return None
