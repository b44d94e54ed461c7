"""Intune role administration: role definitions, role assignments, scope tags, and the tags objects carry.

Built-in roles and the Default scope tag ("0") are rows seeded in every organisation and cannot be changed.
Authorisation (who may grant what) is decided by the caller with `domain.rbac.grant_refusal`; this module keeps
the data consistent and tells the authenticator to forget cached grants after every change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from muster.domain.clock import Clock
from muster.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from muster.domain.rbac import (
    BUILT_IN_ROLE_PERMISSIONS,
    DEFAULT_SCOPE_TAG_ID,
    DEFAULT_SCOPE_TAG_NAME,
    BuiltInRole,
    Scope,
    TaggedObject,
    object_tags,
    parse_permissions,
)
from muster.services.access import Authenticator
from muster.services.audit import AuditSink
from muster.services.rbac_ports import RbacStore, RoleAssignmentRow, RoleDefinitionRow, ScopeTagRow

MAX_MEMBERS = 1000
MAX_TAGS = 100


def built_in_role_id(org_id: str, role: BuiltInRole) -> str:
    """Built-in roles have the same id in every start of the same organisation."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"muster:{org_id}:role:{role.value}"))


class Roles:
    def __init__(self, *, store: RbacStore, authenticator: Authenticator, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._authenticator = authenticator
        self._audit = audit
        self._clock = clock

    async def ensure_built_ins(self, org_id: str) -> None:
        now = self._clock.now()
        roles = [
            RoleDefinitionRow(
                built_in_role_id(org_id, role),
                org_id,
                role.value,
                f"Built-in role: {role.value}.",
                True,
                tuple(sorted(p.value for p in permissions)),
                now,
                now,
            )
            for role, permissions in BUILT_IN_ROLE_PERMISSIONS.items()
        ]
        default = ScopeTagRow(
            DEFAULT_SCOPE_TAG_ID, org_id, DEFAULT_SCOPE_TAG_NAME, "Objects created without scope tags.", True, now, now
        )
        await self._store.seed(org_id, roles, default)

    async def _changed(self, actor: str, activity: str, target: str, detail: dict[str, object]) -> None:
        self._authenticator.invalidate()
        await self._audit.admin_event(actor=actor, activity=activity, target=target, detail=detail)

    # -- role definitions ----------------------------------------------------------------------------------------

    async def definitions(self, org_id: str) -> list[RoleDefinitionRow]:
        return await self._store.role_definitions(org_id)

    async def definition(self, org_id: str, role_id: str) -> RoleDefinitionRow:
        row = await self._store.role_definition(org_id, role_id)
        if row is None:
            raise NotFound(f"role definition {role_id} not found")
        return row

    async def create_definition(
        self, *, org_id: str, display_name: str, description: str | None, permissions: Sequence[str], actor: str
    ) -> RoleDefinitionRow:
        now = self._clock.now()
        row = RoleDefinitionRow(
            str(uuid.uuid4()), org_id, display_name, description, False, _permissions(permissions), now, now
        )
        await self._unique_role_name(org_id, display_name, row.id)
        await self._store.save_role_definition(row, new=True)
        await self._changed(actor, "createRoleDefinition", row.id, {"displayName": display_name})
        return row

    async def update_definition(
        self,
        *,
        org_id: str,
        role_id: str,
        display_name: str | None,
        description: str | None,
        permissions: Sequence[str] | None,
        actor: str,
    ) -> RoleDefinitionRow:
        current = await self._editable(org_id, role_id)
        row = replace(
            current,
            display_name=display_name or current.display_name,
            description=current.description if description is None else description,
            permissions=current.permissions if permissions is None else _permissions(permissions),
            updated_at=self._clock.now(),
        )
        await self._unique_role_name(org_id, row.display_name, row.id)
        await self._store.save_role_definition(row, new=False)
        await self._changed(actor, "updateRoleDefinition", row.id, {"permissions": list(row.permissions)})
        return row

    async def delete_definition(self, *, org_id: str, role_id: str, actor: str) -> None:
        await self._editable(org_id, role_id)
        if any(a.role_definition_id == role_id for a in await self._store.role_assignments(org_id)):
            raise NotAllowed("The role is assigned: delete its role assignments first.")
        await self._store.delete_role_definition(role_id)
        await self._changed(actor, "deleteRoleDefinition", role_id, {})

    async def _editable(self, org_id: str, role_id: str) -> RoleDefinitionRow:
        row = await self.definition(org_id, role_id)
        if row.is_built_in:
            raise NotAllowed(f"{row.display_name} is a built-in role and cannot be changed: copy it to a custom role.")
        return row

    async def _unique_role_name(self, org_id: str, name: str, role_id: str) -> None:
        if any(r.display_name == name and r.id != role_id for r in await self._store.role_definitions(org_id)):
            raise Conflict(f"a role named {name!r} already exists")

    # -- role assignments ----------------------------------------------------------------------------------------

    async def assignments(self, org_id: str) -> list[RoleAssignmentRow]:
        return await self._store.role_assignments(org_id)

    async def assignment(self, org_id: str, assignment_id: str) -> RoleAssignmentRow:
        row = await self._store.role_assignment(org_id, assignment_id)
        if row is None:
            raise NotFound(f"role assignment {assignment_id} not found")
        return row

    async def save_assignment(self, row: RoleAssignmentRow, *, new: bool, actor: str) -> RoleAssignmentRow:
        """Create or replace an assignment (its role and scope tags must exist; no tags means Default)."""
        await self.definition(row.org_id, row.role_definition_id)
        if len(row.members) > MAX_MEMBERS or len(row.scope_group_ids) > MAX_MEMBERS:
            raise InvalidInput(f"at most {MAX_MEMBERS} members and scope groups per assignment")
        tags = None if row.scope_tag_ids is None else await self.known_tags(row.org_id, row.scope_tag_ids)
        row = replace(row, scope_tag_ids=tags, updated_at=self._clock.now())
        await self._store.save_role_assignment(row, new=new)
        activity = "createRoleAssignment" if new else "updateRoleAssignment"
        await self._changed(actor, activity, row.id, {"role": row.role_definition_id, "members": list(row.members)})
        return row

    async def delete_assignment(self, *, org_id: str, assignment_id: str, actor: str) -> None:
        await self.assignment(org_id, assignment_id)
        await self._store.delete_role_assignment(assignment_id)
        await self._changed(actor, "deleteRoleAssignment", assignment_id, {})

    # -- scope tags ----------------------------------------------------------------------------------------------

    async def tags(self, org_id: str) -> list[ScopeTagRow]:
        return await self._store.scope_tags(org_id)

    async def tag(self, org_id: str, tag_id: str) -> ScopeTagRow:
        row = await self._store.scope_tag(org_id, tag_id)
        if row is None:
            raise NotFound(f"scope tag {tag_id} not found")
        return row

    async def create_tag(self, *, org_id: str, display_name: str, description: str | None, actor: str) -> ScopeTagRow:
        await self._unique_tag_name(org_id, display_name, None)
        now = self._clock.now()
        row = ScopeTagRow(str(uuid.uuid4()), org_id, display_name, description, False, now, now)
        await self._store.save_scope_tag(row, new=True)
        await self._changed(actor, "createRoleScopeTag", row.id, {"displayName": display_name})
        return row

    async def update_tag(
        self, *, org_id: str, tag_id: str, display_name: str | None, description: str | None, actor: str
    ) -> ScopeTagRow:
        current = await self._editable_tag(org_id, tag_id)
        row = replace(
            current,
            display_name=display_name or current.display_name,
            description=current.description if description is None else description,
            updated_at=self._clock.now(),
        )
        await self._unique_tag_name(org_id, row.display_name, tag_id)
        await self._store.save_scope_tag(row, new=False)
        await self._changed(actor, "updateRoleScopeTag", tag_id, {"displayName": row.display_name})
        return row

    async def delete_tag(self, *, org_id: str, tag_id: str, actor: str) -> None:
        await self._editable_tag(org_id, tag_id)
        objects = await self._store.tagged_object_count(tag_id)
        users = [
            a.display_name for a in await self._store.role_assignments(org_id) if tag_id in (a.scope_tag_ids or ())
        ]
        if objects or users:
            raise NotAllowed(
                f"The scope tag is in use ({objects} objects, role assignments: {', '.join(users) or 'none'}): "
                "remove it from them first."
            )
        await self._store.delete_scope_tag(org_id, tag_id)
        await self._changed(actor, "deleteRoleScopeTag", tag_id, {})

    async def _editable_tag(self, org_id: str, tag_id: str) -> ScopeTagRow:
        row = await self.tag(org_id, tag_id)
        if row.is_built_in:
            raise NotAllowed(f"{row.display_name} is the built-in scope tag and cannot be changed.")
        return row

    async def _unique_tag_name(self, org_id: str, name: str, tag_id: str | None) -> None:
        if any(t.display_name == name and t.id != tag_id for t in await self._store.scope_tags(org_id)):
            raise Conflict(f"a scope tag named {name!r} already exists")

    async def known_tags(self, org_id: str, tag_ids: Sequence[str]) -> tuple[str, ...]:
        """`tag_ids` as an object stores them (Default when empty); InvalidInput names a tag that does not exist."""
        if len(tag_ids) > MAX_TAGS:
            raise InvalidInput(f"at most {MAX_TAGS} scope tags")
        existing = {t.id for t in await self._store.scope_tags(org_id)}
        unknown = [t for t in tag_ids if t not in existing]
        if unknown:
            raise InvalidInput(f"roleScopeTagIds: scope tag {unknown[0]!r} does not exist")
        return object_tags(tag_ids)

    # -- the tags of objects -------------------------------------------------------------------------------------

    async def tags_of(self, object_type: TaggedObject, object_ids: Sequence[str]) -> dict[str, list[str]]:
        return await self._store.tags_of(object_type, list(object_ids))

    async def in_scope(self, object_type: TaggedObject, object_ids: Sequence[str], scope: Scope) -> set[str]:
        return await self._store.in_scope(object_type, list(object_ids), scope)

    async def set_object_tags(
        self, *, org_id: str, object_type: TaggedObject, object_id: str, tag_ids: Sequence[str], actor: str
    ) -> list[str]:
        tags = await self.known_tags(org_id, tag_ids)
        await self._store.replace_tags(object_type, object_id, tags)
        await self._changed(actor, "setRoleScopeTags", object_id, {"objectType": object_type.value, "tags": list(tags)})
        return list(tags)


def _permissions(values: Sequence[str]) -> tuple[str, ...]:
    try:
        return tuple(sorted(p.value for p in parse_permissions(values)))
    except ValueError as error:
        raise InvalidInput(f"rolePermissions: {error}") from None
