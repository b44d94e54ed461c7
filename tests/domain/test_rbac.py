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
group_ids = st.frozensets(st.sampled_from(["g1", "g2", "g3", "g4"]), max_size=4)
grants = st.builds(Grant, permissions=permission_sets, scope=scopes, scope_group_ids=group_ids)
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


@given(grants, tag_ids, group_ids)
def test_an_assignment_reaches_objects_in_its_tags_and_its_scope_groups(
    grant: Grant, tags: frozenset[str], groups: frozenset[str]
) -> None:
    """Intune: scope tags decide what the admin sees, scope groups whom it manages; no scope groups: everyone."""
    in_groups = not grant.scope_group_ids or bool(grant.scope_group_ids & groups)
    assert grant.reaches(tags, groups) == (grant.scope.covers(tags) and in_groups)


@given(principals, st.sampled_from(list(Permission)), tag_ids, group_ids)
def test_one_assignment_must_match_both_the_tags_and_the_groups(
    admin: Principal, permission: Permission, tags: frozenset[str], groups: frozenset[str]
) -> None:
    """Tags from one assignment and groups from another do not combine."""
    single = any(
        permission in g.permissions
        and g.scope.covers(tags)
        and (not g.scope_group_ids or not g.scope_group_ids.isdisjoint(groups))
        for g in admin.grants
    )
    assert admin.reaches(permission, tags, groups) == single
    if admin.reaches(permission, tags, groups):
        assert admin.scope(permission).covers(tags)  # groups only ever narrow what the tags allow


@given(principals, st.sampled_from(list(Permission)), tag_ids, group_ids, group_ids)
def test_memberships_matter_only_when_needs_scope_groups_says_so(
    admin: Principal, permission: Permission, tags: frozenset[str], groups: frozenset[str], more: frozenset[str]
) -> None:
    assert admin.reaches(permission, tags, groups) <= admin.reaches(permission, tags, groups | more)  # monotone
    if not admin.needs_scope_groups(permission, tags):
        assert admin.reaches(permission, tags, groups) == admin.reaches(permission, tags, frozenset())
    if not any(g.scope_group_ids for g in admin.grants):
        by_tags = admin.can(permission) and admin.scope(permission).covers(tags)
        assert admin.reaches(permission, tags, groups) == by_tags


def test_a_group_scoped_assignment_does_not_borrow_tags_from_another() -> None:
    wipe = frozenset({Permission.REMOTE_TASKS_WIPE})
    admin = Principal(
        "p",
        "user",
        "help desk",
        "org",
        (
            Grant(wipe, Scope(tag_ids=frozenset({"A"})), frozenset({"G"})),
            Grant(wipe, Scope(tag_ids=frozenset({"B"}))),
        ),
    )
    assert admin.reaches(Permission.REMOTE_TASKS_WIPE, ["A"], frozenset({"G"}))
    assert not admin.reaches(Permission.REMOTE_TASKS_WIPE, ["A"], frozenset({"H"}))
    assert admin.reaches(Permission.REMOTE_TASKS_WIPE, ["B"], frozenset())
    assert admin.reaches(Permission.REMOTE_TASKS_WIPE, ["A", "B"], frozenset())  # through the tag-B assignment
    assert admin.needs_scope_groups(Permission.REMOTE_TASKS_WIPE, ["A"])
    assert not admin.needs_scope_groups(Permission.REMOTE_TASKS_WIPE, ["A", "B"])
    assert not admin.needs_scope_groups(Permission.REMOTE_TASKS_WIPE, ["C"])


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
