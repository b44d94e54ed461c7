import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple.dep_errors import DepErrorKind, classify_error


@pytest.mark.parametrize(
    ("status", "body", "code", "kind"),
    [
        (400, b'"EXPIRED_CURSOR"', "EXPIRED_CURSOR", DepErrorKind.CURSOR_EXPIRED),
        (400, b"INVALID_CURSOR", "INVALID_CURSOR", DepErrorKind.CURSOR_INVALID),
        (400, b'{"code": "EXHAUSTED_CURSOR"}', "EXHAUSTED_CURSOR", DepErrorKind.CURSOR_EXHAUSTED),
        (400, b"CURSOR_REQUIRED", "CURSOR_REQUIRED", DepErrorKind.BAD_REQUEST),
        (400, b"FLAGS_INVALID", "FLAGS_INVALID", DepErrorKind.BAD_REQUEST),
        (400, b"USER_AGENT_MISSING", "USER_AGENT_MISSING", DepErrorKind.BAD_REQUEST),
        (403, b"T_C_NOT_SIGNED", "T_C_NOT_SIGNED", DepErrorKind.TERMS_NOT_SIGNED),
        (403, b"ACCESS_DENIED", "ACCESS_DENIED", DepErrorKind.ACCESS_DENIED),
        (403, b'"FORBIDDEN"', "FORBIDDEN", DepErrorKind.SESSION_STALE),
        (401, b"UNAUTHORIZED", "UNAUTHORIZED", DepErrorKind.UNAUTHORIZED),
        (401, b"", None, DepErrorKind.UNAUTHORIZED),
        (404, b"NOT_FOUND", "NOT_FOUND", DepErrorKind.NOT_FOUND),
        (429, b"", None, DepErrorKind.THROTTLED),
        (503, b"<html>down</html>", None, DepErrorKind.UNAVAILABLE),
        (500, b"oops", None, DepErrorKind.SERVER_ERROR),
        (400, b"A_CODE_FROM_2031", "A_CODE_FROM_2031", DepErrorKind.BAD_REQUEST),
    ],
)
def test_classify_error(status: int, body: bytes, code: str | None, kind: DepErrorKind) -> None:
    error = classify_error(status, body)

    assert (error.status, error.code, error.kind) == (status, code, kind)
    assert error.retryable == (kind in (DepErrorKind.THROTTLED, DepErrorKind.UNAVAILABLE))


@given(st.integers(100, 599), st.binary(max_size=300) | st.text(max_size=300))
def test_classify_error_never_fails(status: int, body: bytes | str) -> None:
    error = classify_error(status, body)

    assert len(error.detail) <= 200
