"""Failures of Apple's ADE ("DEP") API: Apple's error strings, their classification, and the exceptions
callers catch.

Spec: apple-protocols.md §7.2 (session), §7.3 (endpoints and errors), §7.4 (profile errors).
`classify_error` reads a non-200 answer; the exceptions are raised by `muster.clients.dep` and live here so
that use cases in `muster.services` can catch them without importing the HTTP client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class DepErrorCode(StrEnum):
    """Every error string Apple documents for the DEP API (§7.2, §7.3, §7.4) plus depsim's `FORBIDDEN`."""

    ACCESS_DENIED = "ACCESS_DENIED"
    T_C_NOT_SIGNED = "T_C_NOT_SIGNED"
    FORBIDDEN = "FORBIDDEN"  # depsim: stale session; NanoDEP re-authenticates on it
    USER_AGENT_MISSING = "USER_AGENT_MISSING"
    USER_AGENT_INVALID = "USER_AGENT_INVALID"
    CURSOR_REQUIRED = "CURSOR_REQUIRED"
    INVALID_CURSOR = "INVALID_CURSOR"
    EXHAUSTED_CURSOR = "EXHAUSTED_CURSOR"
    EXPIRED_CURSOR = "EXPIRED_CURSOR"
    DEVICE_ID_REQUIRED = "DEVICE_ID_REQUIRED"
    PROFILE_UUID_REQUIRED = "PROFILE_UUID_REQUIRED"
    CONFIG_NAME_REQUIRED = "CONFIG_NAME_REQUIRED"
    CONFIG_NAME_INVALID = "CONFIG_NAME_INVALID"
    CONFIG_URL_REQUIRED = "CONFIG_URL_REQUIRED"
    CONFIG_URL_INVALID = "CONFIG_URL_INVALID"
    DEPARTMENT_INVALID = "DEPARTMENT_INVALID"
    FLAGS_INVALID = "FLAGS_INVALID"
    LOCALE_INVALID = "LOCALE_INVALID"
    MAGIC_INVALID = "MAGIC_INVALID"
    SUPPORT_EMAIL_INVALID = "SUPPORT_EMAIL_INVALID"
    SUPPORT_PHONE_INVALID = "SUPPORT_PHONE_INVALID"
    MDM_SERVICE_DISCOVERY_URL_REQUIRED = "MDM_SERVICE_DISCOVERY_URL_REQUIRED"
    MDM_SERVICE_DISCOVERY_URL_NOT_VALID = "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"
    ORG_NOT_SUPPORTED = "ORG_NOT_SUPPORTED"
    NOT_FOUND = "NOT_FOUND"


class DepErrorKind(StrEnum):
    """What a caller should do about a failed DEP call (§7.2, §7.3)."""

    CURSOR_EXPIRED = "cursor_expired"  # restart with a full fetch
    CURSOR_INVALID = "cursor_invalid"  # restart with a full fetch
    CURSOR_EXHAUSTED = "cursor_exhausted"  # the fetch is complete: switch to sync
    TERMS_NOT_SIGNED = "terms_not_signed"  # an ABM admin must accept new terms
    ACCESS_DENIED = "access_denied"
    UNAUTHORIZED = "unauthorized"  # 401: bad OAuth credentials, or a stale session
    SESSION_STALE = "session_stale"  # depsim's 403 FORBIDDEN
    THROTTLED = "throttled"  # 429
    UNAVAILABLE = "unavailable"  # 503
    SERVER_ERROR = "server_error"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"


@dataclass(frozen=True)
class DepError:
    """A non-200 DEP answer, classified (§7.3: codes are matched inside the body, depsim quotes them)."""

    status: int
    code: str | None
    kind: DepErrorKind
    detail: str  # the start of the body, for logs

    @property
    def retryable(self) -> bool:
        return self.kind in (DepErrorKind.THROTTLED, DepErrorKind.UNAVAILABLE)


_CODE_TOKEN = re.compile(r"[A-Z][A-Z0-9_]*[A-Z0-9]")
_KNOWN_CODES = frozenset(DepErrorCode)
_KIND_FOR_CODE = {
    DepErrorCode.EXPIRED_CURSOR: DepErrorKind.CURSOR_EXPIRED,
    DepErrorCode.INVALID_CURSOR: DepErrorKind.CURSOR_INVALID,
    DepErrorCode.EXHAUSTED_CURSOR: DepErrorKind.CURSOR_EXHAUSTED,
    DepErrorCode.T_C_NOT_SIGNED: DepErrorKind.TERMS_NOT_SIGNED,
    DepErrorCode.ACCESS_DENIED: DepErrorKind.ACCESS_DENIED,
}
_KIND_FOR_STATUS = {
    401: DepErrorKind.UNAUTHORIZED,
    403: DepErrorKind.ACCESS_DENIED,
    404: DepErrorKind.NOT_FOUND,
    429: DepErrorKind.THROTTLED,
    503: DepErrorKind.UNAVAILABLE,
}


def classify_error(status: int, body: bytes | str) -> DepError:
    """Classify a non-200 answer by Apple's code string found in the body, then by HTTP status."""
    text = body[:4096].decode("utf-8", "replace") if isinstance(body, bytes) else body[:4096]
    tokens = _CODE_TOKEN.findall(text)
    code = next((token for token in tokens if token in _KNOWN_CODES), None)
    if code is None and len(tokens) == 1 and text.strip().strip('"') == tokens[0]:
        code = tokens[0]  # a bare code Apple added after this list was written
    if code in _KIND_FOR_CODE:
        kind = _KIND_FOR_CODE[DepErrorCode(code)]
    elif status == 403 and code == DepErrorCode.FORBIDDEN:
        kind = DepErrorKind.SESSION_STALE
    elif status in _KIND_FOR_STATUS:
        kind = _KIND_FOR_STATUS[status]
    else:
        kind = DepErrorKind.SERVER_ERROR if status >= 500 else DepErrorKind.BAD_REQUEST
    return DepError(status, code, kind, text[:200])


# --- Exceptions raised by the DEP client -----------------------------------------------------------------


class DepApiError(Exception):
    """A DEP call failed. `code` is Apple's error string when the body carried one."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DepRequestError(DepApiError):
    """Apple refused the request itself (4xx): a bad profile, an unknown profile UUID, ..."""


class DepCursorExpired(DepRequestError):
    """The cursor is older than 7 days (`EXPIRED_CURSOR`) or unknown (`INVALID_CURSOR`): fetch again
    from the start."""


class DepCursorExhausted(DepRequestError):
    """The fetch cursor already returned every device (`EXHAUSTED_CURSOR`): switch to sync."""


class DepTermsNotSigned(DepApiError):
    """An ABM/ASM administrator must accept Apple's new terms and conditions (`T_C_NOT_SIGNED`)."""


class DepAuthError(DepApiError):
    """The token is expired, revoked or replaced by a newer download, or access is denied."""


class DepUnavailable(DepApiError):
    """Apple kept answering 429/503 (or could not be reached). `retry_after` is Apple's hint, in seconds."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class DepBadResponse(DepApiError):
    """Apple answered 200 with a body that is not what the API documents."""
