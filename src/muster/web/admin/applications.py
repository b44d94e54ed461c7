"""Graph `applications`: API clients, their secrets (`addPassword`/`removePassword`) and certificates
(`addKey`/`removeKey`). A secret's text is returned once, by `addPassword`, and never again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.errors import InvalidInput
from muster.domain.rbac import Permission, Principal
from muster.protocols.odata import next_link, parse_query_options
from muster.services.api_clients import Application, KeyCredential, PasswordCredential
from muster.web.admin.deps import GRAPH, container, require

router = APIRouter(prefix=f"{GRAPH}/applications", tags=["applications"])

Reader = Annotated[Principal, Depends(require(Permission.API_CLIENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.API_CLIENTS_WRITE))]


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class ApplicationCreate(_Body):
    display_name: str = Field(alias="displayName", min_length=1, max_length=256)


class PasswordCredentialRequest(_Body):
    display_name: str | None = Field(default=None, alias="displayName", max_length=256)
    end_date_time: datetime | None = Field(default=None, alias="endDateTime")


class AddPassword(_Body):
    password_credential: PasswordCredentialRequest = Field(
        default_factory=PasswordCredentialRequest, alias="passwordCredential"
    )


class KeyCredentialRequest(_Body):
    type: str = Field(default="AsymmetricX509Cert", pattern="^AsymmetricX509Cert$")
    usage: str = Field(default="Verify", pattern="^Verify$")
    key: str = Field(max_length=16 * 1024, description="The certificate: PEM, or base64 of its DER.")
    display_name: str | None = Field(default=None, alias="displayName", max_length=256)


class AddKey(_Body):
    key_credential: KeyCredentialRequest = Field(alias="keyCredential")


class RemoveCredential(_Body):
    key_id: str = Field(alias="keyId", max_length=36)


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _password(credential: PasswordCredential) -> dict[str, Any]:
    return {
        "keyId": credential.key_id,
        "displayName": credential.display_name,
        "hint": credential.hint,
        "startDateTime": _time(credential.start),
        "endDateTime": _time(credential.end),
        "secretText": None,
    }


def _key(credential: KeyCredential) -> dict[str, Any]:
    return {
        "keyId": credential.key_id,
        "displayName": credential.display_name,
        "customKeyIdentifier": credential.thumbprint,
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
        "startDateTime": _time(credential.start),
        "endDateTime": _time(credential.end),
        "key": None,
    }


_PROPERTIES = ("id", "appId", "displayName", "createdDateTime", "passwordCredentials", "keyCredentials")


def _graph(application: Application) -> dict[str, Any]:
    return {
        "id": application.id,
        "appId": application.app_id,
        "displayName": application.display_name,
        "createdDateTime": _time(application.created_at),
        "passwordCredentials": [_password(p) for p in application.passwords],
        "keyCredentials": [_key(k) for k in application.keys],
    }


@router.get("")
async def list_applications(request: Request, admin: Reader) -> dict[str, Any]:
    """OData: `$filter`/`$orderby` on id, appId, displayName, createdDateTime; `$select`, `$top`, `$count`."""
    options = parse_query_options(dict(request.query_params))
    unknown = [name for name in options.select if name not in _PROPERTIES]
    if unknown:
        raise InvalidInput(f"$select: unknown property {unknown[0]!r}")
    applications, token, total = await container(request).api_clients.page(admin.org_id, options)
    page: dict[str, Any] = {"@odata.context": f"{request.base_url}graph/beta/$metadata#applications"}
    if total is not None:
        page["@odata.count"] = total
    page["value"] = [_selected(_graph(a), options.select) for a in applications]
    if token:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), token)
    return page


def _selected(resource: dict[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in resource.items() if not select or name in select}


@router.post("", status_code=201)
async def create_application(request: Request, body: ApplicationCreate, admin: Writer) -> dict[str, Any]:
    application = await container(request).api_clients.create(admin.org_id, body.display_name, actor=admin.display_name)
    return _graph(application)


@router.get("/{application_id}")
async def get_application(request: Request, application_id: str, admin: Reader) -> dict[str, Any]:
    return _graph(await container(request).api_clients.get(admin.org_id, application_id))


@router.delete("/{application_id}", status_code=204)
async def delete_application(request: Request, application_id: str, admin: Writer) -> Response:
    await container(request).api_clients.delete(admin.org_id, application_id, actor=admin.display_name)
    return Response(status_code=204)


@router.post("/{application_id}/addPassword")
async def add_password(request: Request, application_id: str, body: AddPassword, admin: Writer) -> dict[str, Any]:
    requested = body.password_credential
    credential, secret = await container(request).api_clients.add_password(
        admin.org_id,
        application_id,
        display_name=requested.display_name,
        end=requested.end_date_time,
        actor=admin.display_name,
    )
    return {"@odata.type": "#microsoft.graph.passwordCredential", **_password(credential), "secretText": secret}


@router.post("/{application_id}/removePassword", status_code=204)
async def remove_password(request: Request, application_id: str, body: RemoveCredential, admin: Writer) -> Response:
    await container(request).api_clients.remove_credential(
        admin.org_id, application_id, body.key_id, password=True, actor=admin.display_name
    )
    return Response(status_code=204)


@router.post("/{application_id}/addKey")
async def add_key(request: Request, application_id: str, body: AddKey, admin: Writer) -> dict[str, Any]:
    requested = body.key_credential
    credential = await container(request).api_clients.add_key(
        admin.org_id,
        application_id,
        certificate_text=requested.key,
        display_name=requested.display_name,
        actor=admin.display_name,
    )
    return {"@odata.type": "#microsoft.graph.keyCredential", **_key(credential)}


@router.post("/{application_id}/removeKey", status_code=204)
async def remove_key(request: Request, application_id: str, body: RemoveCredential, admin: Writer) -> Response:
    await container(request).api_clients.remove_credential(
        admin.org_id, application_id, body.key_id, password=False, actor=admin.display_name
    )
    return Response(status_code=204)
