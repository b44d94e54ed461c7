"""API clients (Graph `applications`) and how they prove who they are at the token endpoint.

A client authenticates with a secret (RFC 6749 §2.3.1, `client_secret_post`/`client_secret_basic`) or with a
JWT assertion signed by the key of a certificate registered on it (RFC 7523 §2.2, `private_key_jwt`). Secrets
are shown once and stored as SHA-256 (they are 256-bit random, so a fast hash is enough); certificates carry no
secret. Repeated failures for one client are refused for a while, so secrets cannot be guessed online.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput, NotFound
from muster.domain.rbac import TokenSubject
from muster.domain.sign_in import OAuthError
from muster.protocols.odata import QueryOptions
from muster.services.audit import AuditSink

MAX_SECRET_LIFETIME = timedelta(days=730)
DEFAULT_SECRET_LIFETIME = timedelta(days=365)
MAX_ASSERTION_LIFETIME = timedelta(minutes=10)
MAX_CERTIFICATE_BYTES = 16 * 1024
MAX_ASSERTION_LENGTH = 16 * 1024
MAX_JTI_LENGTH = 256  # the column's width
FAILURE_WINDOW_SECONDS = 60.0
MAX_FAILURES_PER_WINDOW = 10
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")
_BAD_CLIENT = "client authentication failed"


@dataclass(frozen=True)
class PasswordCredential:
    key_id: str
    display_name: str | None
    hint: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class KeyCredential:
    key_id: str
    display_name: str | None
    thumbprint: str  # SHA-1 of the certificate's DER, upper-case hex (Graph `customKeyIdentifier`)
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Application:
    id: str
    app_id: str
    display_name: str
    created_at: datetime
    passwords: tuple[PasswordCredential, ...] = ()
    keys: tuple[KeyCredential, ...] = ()


class ApiClientStore(Protocol):
    async def add(self, *, org_id: str, application: Application) -> None: ...

    async def page(self, org_id: str, options: QueryOptions) -> tuple[list[Application], str | None, int | None]:
        """One page of applications (OData options), the next page's skiptoken and the count when asked."""

    async def get(self, org_id: str, application_id: str) -> Application | None: ...

    async def by_app_id(self, app_id: str) -> tuple[str, Application] | None:
        """(org id, application) of the client with this client id."""

    async def delete(self, org_id: str, application_id: str) -> bool: ...

    async def add_password(self, application_id: str, credential: PasswordCredential, secret_sha256: str) -> None: ...

    async def remove_credential(self, application_id: str, key_id: str, *, password: bool) -> bool:
        """Remove a password credential (`password`) or a key credential."""

    async def password_end(self, application_id: str, secret_sha256: str) -> datetime | None: ...

    async def add_key(self, application_id: str, credential: KeyCredential, certificate_pem: str) -> bool:
        """False when a certificate with the same thumbprint is already registered on the client."""

    async def certificate(self, application_id: str, thumbprint: str) -> str | None: ...


class SeenAssertions(Protocol):
    async def first_use(self, *, client_id: str, jti: str, expires_at: datetime, now: datetime) -> bool: ...


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_certificate(text: str) -> tuple[x509.Certificate, str]:
    """The certificate an admin uploads (PEM, or base64 DER as Graph's `key` holds) and its PEM; InvalidInput
    saying why for anything else."""
    if len(text) > MAX_CERTIFICATE_BYTES:
        raise InvalidInput(f"the certificate is larger than {MAX_CERTIFICATE_BYTES} bytes")
    if "PRIVATE KEY" in text:
        raise InvalidInput("this is a private key: upload only the certificate (the private key stays with the client)")
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            certificate = x509.load_pem_x509_certificate(text.encode())
        else:
            certificate = x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise InvalidInput("the key is not an X.509 certificate in PEM or base64 DER") from None
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput("the certificate's public key cannot be read") from None
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise InvalidInput("RSA keys must have at least 2048 bits")
    elif not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
        raise InvalidInput("the certificate's key must be RSA (2048 bits or more) or EC P-256")
    return certificate, certificate.public_bytes(serialization.Encoding.PEM).decode()


def thumbprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # an identifier (as x5t is), not a signature


