"""The RBAC rules: scopes, what a principal may do, and no privilege escalation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.rbac import (
    BUILT_IN_ROLE_PERMISSIONS,
    DEFAULT_SCOPE_TAG_ID,
    READ_PERMISSIONS,
    BuiltInRole,
    Grant,
    Permission,
    Principal,
    Scope,
    grant_refusal,
    object_tags,
    parse_permissions,
)

tag_ids = st.frozensets(st.sampled_from(["0", "1", "2", "3", "4"]), max_size=5)
scopes = st.builds(Scope, everything=st.booleans(), tag_ids=tag_ids)
permission_sets = st.frozensets(st.sampled_from(list(Permission)), max_size=8)
grants = st.builds(Grant, permissions=permission_sets, scope=scopes)
principals = st.builds(
    Principal,
    id=st.just("p"),
    kind=st.just("apiToken"),
    display_name=st.just("admin"),
    org_id=st.just("org"),
    grants=st.lists(grants, max_size=4).map(tuple),
)


@given(scopes, tag_ids)
def test_a_scope_covers_an_object_when_they_share_a_tag(scope: Scope, tags: frozenset[str]) -> None:
    stored = object_tags(tags)
    assert scope.covers(tags) == (scope.everything or bool(scope.tag_ids & set(stored)))


@given(tag_ids)
def test_an_object_without_tags_carries_default(tags: frozenset[str]) -> None:
    stored = object_tags(tags)
    assert stored == (tuple(tags) if tags else (DEFAULT_SCOPE_TAG_ID,))
    assert Scope(tag_ids=frozenset({DEFAULT_SCOPE_TAG_ID})).covers(()) is True


@given(principals, st.sampled_from(list(Permission)))
def test_the_scope_of_a_permission_is_the_union_of_the_grants_holding_it(
    admin: Principal, permission: Permission
) -> None:
    holding = [g for g in admin.grants if permission in g.permissions]
    scope = admin.scope(permission)
    assert admin.can(permission) == bool(holding)
    assert scope.everything == any(g.scope.everything for g in holding)
    assert scope.tag_ids == frozenset().union(*(g.scope.tag_ids for g in holding))


@given(principals, permission_sets, st.one_of(st.none(), tag_ids))
def test_an_admin_grants_only_what_it_holds_over_its_own_tags(
    admin: Principal, permissions: frozenset[Permission], tags: frozenset[str] | None
) -> None:
    refusal = grant_refusal(admin, permissions, tags)
    allowed = all(
        admin.can(p) and (admin.scope(p).everything or (tags is not None and admin.scope(p).includes(tags)))
        for p in permissions
    )
    assert (refusal is None) == allowed
    if refusal is not None:
        assert "cannot grant" in refusal


@given(principals, permission_sets, tag_ids)
def test_what_an_admin_may_grant_it_already_reaches(
    admin: Principal, permissions: frozenset[Permission], tags: frozenset[str]
) -> None:
    """The receiver of a grant reaches nothing the granter could not already reach (no escalation)."""
    if grant_refusal(admin, permissions, tags) is None:
        receiver = Principal("r", "user", "receiver", "org", (Grant(permissions, Scope(tag_ids=frozenset(tags))),))
        for permission in permissions:
            assert admin.can(permission)
            assert admin.scope(permission).includes(receiver.scope(permission).tag_ids or object_tags(tags))


def test_built_in_roles() -> None:
    admin = BUILT_IN_ROLE_PERMISSIONS[BuiltInRole.INTUNE_ADMINISTRATOR]
    assert admin == frozenset(Permission)
    assert BUILT_IN_ROLE_PERMISSIONS[BuiltInRole.READ_ONLY_OPERATOR] <= READ_PERMISSIONS
    help_desk = BUILT_IN_ROLE_PERMISSIONS[BuiltInRole.HELP_DESK_OPERATOR]
    assert Permission.REMOTE_TASKS_WIPE in help_desk and Permission.ROLES_ASSIGN not in help_desk
    for permissions in BUILT_IN_ROLE_PERMISSIONS.values():
        assert permissions <= admin


def test_permissions_parse_from_their_intune_names() -> None:
    assert parse_permissions(["Microsoft.Intune_Roles_Read"]) == {Permission.ROLES_READ}
    with pytest.raises(ValueError, match=r"Microsoft\.Intune_Nope_Read"):
        parse_permissions(["Microsoft.Intune_Roles_Read", "Microsoft.Intune_Nope_Read"])
