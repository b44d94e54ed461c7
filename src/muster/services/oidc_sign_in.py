"""Signing a user in at the organisation's OpenID Connect provider (OpenID Connect Core 1.0 §3.1, the
authorization code flow, with RFC 7636 PKCE S256, `state` and `nonce`).

The id_token is checked as Core §3.1.3.7 says: signature against the provider's JWKS (fetched again when a
token names a key we have not seen: providers roll keys), `alg` from an allow-list (never `none`), `iss`,
`aud`, `azp`, `exp`, `iat` and `nonce`. The user is then matched by user principal name to the directory.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from muster.domain.clock import Clock
from muster.domain.errors import NotAllowed, PreconditionMissing
from muster.domain.sign_in import SignedInUser
from muster.services.identity_provider import IdentityProviders, RelyingPartyCredentials

log = logging.getLogger(__name__)

SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# RFC 8176 methods that prove more than a password (the brief's list: multi-factor, one-time code, keys, FIDO).
MFA_METHODS = frozenset({"mfa", "otp", "hwk", "swk", "fido"})
DISCOVERY_TTL = timedelta(hours=1)
CLOCK_LEEWAY_SECONDS = 60


class OidcProviderError(Exception):
    """The provider could not be reached or answered something unusable (the message is safe to show)."""


class OidcProviderApi(Protocol):
    async def metadata(self, issuer: str) -> dict[str, Any]:
        """The provider's discovery document (`/.well-known/openid-configuration`)."""

    async def keys(self, jwks_uri: str) -> dict[str, Any]:
        """The provider's JWK set."""

    async def exchange_code(
        self,
        token_endpoint: str,
        *,
        form: dict[str, str],
        basic_auth: tuple[str, str] | None,
    ) -> dict[str, Any]:
        """The token response to an authorization-code grant."""


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    display_name: str | None
    account_enabled: bool


class SignInDirectory(Protocol):
    async def find_user(self, org_id: str, user_principal_name: str) -> DirectoryUser | None: ...


class SignInFailures(Protocol):
    async def record_failure(
        self, *, org_id: str, request_id: str | None, stage: str, reason: str, detail: str, now: datetime
    ) -> None: ...


@dataclass(frozen=True)
class PendingSignIn:
    """What must come back with the user from the provider; the web layer keeps it in a signed cookie."""

    state: str
    nonce: str
    code_verifier: str
    step_up: bool  # asked the provider for a fresh, multifactor sign-in


