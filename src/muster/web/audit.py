"""Audit of the admin API, independent of each route remembering to: an ASGI middleware around the app.

For every request that reached an admin route (one declaring its required permission, see `deps.require`) it
records one event before the response leaves:
- a change (any method but GET/HEAD/OPTIONS): actor, the route's operation name, method and path, the target ids
  from the path (or the created object's id), success or failure with the status code, the request id as
  correlation id, the JSON body with secrets redacted, and the details services attached while serving it;
- a refusal (401 or 403, any method) as a `security` event, without the credentials.
Only paths under /graph/ are examined, so device traffic pays nothing. The client address is the TCP peer's:
forwarded-for headers are not trusted.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from muster.domain.rbac import Principal
from muster.services.audit import (
    Actor,
    AdminActivity,
    AuditRecord,
    AuditWriter,
    collecting,
    modified_properties,
    redact,
)

log = logging.getLogger(__name__)

MAX_KEPT_BODY = 64 * 1024
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CREATE_VERBS = ("create", "add", "import", "register")
_ACTION = re.compile(r"[a-z][A-Za-z0-9]*(\(\))?")
_ACTOR_KINDS = {"user": "ItPro", "client": "Application", "apiToken": "Application"}


def is_admin_route(route: object) -> bool:
    return isinstance(route, APIRoute) and any(
        getattr(dependency.call, "required_permission", None) is not None for dependency in route.dependant.dependencies
    )


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route of an app, looking inside included routers (FastAPI keeps them nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def operation_name(route: APIRoute) -> str:
    """The Graph action a route is (`.../{id}/uploadDepToken` -> `uploadDepToken`), else its endpoint's name in
    camelCase (`create_token` -> `createToken`)."""
    *parents, last = route.path.rstrip("/").split("/")
    if "{" not in last and any("{" in parent for parent in parents) and _ACTION.fullmatch(last):
        return last.removesuffix("()")
    first, *rest = route.name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def operation_type(method: str, name: str) -> str:
    if method == "DELETE":
        return "Delete"
    if method in ("PATCH", "PUT"):
        return "Patch"
    if method in READ_METHODS:
        return "Get"
    return "Create" if name.startswith(_CREATE_VERBS) else "Action"


def category_of(route: APIRoute) -> str:
    return str(route.tags[0]) if route.tags else "admin"


class _Exchange:
    """What one admin request said and answered, as far as the audit needs it."""

    def __init__(self, scope: Scope, activity: AdminActivity) -> None:
        self.scope = scope
        self.activity = activity
        self.body = bytearray()
        self.body_truncated = False

    def keep(self, chunk: bytes) -> None:
        room = MAX_KEPT_BODY - len(self.body)
        self.body += chunk[:room]
        self.body_truncated = self.body_truncated or len(chunk) > room

    def request_detail(self) -> Any:
        content_type = _header(self.scope, b"content-type")
        if not self.body:
            return None
        if "json" in content_type and not self.body_truncated:
            try:
                parsed = json.loads(self.body)
            except ValueError:
                return {"contentType": content_type, "bytes": len(self.body), "note": "not valid JSON"}
            return redact(parsed) if isinstance(parsed, Mapping) else redact({"value": parsed})["value"]
        return {"contentType": content_type, "bytes": len(self.body)}  # binary uploads may be secrets: never kept

    def record(self, status: int, response_body: bytes | None) -> AuditRecord | None:
        route = self.scope.get("route")
        if not is_admin_route(route):
            return self._changes_only(status)
        assert isinstance(route, APIRoute)
        method = self.scope["method"]
        refused = status in (401, 403)
        if method in READ_METHODS and not refused and not self.activity.changes:
            return None  # reading is not audited, unless the service recorded a change (e.g. a new CSR)
        name = operation_name(route)
        category = category_of(route)
        request = self.request_detail() if not refused else None
        detail: dict[str, Any] = {}
        if request is not None:
            detail["request"] = request
        if self.activity.changes:
            detail["changes"] = [vars(change) for change in self.activity.changes]
        refusal = "authenticationFailed" if status == 401 else "authorizationDenied"
        return AuditRecord(
            category="security" if refused else category,
            activity=name,
            activity_type=refusal if refused else f"{name} {category}",
            operation_type=operation_type(method, name),
            result="success" if status < 400 else "failure",
            status_code=status,
            correlation_id=self.activity.correlation_id,
            actor=self._actor(),
            http_method=method,
            path=self.scope["path"],
            resources=self._resources(category, request, response_body, refused),
            detail=detail,
        )

    def _changes_only(self, status: int) -> AuditRecord | None:
        """Changes services recorded while serving a request that is not an admin route (none is expected)."""
        changes = self.activity.changes
        if not changes:
            return None
        resources = [_resource(change.target, change.activity) for change in changes]
        for resource, change in zip(resources, changes, strict=True):
            resource["modifiedProperties"] = modified_properties(change.detail)
        return AuditRecord(
            category="admin",
            activity=changes[0].activity,
            activity_type=f"{changes[0].activity} admin",
            operation_type="Action",
            result="failure" if any(change.result != "success" for change in changes) else "success",
            status_code=status,
            correlation_id=self.activity.correlation_id,
            actor=Actor(kind="Unknown", name=changes[0].actor, ip_address=self._actor().ip_address),
            http_method=self.scope["method"],
            path=self.scope["path"],
            resources=resources,
            detail={"changes": [vars(change) for change in changes]},
        )

    def _actor(self) -> Actor:
        principal = self.scope.get("state", {}).get("principal")
        client = self.scope.get("client")
        address = client[0] if client else None
        if not isinstance(principal, Principal):
            return Actor(kind="Unknown", name="unauthenticated", ip_address=address)
        kind = _ACTOR_KINDS.get(principal.kind, "Application")
        return Actor(kind=kind, name=principal.display_name, id=principal.id, ip_address=address)

    def _resources(
        self, category: str, request: Any, response_body: bytes | None, refused: bool
    ) -> list[dict[str, Any]]:
        ids = [str(value) for value in self.scope.get("path_params", {}).values()]
        created = _created_id(response_body)
        if created and created not in ids:
            ids.append(created)
        resources = {rid: _resource(rid, category) for rid in ids}
        # The request's properties belong to the object acted on (the last id), or to an unnamed one (a refused
        # create), so an admin sees what was attempted too.
        acted_on = ids[-1] if ids else ""
        if isinstance(request, Mapping) and not refused and request:
            resources.setdefault(acted_on, _resource(None, category))["modifiedProperties"] += modified_properties(
                request
            )
        for change in self.activity.changes:
            key = change.target or acted_on
            found = resources.setdefault(key, _resource(key or None, change.activity))
            found["modifiedProperties"] += modified_properties(change.detail)
        return list(resources.values())


def _resource(resource_id: str | None, kind: str) -> dict[str, Any]:
    return {"displayName": resource_id, "type": kind, "resourceId": resource_id, "modifiedProperties": []}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")


def _created_id(body: bytes | None) -> str | None:
    if not body or len(body) > MAX_KEPT_BODY:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    value = parsed.get("id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


class AuditMiddleware:
    """Records admin changes and refusals through the audit writer of the app serving the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/graph/"):
            await self.app(scope, receive, send)
            return
        with collecting(scope.get("state", {}).get("request_id", "")) as activity:
            await self._serve(_Exchange(scope, activity), receive, send)

    async def _serve(self, exchange: _Exchange, receive: Receive, send: Send) -> None:
        held: Message | None = None
        recorded = False

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.keep(message.get("body", b""))
            return message

        async def send_after_recording(message: Message) -> None:
            nonlocal held, recorded
            if message["type"] == "http.response.start":
                held = message  # the event is written before the response leaves, so a reader sees it
                return
            if held is not None:
                complete = not message.get("more_body", False)
                await self._record(exchange, held["status"], message.get("body", b"") if complete else None)
                recorded = True
                start, held = held, None
                await send(start)
            await send(message)

        try:
            await self.app(exchange.scope, receive_and_keep, send_after_recording)
        except Exception:
            if not recorded:
                await self._record(exchange, 500, None)
            raise

    async def _record(self, exchange: _Exchange, status: int, response_body: bytes | None) -> None:
        try:
            record = exchange.record(status, response_body)
            if record is not None:
                await self._writer(exchange.scope).write(record)
        except Exception:  # the change is made and answered; a lost audit row is logged loudly, not a 500
            log.exception("could not write the audit event", extra={"path": exchange.scope["path"]})

    @staticmethod
    def _writer(scope: Scope) -> AuditWriter:
        writer: AuditWriter = scope["app"].state.container.audit
        return writer
