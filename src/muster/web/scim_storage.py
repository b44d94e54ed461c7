"""scim2-server's asynchronous storage over Muster's directory service.

scim2-server does the protocol (validation, PATCH, filters, errors); this class turns each operation into a use
case of `muster.services.directory.Directory` for the organisation whose provisioning token the request carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Union, cast

from scim2_models import (
    InvalidValueException,
    NotFoundException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.storage import AsyncScimStorage, SearchPage
from scim2_server.utils import parametrize

from muster.domain.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from muster.services.directory import ASSIGNED, Directory
from muster.web.scim_resources import group_document, user_columns, user_document, version


class Client:
    """Who is provisioning: the organisation and the name of the provisioning token."""

    def __init__(self, org_id: str, token_name: str) -> None:
        self.org_id = org_id
        self.actor = f"SCIM ({token_name})"


current_client: ContextVar[Client] = ContextVar("scim_client")


@contextmanager
def _translated(*, writing: bool = False) -> Iterator[None]:
    """The directory's errors as SCIM errors (RFC 7644 §3.12); while writing, a missing object is one the body
    names (a member), so the body is at fault."""
    try:
        yield
    except NotFound as error:
        if writing:
            raise InvalidValueException(detail=error.message) from None
        raise NotFoundException(detail=error.message) from None
    except Conflict as error:
        raise UniquenessException(detail=error.message) from None
    except (InvalidInput, NotAllowed, DomainError) as error:
        raise InvalidValueException(detail=error.message) from None
    except ValueError as error:
        raise InvalidValueException(detail=str(error)) from None


class DirectoryScimStorage(AsyncScimStorage):
    def __init__(self, directory: Directory, provider: ScimProvider) -> None:
        self._directory = directory
        self._provider = provider

    def _model(self, resource_type: ResourceType) -> type[Resource[Any]]:
        return cast(type[Resource[Any]], self._provider.model_for(resource_type))

    async def _resource(self, resource_type: ResourceType, row: dict[str, Any], *, full: bool = True) -> Resource[Any]:
        """The resource of a row; without `full`, without the memberships (cheaper, for filtering)."""
        if resource_type.name == "User":
            document = user_document(row, await self._groups_of(row) if full else None)
        else:
            members = await self._directory.members(row["org_id"], row["id"]) if full else []
            document = group_document(row, members)
        meta = {
            "resourceType": resource_type.name,
            "created": row["created_at"],
            "lastModified": row["updated_at"],
            "version": version(row),
        }
        return self._model(resource_type).model_validate({**document, "id": row["id"], "meta": meta})

    async def _groups_of(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        org_id, user_id = user["org_id"], user["id"]
        direct = {group["id"] for group in await self._directory.member_of(org_id, user_id)}
        every = await self._directory.member_of(org_id, user_id, transitive=True)
        return [{**group, "direct": group["id"] in direct} for group in every]

    async def _row(self, resource_type: ResourceType, resource_id: str) -> dict[str, Any]:
        client = current_client.get()
        with _translated():
            if resource_type.name == "User":
                return await self._directory.user(client.org_id, resource_id, by_upn=False)
            return await self._directory.group(client.org_id, resource_id)

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        row = await self._row(resource_type, resource_id)
        excluded = (
            {str(path).lower() for path in (response_parameters.excluded_attributes or [])}
            if response_parameters
            else set()
        )
        memberships = "groups" if resource_type.name == "User" else "members"
        # Entra ID reads groups with excludedAttributes=members: no need to load thousands of members then
        return await self._resource(resource_type, row, full=memberships not in excluded)

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        found: list[tuple[ResourceType, dict[str, Any]]] = []
        for resource_type in resource_types:
            found += [(resource_type, row) for row in await self._matching(resource_type, search_request.filter)]
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), [await self._resource(rt, row) for rt, row in found[start:stop]])

    async def _matching(self, resource_type: ResourceType, scim_filter: ScimFilter[Any] | None) -> list[dict[str, Any]]:
        """The rows whose resources pass the filter, oldest first."""
        org_id = current_client.get().org_id
        kind = "user" if resource_type.name == "User" else "group"
        user_name = _user_name_equal_to(scim_filter) if kind == "user" else None
        if user_name is not None:  # what Entra ID and Okta ask before every create: one indexed lookup
            row = await self._directory.user_by_upn(org_id, user_name)
            rows = [row] if row is not None else []
        else:
            rows = sorted(await self._directory.everyone(kind, org_id), key=lambda r: (r["created_at"], r["id"]))
        if scim_filter is None:
            return rows
        if not scim_filter.models:
            scim_filter = parametrize(ScimFilter, Union[self._model(resource_type)])(str(scim_filter))  # noqa: UP007
        full = any(name in str(scim_filter).lower() for name in ("groups", "members"))
        return [row for row in rows if scim_filter.match(await self._resource(resource_type, row, full=full))]

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        client = current_client.get()
        document = resource.model_dump(mode="json")
        with _translated(writing=True):
            if resource_type.name == "User":
                row = await self._directory.create_user(
                    client.org_id, user_columns(document), actor=client.actor, source="scim"
                )
            else:
                row = await self._directory.create_group(
                    client.org_id,
                    _group_columns(document),
                    actor=client.actor,
                    source="scim",
                    members=_member_ids(document),
                )
        return await self._resource(resource_type, row)

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        client = current_client.get()
        document = resource.model_dump(mode="json")
        current = await self._row(resource_type, cast(str, resource.id))
        with _translated(writing=True):
            if resource_type.name == "User":
                row = await self._directory.update_user(
                    client.org_id, current["id"], user_columns(document), actor=client.actor
                )
            else:
                row = await self._updated_group(current, document, client)
        return await self._resource(resource_type, row)

    async def _updated_group(self, current: dict[str, Any], document: dict[str, Any], client: Client) -> Any:
        existing = await self._directory.members(client.org_id, current["id"])
        devices = [m["id"] for m in existing if m["member_type"] == "device"]
        members: list[str] | None = _member_ids(document)
        if current["membership_type"] == ASSIGNED:  # devices are not SCIM objects: the IdP cannot see or drop them
            members = [*_member_ids(document), *devices]
        elif set(_member_ids(document)) == {m["id"] for m in existing if m["member_type"] != "device"}:
            members = None  # a dynamic group's members are its rule's; only a change to them is refused
        changes = _group_columns(document)
        return await self._directory.update_group(
            client.org_id, current["id"], changes, actor=client.actor, members=members
        )

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        client = current_client.get()
        current = await self._row(resource_type, resource_id)
        remove: Callable[..., Any] = (
            self._directory.delete_user if resource_type.name == "User" else self._directory.delete_group
        )
        with _translated():
            await remove(client.org_id, current["id"], actor=client.actor)


def _user_name_equal_to(scim_filter: ScimFilter[Any] | None) -> str | None:
    node = scim_filter.ast if scim_filter is not None else None
    if (
        isinstance(node, Comparison)
        and node.op == CompareOperator.eq
        and isinstance(node.value, str)
        and node.attr_path.uri in (None, "urn:ietf:params:scim:schemas:core:2.0:User")
        and node.attr_path.attr.lower() == "username"
        and node.attr_path.sub_attr is None
    ):
        return node.value
    return None


def _group_columns(document: dict[str, Any]) -> dict[str, Any]:
    name, external_id = document.get("displayName"), document.get("externalId")
    if any(isinstance(value, str) and len(value) > 256 for value in (name, external_id)):
        raise InvalidValueException(detail="displayName and externalId hold at most 256 characters")
    return {"display_name": name, "external_id": external_id}


def _member_ids(document: dict[str, Any]) -> list[str]:
    return [str(member["value"]) for member in document.get("members") or [] if member.get("value")]