class SignInRefused(NotAllowed):
    """The person may not sign in to enroll; `reason` is a stable code, `retry_with_mfa` when stepping up helps."""

    def __init__(self, message: str, *, reason: str, retry_with_mfa: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_with_mfa = retry_with_mfa


def multifactor(amr: tuple[str, ...], acr: str | None, mfa_acr_values: tuple[str, ...]) -> bool:
    """Whether a sign-in used several factors: an MFA-grade `amr` method or an `acr` the admin trusts as MFA."""
    return not MFA_METHODS.isdisjoint(amr) or (acr is not None and acr in mfa_acr_values)


class OidcSignIn:
    def __init__(
        self,
        *,
        providers: IdentityProviders,
        api: OidcProviderApi,
        directory: SignInDirectory,
        failures: SignInFailures,
        clock: Clock,
    ) -> None:
        self._providers = providers
        self._api = api
        self._directory = directory
        self._failures = failures
        self._clock = clock
        self._metadata: dict[str, tuple[dict[str, Any], datetime]] = {}
        self._keys: dict[str, KeySet] = {}

    async def configured(self, org_id: str) -> bool:
        return await self._providers.credentials(org_id) is not None

    async def begin(self, org_id: str, *, redirect_uri: str, step_up: bool = False) -> tuple[str, PendingSignIn]:
        """The provider's authorization URL to send the browser to, and what to keep until it returns."""
        credentials = await self._credentials(org_id)
        config = credentials.config
        metadata = await self._discover(credentials.issuer)
        pending = PendingSignIn(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),
            step_up=step_up,
        )
        params = {
            "response_type": "code",
            "client_id": credentials.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(config.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": _s256(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        if config.require_mfa_for_enrollment and config.mfa_acr_values:
            params["acr_values"] = " ".join(config.mfa_acr_values)
        if step_up:
            params["prompt"] = "login"  # a fresh sign-in, so the provider asks for the second factor again
        endpoint = str(metadata["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}", pending

    async def complete(self, org_id: str, *, redirect_uri: str, code: str, pending: PendingSignIn) -> SignedInUser:
        """Redeem the code, check the id_token and match the user; raises SignInRefused with the reason."""
        credentials = await self._credentials(org_id)
        config = credentials.config
        metadata = await self._discover(credentials.issuer)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        basic = _token_auth(credentials, metadata, form)
        answer = await self._api.exchange_code(str(metadata["token_endpoint"]), form=form, basic_auth=basic)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise OidcProviderError("the provider's token response has no id_token")
        claims = await self._verified_claims(id_token, credentials, metadata, pending.nonce)
        upn = claims.get(config.user_principal_name_claim)
        if not isinstance(upn, str) or not upn:
            raise SignInRefused(
                f"The identity provider did not send the '{config.user_principal_name_claim}' claim that names "
                "the user; ask your administrator to check the identity provider settings.",
                reason="userPrincipalNameMissing",
            )
        user = await self._directory_user(org_id, upn)
        amr, acr = _methods(claims)
        if config.require_mfa_for_enrollment and not multifactor(amr, acr, config.mfa_acr_values):
            await self._fail(org_id, "mfaRequired", f"{user.user_principal_name} signed in without MFA (amr={amr})")
            raise SignInRefused(
                "Your organisation requires multifactor authentication to enroll a device, and this sign-in used "
                "only one factor.",
                reason="mfaRequired",
                retry_with_mfa=not pending.step_up,
            )
        if multifactor(amr, acr, config.mfa_acr_values) and "mfa" not in amr:
            amr = (*amr, "mfa")  # one spelling for "several factors" across local and provider sign-ins
        return SignedInUser(user.id, user.user_principal_name, user.display_name or user.user_principal_name, amr)

    async def _credentials(self, org_id: str) -> RelyingPartyCredentials:
        credentials = await self._providers.credentials(org_id)
        if credentials is None:
            raise PreconditionMissing("No identity provider is configured for sign-in.")
        return credentials

    async def _directory_user(self, org_id: str, upn: str) -> DirectoryUser:
        user = await self._directory.find_user(org_id, upn)
        if user is None:
            await self._fail(
                org_id, "userUnknown", f"{upn[:320]} signed in at the identity provider but is not in the directory"
            )
            raise SignInRefused(
                f"{upn} is not a user of this organisation's directory, so it cannot enroll devices.",
                reason="userUnknown",
            )
        if not user.account_enabled:
            await self._fail(org_id, "userDisabled", f"{user.user_principal_name} is disabled in the directory")
            raise SignInRefused(f"The account {user.user_principal_name} is disabled.", reason="userDisabled")
        return user

    async def _fail(self, org_id: str, reason: str, detail: str) -> None:
        await self._failures.record_failure(
            org_id=org_id, request_id=None, stage="signIn", reason=reason, detail=detail, now=self._clock.now()
        )

    async def _discover(self, issuer: str) -> dict[str, Any]:
        now = self._clock.now()
        cached = self._metadata.get(issuer)
        if cached is not None and now - cached[1] < DISCOVERY_TTL:
            return cached[0]
        metadata = await self._api.metadata(issuer)
        # Discovery §4.3: the document must name the issuer we asked, or anyone could pose as it.
        if metadata.get("issuer") != issuer:
            raise OidcProviderError(f"the discovery document names issuer {metadata.get('issuer')!r}, not {issuer}")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(name), str):
                raise OidcProviderError(f"the discovery document lacks {name}")
        self._metadata[issuer] = (metadata, now)
        return metadata

    async def _key_set(self, jwks_uri: str, kid: str | None) -> KeySet:
        keys = self._keys.get(jwks_uri)
        if keys is None or (kid is not None and all(key.kid != kid for key in keys)):
            try:
                keys = KeySet.import_key_set(await self._api.keys(jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as error:
                raise OidcProviderError(f"the provider's JWKS cannot be read: {error}") from None
            self._keys[jwks_uri] = keys
        return keys

    async def _verified_claims(
        self, id_token: str, credentials: RelyingPartyCredentials, metadata: dict[str, Any], nonce: str
    ) -> dict[str, Any]:
        client_id = credentials.client_id
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError) as error:
            raise _invalid(f"it is not a signed JWT ({error})") from None
        if header.get("alg") not in SIGNING_ALGORITHMS:
            raise _invalid(f"its algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        keys = await self._key_set(str(metadata["jwks_uri"]), kid)
        try:
            token = jwt.decode(id_token, keys, algorithms=SIGNING_ALGORITHMS)
            JWTClaimsRegistry(
                now=int(self._clock.now().timestamp()),
                leeway=CLOCK_LEEWAY_SECONDS,
                iss={"essential": True, "value": credentials.issuer},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except JoseError as error:
            raise _invalid(str(error)) from None
        claims = dict(token.claims)
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or client_id not in audiences:
            raise _invalid("it was issued to another client (aud)")
        # Core §3.1.3.7 (4, 5): with several audiences, or any azp, the authorized party must be us.
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
            raise _invalid("it was issued to another client (azp)")
        if claims["iat"] > self._clock.now().timestamp() + CLOCK_LEEWAY_SECONDS:
            raise _invalid("it was issued in the future (iat)")
        return claims


def _methods(claims: dict[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """The `amr` and `acr` claims, ignoring values of the wrong type."""
    amr = claims.get("amr")
    acr = claims.get("acr")
    methods = tuple(m for m in amr if isinstance(m, str)) if isinstance(amr, list) else ()
    return methods, acr if isinstance(acr, str) else None


def _invalid(why: str) -> SignInRefused:
    log.warning("id_token refused: %s", why)
    return SignInRefused(f"The identity provider's answer could not be trusted: {why}.", reason="idTokenInvalid")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _token_auth(
    credentials: RelyingPartyCredentials, metadata: dict[str, Any], form: dict[str, str]
) -> tuple[str, str] | None:
    """client_secret_basic (the default, Core §9) unless the provider supports only client_secret_post."""
    client_id, secret = credentials.client_id, credentials.client_secret
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if secret is None:
        form["client_id"] = client_id  # a public client: PKCE alone protects the code
        return None
    if "client_secret_basic" not in methods and "client_secret_post" in methods:
        form |= {"client_id": client_id, "client_secret": secret}
        return None
    return client_id, secret
