"""Outbound calls to the organisation's OpenID Connect provider: discovery, JWKS and the token endpoint.

Every answer is size-limited and must be a JSON object; failures become `OidcProviderError` with a message
that names the endpoint but never the client secret, the code or a token.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import httpx

from muster import __version__
from muster.services.oidc_sign_in import OidcProviderError

MAX_ANSWER_BYTES = 512 * 1024
TIMEOUT = httpx.Timeout(10.0)


class HttpOidcProviderApi:
    """Implements `muster.services.oidc_sign_in.OidcProviderApi` over httpx (a transport can stand in)."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport

    async def metadata(self, issuer: str) -> dict[str, Any]:
        return await self._json("GET", f"{issuer}/.well-known/openid-configuration")

    async def keys(self, jwks_uri: str) -> dict[str, Any]:
        return await self._json("GET", jwks_uri)

    async def exchange_code(
        self, token_endpoint: str, *, form: dict[str, str], basic_auth: tuple[str, str] | None
    ) -> dict[str, Any]:
        # RFC 6749 §2.3.1: client_secret_basic form-encodes id and secret before base64.
        auth = httpx.BasicAuth(quote_plus(basic_auth[0]), quote_plus(basic_auth[1])) if basic_auth else None
        return await self._json("POST", token_endpoint, data=form, auth=auth)

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        # A client per call: sign-ins are rare (discovery and keys are cached), and nothing is left to close.
        headers = {"User-Agent": f"Muster/{__version__}", "Accept": "application/json"}
        try:
            async with (
                httpx.AsyncClient(transport=self._transport, timeout=TIMEOUT, headers=headers) as http,
                http.stream(method, url, **kwargs) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise OidcProviderError(f"{url} answered more than {MAX_ANSWER_BYTES} bytes")
        except httpx.HTTPError as error:
            raise OidcProviderError(f"cannot reach {url}: {type(error).__name__}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if response.status_code != 200:
            code = str(answer.get("error"))[:64] if isinstance(answer, dict) and answer.get("error") else None
            raise OidcProviderError(f"{url} answered HTTP {response.status_code}" + (f" ({code})" if code else ""))
        if not isinstance(answer, dict):
            raise OidcProviderError(f"{url} did not answer a JSON object")
        return answer
