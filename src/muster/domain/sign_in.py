"""The outcome of an interactive user sign-in, whichever way the user proved who they are (local account or
the organisation's OpenID Connect provider), and the refusals a sign-in page must tell apart."""

from __future__ import annotations

from dataclasses import dataclass

from muster.domain.errors import NotAllowed

PASSWORD = "pwd"
ONE_TIME_PASSCODE = "otp"
MULTIPLE_FACTORS = "mfa"


@dataclass(frozen=True)
class SignedInUser:
    """A directory user who just signed in; `amr` lists the methods used (RFC 8176 values)."""

    user_id: str
    user_principal_name: str
    display_name: str
    amr: tuple[str, ...]

    @property
    def multifactor(self) -> bool:
        return MULTIPLE_FACTORS in self.amr


class TotpRequired(NotAllowed):
    """The password was right but the account needs a one-time code: the page should ask for it."""


class TotpEnrollmentRequired(NotAllowed):
    """The password was right and the account must set up an authenticator app first: `otpauth_uri` is shown
    once; signing in again with a code from that app confirms it."""

    def __init__(self, message: str, otpauth_uri: str) -> None:
        super().__init__(message)
        self.otpauth_uri = otpauth_uri


class OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 §5.2, RFC 8628 §3.5): `error` is the registered code."""

    def __init__(self, error: str, description: str, *, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after
