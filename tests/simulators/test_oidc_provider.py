"""The simulated OpenID Connect provider speaks the protocol: discovery, PKCE-bound codes used once, client
authentication, and RS256 id_tokens that verify against its JWKS."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from muster.simulators.oidc_provider import OidcProvider, OidcUser, serve_oidc_provider

REDIRECT = "https://rp.example/callback"
VERIFIER = "v" * 50


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
async def provider() -> AsyncIterator[tuple[OidcProvider, httpx.AsyncClient]]:
    idp = OidcProvider(
        client_id="muster",
        client_secret="s3cret",
        redirect_uris=(REDIRECT,),
        user=OidcUser(subject="u1", preferred_username="ada@example.com", amr=("pwd", "mfa"), acr="urn:mfa"),
    )
    async with serve_oidc_provider(idp) as issuer, httpx.AsyncClient(base_url=issuer) as http:
        yield idp, http


async def _code(http: httpx.AsyncClient, **extra: str) -> dict[str, list[str]]:
    params = {
        "response_type": "code",
        "client_id": "muster",
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "st",
        "nonce": "n0",
        "code_challenge": _challenge(VERIFIER),
        "code_challenge_method": "S256",
    } | extra
    answer = await http.get("/authorize", params=params)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return parse_qs(location.query)


async def test_code_flow_issues_a_verifiable_id_token(provider: tuple[OidcProvider, httpx.AsyncClient]) -> None:
    idp, http = provider
    discovery = (await http.get("/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == idp.issuer and discovery["code_challenge_methods_supported"] == ["S256"]
    query = await _code(http)
    assert query["state"] == ["st"]
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT}
    tokens = await http.post("/token", data=form | {"code_verifier": VERIFIER}, auth=("muster", "s3cret"))
    assert tokens.status_code == 200, tokens.text
    keys = KeySet.import_key_set((await http.get(discovery["jwks_uri"])).json())
    claims = jwt.decode(tokens.json()["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == idp.issuer and claims["aud"] == "muster" and claims["nonce"] == "n0"
    assert claims["preferred_username"] == "ada@example.com" and claims["amr"] == ["pwd", "mfa"]
    assert claims["acr"] == "urn:mfa" and claims["exp"] > claims["iat"]
    again = await http.post("/token", data=form | {"code_verifier": VERIFIER}, auth=("muster", "s3cret"))
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code works once


async def test_token_endpoint_checks_pkce_and_client(provider: tuple[OidcProvider, httpx.AsyncClient]) -> None:
    _, http = provider
    code = (await _code(http))["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    wrong_secret = await http.post("/token", data=form | {"code_verifier": VERIFIER}, auth=("muster", "nope"))
    assert wrong_secret.status_code == 401
    wrong_verifier = await http.post(
        "/token", data=form | {"code_verifier": "w" * 50, "client_id": "muster", "client_secret": "s3cret"}
    )
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    posted = await http.post(
        "/token",
        data={**form, "code": (await _code(http))["code"][0], "code_verifier": VERIFIER}
        | {"client_id": "muster", "client_secret": "s3cret"},
    )
    assert posted.status_code == 200  # client_secret_post works as well as client_secret_basic


async def test_knobs_step_up_and_errors(provider: tuple[OidcProvider, httpx.AsyncClient]) -> None:
    idp, http = provider
    assert (await _code(http, code_challenge_method="plain"))["error"] == ["invalid_request"]
    idp.authorization_error = "access_denied"
    assert (await _code(http))["error"] == ["access_denied"]
    idp.authorization_error = None
    idp.user = OidcUser(subject="u2", preferred_username="bob@example.com", step_up_amr=("pwd", "otp"))
    await _code(http, prompt="login")
    assert idp.authorization_requests[-1]["prompt"] == "login"
    unknown_client = await http.get("/authorize", params={"client_id": "other", "redirect_uri": REDIRECT})
    assert unknown_client.status_code == 400  # never redirects to an unregistered place
