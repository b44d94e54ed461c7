"""What the access services need from storage: rows of role definitions, assignments and scope tags, and the
scope tags each object carries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from muster.domain.rbac import Scope, TaggedObject


@dataclass(frozen=True)
class RoleDefinitionRow:
    id: str
    org_id: str
    display_name: str
    description: str | None
    is_built_in: bool
    permissions: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RoleAssignmentRow:
    id: str
    org_id: str
    role_definition_id: str
    display_name: str
    description: str | None
    members: tuple[str, ...]
    scope_group_ids: tuple[str, ...]
    scope_tag_ids: tuple[str, ...] | None  # None: every scope tag
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ScopeTagRow:
    id: str
    org_id: str
    display_name: str
    description: str | None
    is_built_in: bool
    created_at: datetime
    updated_at: datetime


class RbacStore(Protocol):
    async def seed(self, org_id: str, roles: Sequence[RoleDefinitionRow], default_tag: ScopeTagRow) -> None:
        """Insert the built-in roles and the Default tag where missing; bring built-in permissions up to date."""

    async def role_definitions(self, org_id: str) -> list[RoleDefinitionRow]: ...

    async def role_definition(self, org_id: str, role_id: str) -> RoleDefinitionRow | None: ...

    async def save_role_definition(self, row: RoleDefinitionRow, *, new: bool) -> None: ...

    async def delete_role_definition(self, role_id: str) -> None: ...

    async def role_assignments(self, org_id: str) -> list[RoleAssignmentRow]: ...

    async def role_assignment(self, org_id: str, assignment_id: str) -> RoleAssignmentRow | None: ...

    async def save_role_assignment(self, row: RoleAssignmentRow, *, new: bool) -> None: ...

    async def delete_role_assignment(self, assignment_id: str) -> None: ...

    async def scope_tags(self, org_id: str) -> list[ScopeTagRow]: ...

    async def scope_tag(self, org_id: str, tag_id: str) -> ScopeTagRow | None: ...

    async def save_scope_tag(self, row: ScopeTagRow, *, new: bool) -> None: ...

    async def delete_scope_tag(self, org_id: str, tag_id: str) -> None: ...

    async def tagged_object_count(self, tag_id: str) -> int: ...

    async def groups_of(self, member_id: str) -> set[str]:
        """The groups `member_id` belongs to, directly or through nested groups."""

    async def tags_of(self, object_type: TaggedObject, object_ids: Sequence[str]) -> dict[str, list[str]]: ...

    async def in_scope(self, object_type: TaggedObject, object_ids: Sequence[str], scope: Scope) -> set[str]:
        """Those of `object_ids` that carry a tag within `scope`."""

    async def replace_tags(self, object_type: TaggedObject, object_id: str, tag_ids: Sequence[str]) -> None: ...