class FailureLimiter:
    """Counts failed authentications per client in a sliding window, in this process."""

    def __init__(self, *, window_seconds: float = FAILURE_WINDOW_SECONDS, limit: int = MAX_FAILURES_PER_WINDOW):
        self._window = window_seconds
        self._limit = limit
        self._failures: dict[str, deque[float]] = {}

    def check(self, client_id: str) -> None:
        failures = self._recent(client_id)
        if len(failures) >= self._limit:
            wait = int(failures[0] + self._window - time.monotonic()) + 1
            raise OAuthError(
                "invalid_client", "too many failed attempts: try again later", status=429, retry_after=wait
            )

    def failed(self, client_id: str) -> None:
        if len(self._failures) > 10_000:  # unknown client ids must not grow memory without bound
            self._failures.clear()
        self._recent(client_id).append(time.monotonic())

    def _recent(self, client_id: str) -> deque[float]:
        failures = self._failures.setdefault(client_id, deque())
        while failures and failures[0] <= time.monotonic() - self._window:
            failures.popleft()
        return failures


class ApiClients:
    def __init__(
        self, *, store: ApiClientStore, seen: SeenAssertions, audit: AuditSink, clock: Clock, limiter: FailureLimiter
    ) -> None:
        self._store = store
        self._seen = seen
        self._audit = audit
        self._clock = clock
        self._limiter = limiter

    async def create(self, org_id: str, display_name: str, *, actor: str) -> Application:
        if not display_name.strip():
            raise InvalidInput("displayName is required")
        application = Application(str(uuid.uuid4()), str(uuid.uuid4()), display_name.strip(), self._clock.now())
        await self._store.add(org_id=org_id, application=application)
        await self._audit.admin_event(
            actor=actor, activity="createApplication", target=application.id, detail={"displayName": display_name}
        )
        return application

    async def page(self, org_id: str, options: QueryOptions) -> tuple[list[Application], str | None, int | None]:
        return await self._store.page(org_id, options)

    async def get(self, org_id: str, application_id: str) -> Application:
        application = await self._store.get(org_id, application_id)
        if application is None:
            raise NotFound(f"no application {application_id}")
        return application

    async def delete(self, org_id: str, application_id: str, *, actor: str) -> None:
        if not await self._store.delete(org_id, application_id):
            raise NotFound(f"no application {application_id}")
        await self._audit.admin_event(actor=actor, activity="deleteApplication", target=application_id, detail={})

    async def add_password(
        self, org_id: str, application_id: str, *, display_name: str | None, end: datetime | None, actor: str
    ) -> tuple[PasswordCredential, str]:
        """A new secret: the credential's metadata and the secret text, which is never shown again."""
        await self.get(org_id, application_id)
        now = self._clock.now()
        end = end or now + DEFAULT_SECRET_LIFETIME
        if end.tzinfo is None:
            raise InvalidInput("endDateTime needs a time zone, e.g. 2027-01-01T00:00:00Z")
        if not now < end <= now + MAX_SECRET_LIFETIME:
            raise InvalidInput("endDateTime must be in the future and at most two years away")
        secret = secrets.token_urlsafe(32)
        credential = PasswordCredential(str(uuid.uuid4()), display_name, secret[:3], now, end)
        await self._store.add_password(application_id, credential, _sha256(secret))
        await self._audit.admin_event(
            actor=actor, activity="addPassword", target=application_id, detail={"keyId": credential.key_id}
        )
        return credential, secret

    async def add_key(
        self, org_id: str, application_id: str, *, certificate_text: str, display_name: str | None, actor: str
    ) -> KeyCredential:
        await self.get(org_id, application_id)
        certificate, pem = read_certificate(certificate_text)
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if end <= self._clock.now():
            raise InvalidInput(f"the certificate expired on {end.isoformat()}")
        credential = KeyCredential(str(uuid.uuid4()), display_name, thumbprint(certificate), start, end)
        if not await self._store.add_key(application_id, credential, pem):
            raise InvalidInput("this certificate is already registered on the application")
        await self._audit.admin_event(
            actor=actor, activity="addKey", target=application_id, detail={"thumbprint": credential.thumbprint}
        )
        return credential

    async def remove_credential(
        self, org_id: str, application_id: str, key_id: str, *, password: bool, actor: str
    ) -> None:
        await self.get(org_id, application_id)
        if not await self._store.remove_credential(application_id, key_id, password=password):
            kind = "password" if password else "key"
            raise NotFound(f"no {kind} credential {key_id} on application {application_id}")
        activity = "removePassword" if password else "removeKey"
        await self._audit.admin_event(actor=actor, activity=activity, target=application_id, detail={})

    async def authenticate_secret(self, client_id: str, secret: str) -> TokenSubject:
        """The client whose id and secret these are; OAuthError invalid_client otherwise."""
        self._limiter.check(client_id)
        found = await self._store.by_app_id(client_id[:64])
        end = await self._store.password_end(found[1].id, _sha256(secret[:512])) if found else None
        if found is None or end is None or end <= self._clock.now():
            self._limiter.failed(client_id)
            raise OAuthError("invalid_client", _BAD_CLIENT, status=401)
        return _subject(*found)

    async def authenticate_assertion(
        self, assertion: str, *, client_id: str | None, audiences: set[str]
    ) -> TokenSubject:
        """The client that signed `assertion` (RFC 7523 §3); OAuthError invalid_client otherwise."""
        header, unverified = _peek(assertion)
        claimed = unverified.get("sub")
        if not isinstance(claimed, str) or (client_id is not None and client_id != claimed):
            raise OAuthError("invalid_client", "the assertion's sub must be the client_id", status=401)
        self._limiter.check(claimed)
        found = await self._store.by_app_id(claimed[:64])
        pem = await self._store.certificate(found[1].id, _key_thumbprint(header)) if found else None
        claims = self._verified_claims(assertion, pem, claimed, audiences) if pem else None
        if found is None or claims is None:
            self._limiter.failed(claimed)
            raise OAuthError("invalid_client", _BAD_CLIENT, status=401)
        expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
        now = self._clock.now()
        if not await self._seen.first_use(client_id=found[1].id, jti=claims["jti"], expires_at=expires_at, now=now):
            self._limiter.failed(claimed)
            raise OAuthError("invalid_client", "this client assertion was already used (jti replay)", status=401)
        return _subject(*found)

    def _verified_claims(self, assertion: str, pem: str, client_id: str, audiences: set[str]) -> dict[str, Any] | None:
        certificate = x509.load_pem_x509_certificate(pem.encode())
        now = self._clock.now()
        if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
            return None
        public_pem = certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        is_rsa = isinstance(certificate.public_key(), rsa.RSAPublicKey)
        key = RSAKey.import_key(public_pem) if is_rsa else ECKey.import_key(public_pem)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(now.timestamp()),
            leeway=60,
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={"essential": True, "values": sorted(audiences)},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            claims = jwt.decode(assertion, key, algorithms=list(ASSERTION_ALGORITHMS)).claims
            registry.validate(claims)
        except (JoseError, ValueError):
            return None
        exp, jti = claims["exp"], claims["jti"]
        if not math.isfinite(exp) or exp > (now + MAX_ASSERTION_LIFETIME).timestamp():
            return None
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            return None
        return claims


def _subject(org_id: str, application: Application) -> TokenSubject:
    return TokenSubject(org_id=org_id, kind="client", subject_id=application.id, display_name=application.display_name)


def _peek(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of an assertion before its signature is checked, only to find the key."""
    parts = assertion.split(".")
    if len(assertion) > MAX_ASSERTION_LENGTH or len(parts) != 3:
        raise OAuthError("invalid_client", "client_assertion is not a compact JWS", status=401)
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2])
    except (ValueError, binascii.Error):
        raise OAuthError("invalid_client", "client_assertion is not a compact JWS", status=401) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise OAuthError("invalid_client", "client_assertion is not a compact JWS", status=401)
    return header, claims


def _key_thumbprint(header: dict[str, Any]) -> str:
    """The certificate thumbprint (upper-case hex) named by `x5t` (base64url SHA-1) or `kid` (hex)."""
    x5t = header.get("x5t")
    if isinstance(x5t, str):
        try:
            return base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4)).hex().upper()
        except (ValueError, binascii.Error):
            return ""
    kid = header.get("kid")
    return kid.upper() if isinstance(kid, str) else ""
