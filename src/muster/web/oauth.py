"""OAuth 2.0 endpoints, shaped like Microsoft identity platform v2 (`/oauth2/v2.0/...`): the token endpoint
(RFC 6749 §3.2) for client credentials (§4.4, with RFC 7523 client assertions) and the device code grant
(RFC 8628), the device authorization endpoint, and the discovery documents (RFC 8414, RFC 7517).

Not admin routes: each authenticates its caller itself, so they stay out of the published OpenAPI.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from muster.app import Container
from muster.domain.rbac import TokenSubject
from muster.domain.sign_in import OAuthError
from muster.services.device_codes import display_user_code
from muster.web.admin.deps import container

router = APIRouter(include_in_schema=False)

TOKEN_PATH = "/oauth2/v2.0/token"
DEVICE_CODE_PATH = "/oauth2/v2.0/devicecode"
DEVICE_PAGE_PATH = "/device"
CLIENT_CREDENTIALS = "client_credentials"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_FORM_BYTES = 32 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, each parameter at most once (RFC 6749 §3.2)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", f"the body is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"the parameter {name!r} appears more than once")
        form[name] = value
    return form


def oauth_error(error: OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="muster"'
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    body = {"error": error.error, "error_description": error.description}
    return JSONResponse(body, status_code=error.status, headers=headers)


@router.post(TOKEN_PATH)
async def token(request: Request) -> JSONResponse:
    services = container(request)
    try:
        form = await read_form(request)
        grant_type = form.get("grant_type")
        if grant_type == CLIENT_CREDENTIALS:
            subject, authorized_party = await _authenticate_client(services, request, form)
            issued = services.access_tokens.issue(subject, authorized_party=authorized_party)
        elif grant_type == DEVICE_CODE_GRANT:
            device_code, client_id = form.get("device_code"), form.get("client_id")
            if not device_code or not client_id:
                raise OAuthError("invalid_request", "device_code and client_id are required")
            login = await services.device_codes.poll(device_code=device_code, client_id=client_id)
            issued = services.access_tokens.issue(login.subject, authorized_party=client_id, amr=login.amr)
        elif not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        else:
            raise OAuthError("unsupported_grant_type", f"the grant type {grant_type[:100]!r} is not supported")
    except OAuthError as error:
        return oauth_error(error)
    body = {"token_type": "Bearer", "expires_in": issued.expires_in, "access_token": issued.access_token}
    return JSONResponse(body, headers=_NO_STORE)


async def _authenticate_client(services: Container, request: Request, form: dict[str, str]) -> tuple[TokenSubject, str]:
    """The client and its client id, by whichever single method it used (RFC 6749 §2.3)."""
    basic = _basic_credentials(request.headers.get("authorization"))
    assertion = form.get("client_assertion")
    methods = [basic is not None, "client_secret" in form, assertion is not None]
    if sum(methods) != 1:
        raise OAuthError("invalid_request", "authenticate the client with exactly one method", status=400)
    if assertion is not None:
        if form.get("client_assertion_type") != JWT_BEARER_ASSERTION:
            raise OAuthError("invalid_request", f"client_assertion_type must be {JWT_BEARER_ASSERTION}")
        issuer = services.access_tokens.issuer
        subject = await services.api_clients.authenticate_assertion(
            assertion, client_id=form.get("client_id"), audiences={issuer + TOKEN_PATH, issuer}
        )
        return subject, await _app_id(services, subject)
    client_id, secret = basic if basic is not None else (form.get("client_id", ""), form["client_secret"])
    if basic is not None and form.get("client_id", client_id) != client_id:
        raise OAuthError("invalid_request", "client_id differs from the one in the Authorization header")
    return await services.api_clients.authenticate_secret(client_id, secret), client_id


async def _app_id(services: Container, subject: TokenSubject) -> str:
    return (await services.api_clients.get(subject.org_id, subject.subject_id)).app_id


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """client_secret_basic: both parts form-urlencoded, then base64 (RFC 6749 §2.3.1)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_client", "the Basic credentials are not valid base64", status=401) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_client", "the Basic credentials must be client_id:client_secret", status=401)
    return unquote_plus(client_id), unquote_plus(secret)


@router.post(DEVICE_CODE_PATH)
async def device_code(request: Request) -> JSONResponse:
    services = container(request)
    try:
        form = await read_form(request)
        authorization = await services.device_codes.start(form.get("client_id", ""))
    except OAuthError as error:
        return oauth_error(error)
    page = services.access_tokens.issuer + DEVICE_PAGE_PATH
    user_code = display_user_code(authorization.user_code)
    body = {
        "device_code": authorization.device_code,
        "user_code": user_code,
        "verification_uri": page,
        "verification_uri_complete": f"{page}?user_code={user_code}",
        "expires_in": authorization.expires_in,
        "interval": authorization.interval,
        "message": f"To sign in, open {page} and enter the code {user_code}.",
    }
    return JSONResponse(body, headers=_NO_STORE)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    return container(request).access_tokens.jwks()


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> dict[str, Any]:
    issuer = container(request).access_tokens.issuer
    return {
        "issuer": issuer,
        "token_endpoint": issuer + TOKEN_PATH,
        "device_authorization_endpoint": issuer + DEVICE_CODE_PATH,
        "jwks_uri": issuer + "/.well-known/jwks.json",
        "grant_types_supported": [CLIENT_CREDENTIALS, DEVICE_CODE_GRANT],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
        "response_types_supported": [],
        "subject_types_supported": ["public"],
    }
