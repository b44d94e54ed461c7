"""Graph role definitions, role assignments and scope tags over the API, and how grants are resolved."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from muster.domain.rbac import BuiltInRole, Permission, TokenSubject
from muster.services.access import Authenticator
from muster.store.rbac import SqlRbacStore
from muster.store.tables import DEFAULT_ORG_ID, group_members, groups
from tests.harness import DM, running_muster
from tests.web.test_admin_access import add_device, create_tag

GRAPH_ROLE = "#microsoft.graph.deviceAndAppManagementRoleDefinition"


def _permissions(*names: str) -> list[dict[str, object]]:
    return [{"resourceActions": [{"allowedResourceActions": list(names), "notAllowedResourceActions": []}]}]


async def test_built_in_roles_and_the_default_tag_exist_and_cannot_change(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        roles = (await admin.get(f"{DM}/roleDefinitions")).json()["value"]
        by_name = {r["displayName"]: r for r in roles}
        assert set(BuiltInRole) <= set(by_name)
        help_desk = by_name[BuiltInRole.HELP_DESK_OPERATOR]
        assert help_desk["@odata.type"] == GRAPH_ROLE and help_desk["isBuiltIn"] is True
        actions = help_desk["rolePermissions"][0]["resourceActions"][0]["allowedResourceActions"]
        assert Permission.REMOTE_TASKS_WIPE.value in actions
        changed = await admin.patch(f"{DM}/roleDefinitions/{help_desk['id']}", json={"displayName": "Mine"})
        assert changed.status_code == 409 and "built-in" in changed.json()["error"]["message"]
        assert (await admin.delete(f"{DM}/roleDefinitions/{help_desk['id']}")).status_code == 409
        tags = (await admin.get(f"{DM}/roleScopeTags")).json()["value"]
        assert {"id": "0", "displayName": "Default", "isBuiltIn": True}.items() <= tags[0].items()
        assert (await admin.delete(f"{DM}/roleScopeTags/0")).status_code == 409


async def test_custom_roles_are_validated(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        unknown = await admin.post(
            f"{DM}/roleDefinitions",
            json={"displayName": "Bad", "rolePermissions": _permissions("Microsoft.Intune_Nope_Read")},
        )
        assert unknown.status_code == 400 and "Microsoft.Intune_Nope_Read" in unknown.json()["error"]["message"]
        created = await admin.post(
            f"{DM}/roleDefinitions",
            json={
                "displayName": "Device reader",
                "description": "reads devices",
                "rolePermissions": _permissions(Permission.MANAGED_DEVICES_READ.value),
            },
        )
        assert created.status_code == 201, created.text
        role = created.json()
        assert role["isBuiltIn"] is False
        duplicate = await admin.post(
            f"{DM}/roleDefinitions", json={"displayName": "Device reader", "rolePermissions": _permissions()}
        )
        assert duplicate.status_code == 409
        patched = await admin.patch(
            f"{DM}/roleDefinitions/{role['id']}",
            json={"rolePermissions": _permissions(Permission.MANAGED_DEVICES_READ.value, Permission.ROLES_READ.value)},
        )
        assert patched.json()["rolePermissions"][0]["resourceActions"][0]["allowedResourceActions"] == sorted(
            [Permission.MANAGED_DEVICES_READ.value, Permission.ROLES_READ.value]
        )
        assert (await admin.delete(f"{DM}/roleDefinitions/{role['id']}")).status_code == 204
        assert (await admin.get(f"{DM}/roleDefinitions/{role['id']}")).status_code == 404


async def test_an_assignment_grants_its_role_over_its_tags_to_its_members(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        engine = muster.container.engine
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        inside, outside = await add_device(engine, tag_a), await add_device(engine, tag_b)
        reader = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="reader", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        principal = await muster.container.authenticator.authenticate(reader)
        assert principal is not None and not principal.can(Permission.REMOTE_TASKS_SYNC_DEVICE)
        roles = {r["displayName"]: r["id"] for r in (await admin.get(f"{DM}/roleDefinitions")).json()["value"]}
        created = await admin.post(
            f"{DM}/roleAssignments",
            json={
                "displayName": "Help desk for A",
                "members": [principal.id],
                "roleScopeTagIds": [tag_a],
                "roleDefinition@odata.bind": f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions/"
                f"{roles[BuiltInRole.HELP_DESK_OPERATOR]}",
            },
        )
        assert created.status_code == 201, created.text
        assignment = created.json()
        assert assignment["roleScopeTagIds"] == [tag_a] and assignment["allScopeTags"] is False
        async with muster.admin(reader) as help_desk:
            assert (await help_desk.post(f"{DM}/managedDevices/{outside}/syncDevice")).status_code == 403
            assert (await help_desk.post(f"{DM}/managedDevices/{inside}/syncDevice")).status_code == 409  # no MDM
            in_use = await admin.delete(f"{DM}/roleScopeTags/{tag_a}")
            assert in_use.status_code == 409 and "Help desk for A" in in_use.json()["error"]["message"]
            assert (await admin.delete(f"{DM}/roleAssignments/{assignment['id']}")).status_code == 204
            assert (await help_desk.post(f"{DM}/managedDevices/{inside}/syncDevice")).status_code == 403


async def test_no_privilege_escalation(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        scoped = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="admin of A", role=BuiltInRole.INTUNE_ADMINISTRATOR, scope_tag_ids=[tag_a]
        )
        roles = {r["displayName"]: r["id"] for r in (await admin.get(f"{DM}/roleDefinitions")).json()["value"]}
        body = {"displayName": "x", "members": ["someone"], "roleDefinitionId": roles[BuiltInRole.HELP_DESK_OPERATOR]}
        async with muster.admin(scoped) as admin_of_a:
            for scope in ({"roleScopeTagIds": [tag_b]}, {"allScopeTags": True}, {"roleScopeTagIds": [tag_a, tag_b]}):
                refused = await admin_of_a.post(f"{DM}/roleAssignments", json={**body, **scope})
                assert refused.status_code == 403, refused.text
                assert "cannot grant" in refused.json()["error"]["message"]
            granted = await admin_of_a.post(f"{DM}/roleAssignments", json={**body, "roleScopeTagIds": [tag_a]})
            assert granted.status_code == 201, granted.text
            widened = await admin_of_a.patch(
                f"{DM}/roleAssignments/{granted.json()['id']}", json={"roleScopeTagIds": [tag_b]}
            )
            assert widened.status_code == 403
            assert (await admin_of_a.post(f"{DM}/roleScopeTags", json={"displayName": "C"})).status_code == 403
            await admin.post(f"{DM}/dataSharingConsents/appleEnrollmentProgram/consentToDataSharing")
            made = await admin_of_a.post(f"{DM}/depOnboardingSettings", json={"tokenName": "A's token"})
            assert made.status_code == 201 and made.json()["roleScopeTagIds"] == [tag_a]  # the creator's own tags
            outside = await admin_of_a.post(f"{DM}/depOnboardingSettings", json={"roleScopeTagIds": [tag_b]})
            assert outside.status_code == 403
            assert (await admin_of_a.patch(f"{DM}/roleScopeTags/{tag_b}", json={"description": "x"})).status_code == 403
        devices_only = await admin.post(
            f"{DM}/roleDefinitions",
            json={
                "displayName": "Role assigner",
                "rolePermissions": _permissions(Permission.ROLES_ASSIGN.value, Permission.ROLES_WRITE.value),
            },
        )
        assigner = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="assigner", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        assigner_principal = await muster.container.authenticator.authenticate(assigner)
        assert assigner_principal is not None
        made = await admin.post(
            f"{DM}/roleAssignments",
            json={
                "displayName": "assigners",
                "members": [assigner_principal.id],
                "allScopeTags": True,
                "roleDefinitionId": devices_only.json()["id"],
            },
        )
        assert made.status_code == 201, made.text
        async with muster.admin(assigner) as role_admin:
            to_admin = {**body, "roleDefinitionId": roles[BuiltInRole.INTUNE_ADMINISTRATOR], "allScopeTags": True}
            refused = await role_admin.post(f"{DM}/roleAssignments", json=to_admin)
            assert refused.status_code == 403 and "do not hold it yourself" in refused.json()["error"]["message"]
            wipe_role = {"displayName": "Wiper", "rolePermissions": _permissions(Permission.REMOTE_TASKS_WIPE.value)}
            assert (await role_admin.post(f"{DM}/roleDefinitions", json=wipe_role)).status_code == 403


class FakeVerifier:
    """A second kind of bearer token (as the OAuth2 access tokens are): `user:<id>` names a directory user."""

    async def verify(self, token: str) -> TokenSubject | None:
        kind, _, subject = token.partition(":")
        return TokenSubject(DEFAULT_ORG_ID, kind, subject, subject) if kind in ("user", "client") else None


async def test_users_get_the_roles_of_their_groups_transitively(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        now = datetime.now(UTC)
        async with muster.container.engine.begin() as conn:
            for group_id in ("outer", "inner"):
                await conn.execute(
                    insert(groups).values(
                        id=group_id,
                        org_id=DEFAULT_ORG_ID,
                        display_name=group_id,
                        membership_type="assigned",
                        source="api",
                        created_at=now,
                        updated_at=now,
                    )
                )
            await conn.execute(
                insert(group_members),
                [
                    {"group_id": "inner", "member_id": "alice", "member_type": "user"},
                    {"group_id": "outer", "member_id": "inner", "member_type": "group"},
                ],
            )
        roles = {r["displayName"]: r["id"] for r in (await admin.get(f"{DM}/roleDefinitions")).json()["value"]}
        made = await admin.post(
            f"{DM}/roleAssignments",
            json={
                "displayName": "outer group help desk",
                "members": ["outer"],
                "roleDefinitionId": roles[BuiltInRole.HELP_DESK_OPERATOR],
            },
        )
        assert made.json()["roleScopeTagIds"] == ["0"]  # no tags given: Default
        authenticator = Authenticator(
            admins=muster.container.admins, store=SqlRbacStore(muster.container.engine), verifiers=[FakeVerifier()]
        )
        alice = await authenticator.authenticate("user:alice")
        assert alice is not None and alice.kind == "user"
        assert alice.can(Permission.REMOTE_TASKS_WIPE) and not alice.can(Permission.ROLES_READ)
        assert alice.scope(Permission.REMOTE_TASKS_WIPE).tag_ids == {"0"}
        client = await authenticator.authenticate("client:carol")  # in no assignment: signed in, allowed nothing
        assert client is not None and client.grants == ()
        assert await authenticator.authenticate("nobody") is None
