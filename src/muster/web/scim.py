"""SCIM 2.0 provisioning at /scim/v2 (RFC 7643/7644), for Entra ID, Okta and any other identity provider.

Built on scim2-server's ASGI application; authentication is a provisioning token (bearer secret) that names the
organisation. Not an admin route: it is mounted beside the admin API and left out of the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from scim2_models import InvalidFilterException, PayloadTooLargeException, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication, Receive, Scope, Send
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService

from muster.app import Container
from muster.web.scim_compat import rewrite_group_body
from muster.web.scim_resources import MAX_BODY_BYTES, MAX_FILTER_LENGTH, scim_provider
from muster.web.scim_storage import Client, DirectoryScimStorage, current_client

SCIM_PREFIX = "/scim"


class _LimitedService(ScimService):
    def max_body_size(self, request: ScimRequest) -> int | None:
        limit = super().max_body_size(request)
        return MAX_BODY_BYTES if limit is None else min(limit, MAX_BODY_BYTES)


class ScimApplication(ASGIApplication):
    def __init__(self, container: Container) -> None:
        provider = scim_provider()
        super().__init__(DirectoryScimStorage(container.directory, provider), provider, _LimitedService(provider))
        self._tokens = container.provisioning_tokens

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        if len(request.body) > MAX_BODY_BYTES:  # read_request keeps one byte more than the limit
            raise PayloadTooLargeException(detail=f"the body is larger than {MAX_BODY_BYTES} bytes")
        if len(request.query.get("filter", "")) > MAX_FILTER_LENGTH:
            raise InvalidFilterException(detail=f"the filter is longer than {MAX_FILTER_LENGTH} characters")
        if self.service.match(request).operation is Operation.service_provider_config:
            return await self.handler.handle(request)  # public, as RFC 7643 §5 says
        scheme, _, secret = (request.header("Authorization") or "").partition(" ")
        found = await self._tokens.authenticate(secret.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise UnauthorizedException(detail="a valid provisioning token is required (Authorization: Bearer ...)")
        if request.path.startswith("/Groups") and request.method in ("POST", "PUT", "PATCH"):
            request.body = rewrite_group_body(request.method, request.body)
        token = current_client.set(Client(*found))
        try:
            return await self.handler.handle(request)
        finally:
            current_client.reset(token)

    def finalize_response(self, request: ScimRequest, response: ScimResponse) -> ScimResponse:
        if int(response.status) == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="Muster SCIM"'
        return super().finalize_response(request, response)


def mount_scim(app: FastAPI) -> None:
    """Serve SCIM under /scim over the app's container, built on first use (the container exists from start-up)."""

    async def scim(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        state: Any = scope["app"].state
        if getattr(state, "scim", None) is None:
            state.scim = ScimApplication(state.container)
        await state.scim(scope, receive, send)

    app.mount(SCIM_PREFIX, scim)  # type: ignore[arg-type]  # scim2-server's ASGI aliases use dict, not Mapping
