"""Access tokens: short-lived ES256 JWTs (RFC 7519) that Muster issues to API clients and signed-in users.

Claims follow Entra ID's v2 access tokens where they mean the same thing (`oid`, `tid`, `idtyp`, `name`), so a
script that decodes Microsoft's tokens reads ours. The signing key is generated at first start and stored
encrypted with the operator's master key; every server process of an installation shares it through the
database, and the public half is published as a JWKS (RFC 7517).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from muster.domain.clock import Clock
from muster.domain.rbac import TokenSubject
from muster.pki.secretbox import SecretBox

AUDIENCE = "muster"
ALGORITHM = "ES256"
LEEWAY_SECONDS = 60
MAX_TOKEN_LENGTH = 8192
_KEY_PURPOSE = "oauthSigningKey"
_RELOAD_AFTER_SECONDS = 10.0  # at most this often, an unknown `kid` makes us look for a key another process made
_IDTYP = {"user": "user", "client": "app"}


class SigningKeyStore(Protocol):
    async def all(self, org_id: str) -> list[tuple[str, bytes]]:
        """(kid, encrypted private key PEM) of every signing key, oldest first."""

    async def add(self, *, org_id: str, kid: str, key_encrypted: bytes, now: datetime) -> None: ...


class TokenSubjects(Protocol):
    async def active(self, *, org_id: str, kind: str, subject_id: str) -> bool:
        """Whether the user exists and is enabled, or the API client still exists."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class AccessTokens:
    """Issues and verifies access tokens (implements `muster.domain.rbac.TokenVerifier`)."""

    def __init__(
        self,
        *,
        keys: SigningKeyStore,
        subjects: TokenSubjects,
        secrets: SecretBox,
        clock: Clock,
        org_id: str,
        issuer: str,
        lifetime_seconds: int,
    ) -> None:
        self._keys = keys
        self._subjects = subjects
        self._secrets = secrets
        self._clock = clock
        self._org_id = org_id
        self.issuer = issuer
        self._lifetime = lifetime_seconds
        self._key_set = KeySet([])
        self._signing_key: ECKey | None = None
        self._loaded_at = float("-inf")

    async def load(self) -> None:
        """Read the signing keys, creating the first one on first start."""
        stored = await self._keys.all(self._org_id)
        if not stored:
            key = ECKey.generate_key("P-256", auto_kid=True)
            await self._keys.add(
                org_id=self._org_id,
                kid=key.kid or "",
                key_encrypted=self._secrets.encrypt(key.as_pem(private=True), purpose=_KEY_PURPOSE),
                now=self._clock.now(),
            )
            stored = await self._keys.all(self._org_id)  # another process may have made one too: all are valid
        keys = [
            ECKey.import_key(self._secrets.decrypt(encrypted, purpose=_KEY_PURPOSE), {"kid": kid, "use": "sig"})
            for kid, encrypted in stored
        ]
        self._key_set = KeySet(list(keys))
        self._signing_key = keys[-1]
        self._loaded_at = time.monotonic()

    def jwks(self) -> dict[str, Any]:
        """The public keys, as published at /.well-known/jwks.json."""
        return {"keys": [{**key.as_dict(private=False), "alg": ALGORITHM} for key in self._key_set.keys]}

    def issue(self, subject: TokenSubject, *, authorized_party: str, amr: tuple[str, ...] = ()) -> IssuedToken:
        if self._signing_key is None:
            raise RuntimeError("AccessTokens.load() was not awaited")
        now = int(self._clock.now().timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": subject.subject_id,
            "oid": subject.subject_id,
            "tid": subject.org_id,
            "idtyp": _IDTYP[subject.kind],
            "name": subject.display_name,
            "azp": authorized_party,
            "iat": now,
            "nbf": now,
            "exp": now + self._lifetime,
            "jti": str(uuid.uuid4()),
        }
        if amr:
            claims["amr"] = list(amr)
        header = {"alg": ALGORITHM, "kid": self._signing_key.kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, self._signing_key, algorithms=[ALGORITHM])
        return IssuedToken(token, self._lifetime)

    async def verify(self, token: str) -> TokenSubject | None:
        """The subject of a valid token whose user or client is still active; None for anything else."""
        claims = await self._valid_claims(token)
        if claims is None:
            return None
        kind = "user" if claims["idtyp"] == "user" else "client"
        subject = TokenSubject(
            org_id=claims["tid"], kind=kind, subject_id=claims["sub"], display_name=str(claims.get("name", ""))
        )
        if not await self._subjects.active(org_id=subject.org_id, kind=kind, subject_id=subject.subject_id):
            return None
        return subject

    async def _valid_claims(self, token: str) -> dict[str, Any] | None:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            return None
        try:
            decoded = jwt.decode(token, self._key_set, algorithms=[ALGORITHM])
        except JoseError:
            if time.monotonic() - self._loaded_at < _RELOAD_AFTER_SECONDS:
                return None
            await self.load()  # perhaps signed with a key another server process created since we loaded
            try:
                decoded = jwt.decode(token, self._key_set, algorithms=[ALGORITHM])
            except JoseError:
                return None
        except ValueError:
            return None
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock.now().timestamp()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            nbf={"essential": True},
            sub={"essential": True},
            tid={"essential": True},
            idtyp={"essential": True, "values": ["app", "user"]},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError:
            return None
        claims = decoded.claims
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("tid"), str):
            return None
        return claims
