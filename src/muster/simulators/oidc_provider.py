"""A real OpenID Connect provider for tests and demos (OpenID Connect Core 1.0, Discovery 1.0, RFC 7636 PKCE).

It plays the organisation's identity provider: discovery, JWKS, an authorization endpoint that signs in one
configured user without asking (the knobs choose who, with which `amr`/`acr`, or which error), and a token
endpoint for the authorization-code grant (PKCE S256 required, `client_secret_basic` or `client_secret_post`)
that issues RS256 id_tokens. Tests reach inside it to rotate keys or spoil the next id_token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CODE_LIFETIME = 60
ID_TOKEN_LIFETIME = 300
MAX_FORM_BYTES = 16 * 1024


@dataclass
class OidcUser:
    """The person the provider signs in; `amr`/`acr` describe how they authenticated."""

    subject: str
    preferred_username: str
    email: str | None = None
    name: str | None = None
    amr: tuple[str, ...] = ("pwd",)
    acr: str | None = None
    # How they authenticate when the client asks for a fresh or stronger sign-in (`prompt=login`/`acr_values`).
    step_up_amr: tuple[str, ...] | None = None
    step_up_acr: str | None = None


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    claims: dict[str, Any]
    expires_at: float


@dataclass
class OidcProvider:
    """The provider's state and test knobs; `app` is its ASGI application."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    user: OidcUser
    issuer: str = "http://127.0.0.1"
    authorization_error: str | None = None  # e.g. "access_denied": authorizations fail with it while set
    # Claims that override the id_tokens' (a wrong `aud`, `nonce` or `exp`), and a signature to spoil.
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    tamper_signature: bool = False
    authorization_requests: list[dict[str, str]] = field(default_factory=list)
    _keys: list[RSAKey] = field(default_factory=list)
    _grants: dict[str, _Grant] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rotate_key()
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    def rotate_key(self) -> None:
        """A new signing key (published first in the JWKS, old ones stay published, as providers roll keys)."""
        self._keys.insert(0, RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig"}))

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "amr",
                    "acr",
                    "email",
                    "preferred_username",
                    "name",
                ],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet(list(self._keys)).as_dict(private=False))

    async def _authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorization_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            return JSONResponse({"error": "invalid_request", "error_description": "unknown client"}, 400)
        state = {"state": query["state"]} if "state" in query else {}
        if self.authorization_error:
            return _redirect(redirect_uri, {"error": self.authorization_error, **state})
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **state})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return _redirect(redirect_uri, {"error": "invalid_request", **state})
        code = secrets.token_urlsafe(32)
        self._grants[code] = _Grant(
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            code_challenge=query["code_challenge"],
            nonce=query.get("nonce"),
            claims=self._user_claims(stepped_up="acr_values" in query or query.get("prompt") == "login"),
            expires_at=time.time() + CODE_LIFETIME,
        )
        return _redirect(redirect_uri, {"code": code, **state})

    def _user_claims(self, *, stepped_up: bool) -> dict[str, Any]:
        user = self.user
        amr = user.step_up_amr if stepped_up and user.step_up_amr is not None else user.amr
        acr = user.step_up_acr if stepped_up and user.step_up_acr is not None else user.acr
        claims: dict[str, Any] = {"sub": user.subject, "preferred_username": user.preferred_username, "amr": list(amr)}
        optional = {"email": user.email, "name": user.name, "acr": acr}
        return claims | {name: value for name, value in optional.items() if value is not None}

    async def _token(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _token_error("invalid_request", 413)
        form = dict((await request.form()).items())
        client_id, client_secret = _client_credentials(request.headers.get("authorization"), form)
        if client_id != self.client_id or not secrets.compare_digest(
            (client_secret or "").encode(), self.client_secret.encode()
        ):
            return _token_error("invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return _token_error("unsupported_grant_type")
        grant = self._grants.pop(str(form.get("code", "")), None)  # a code is good for one exchange
        if grant is None or grant.expires_at < time.time() or grant.redirect_uri != form.get("redirect_uri"):
            return _token_error("invalid_grant")
        verifier = str(form.get("code_verifier", ""))
        if not secrets.compare_digest(_s256(verifier).encode(), grant.code_challenge.encode()):
            return _token_error("invalid_grant")
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": ID_TOKEN_LIFETIME,
                "id_token": self._id_token(grant),
            },
            headers={"Cache-Control": "no-store"},
        )

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": grant.client_id, "iat": now, "exp": now + ID_TOKEN_LIFETIME}
        claims |= grant.claims | ({"nonce": grant.nonce} if grant.nonce else {})
        claims |= self.id_token_overrides
        key = self._keys[0]
        token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])
        if self.tamper_signature:
            header, payload, signature = token.split(".")
            flipped = "A" if signature[0] != "A" else "B"
            token = f"{header}.{payload}.{flipped}{signature[1:]}"
        return token


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _client_credentials(authorization: str | None, form: dict[str, Any]) -> tuple[str | None, str | None]:
    """`client_secret_basic` (RFC 6749 §2.3.1, form-encoded then base64) or `client_secret_post`."""
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None, None
        basic_id, _, basic_secret = decoded.partition(":")
        return unquote_plus(basic_id), unquote_plus(basic_secret)
    posted_id, posted_secret = form.get("client_id"), form.get("client_secret")
    return (str(posted_id) if posted_id else None), (str(posted_secret) if posted_secret else None)


def _redirect(redirect_uri: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)


def _token_error(code: str, status: int = 400) -> Response:
    return JSONResponse({"error": code}, status, headers={"Cache-Control": "no-store"})


@asynccontextmanager
async def serve_oidc_provider(provider: OidcProvider, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `provider` over plain HTTP on a free port; sets and yields its issuer URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    provider.issuer = f"http://{host}:{sock.getsockname()[1]}"
    config = uvicorn.Config(provider.app, log_level="warning", lifespan="off", http="h11", ws="none", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield provider.issuer
    finally:
        server.should_exit = True
        await task
        sock.close()
