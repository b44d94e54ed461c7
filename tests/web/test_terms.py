"""Graph `termsAndConditions` over HTTP (seed-catalog-A §2.8 TC-01..10, E19): policies, versions, assignments,
users' acceptance and the acceptance report.

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from muster.domain.errors import NotAllowed
from muster.domain.rbac import BuiltInRole
from muster.store.tables import DEFAULT_ORG_ID
from muster.store.tables_terms import terms_declines
from tests.harness import DM, RunningMuster, running_muster
from tests.web.test_admin_access import create_tag

TERMS = f"{DM}/termsAndConditions"
GRAPH = "/graph/beta"
ALL_USERS = {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def _terms(admin: httpx.AsyncClient, name: str = "Corporate terms", **extra: Any) -> dict[str, Any]:
    body = {
        "displayName": name,
        "description": "for admins",
        "title": "Contoso device terms",
        "bodyText": "You agree that...",
        "acceptanceStatement": "Contoso may wipe corporate data.",
        **extra,
    }
    answer = await admin.post(TERMS, json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _assign(admin: httpx.AsyncClient, terms_id: str, *targets: dict[str, Any]) -> httpx.Response:
    body = {"termsAndConditionsAssignments": [{"target": target} for target in targets]}
    return await admin.post(f"{TERMS}/{terms_id}/assign", json=body)


async def _user(admin: httpx.AsyncClient, upn: str, **extra: Any) -> str:
    answer = await admin.post(f"{GRAPH}/users", json={"userPrincipalName": upn, "displayName": upn.title(), **extra})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _department_group(admin: httpx.AsyncClient, department: str) -> str:
    rule = f'user.department -eq "{department}"'
    body = {"displayName": department, "groupTypes": ["DynamicMembership"], "membershipRule": rule}
    answer = await admin.post(f"{GRAPH}/groups", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _pending(muster: RunningMuster, user_id: str) -> list[str]:
    groups = await muster.container.directory.group_ids_of(DEFAULT_ORG_ID, user_id)
    return [row.id for row in await muster.container.terms.pending_for(DEFAULT_ORG_ID, user_id, groups)]


async def test_create_read_update_delete_tc_02_003_1211_tc_04_003_1247(tmp_path: Path, database_url: str) -> None:
    """TC-02 (003:1211-1233): name required, description, title, text, summary, scope tags; TC-04 (003:1247):
    a new policy is at version 1."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        created = await _terms(admin, **{"@odata.type": "#microsoft.graph.termsAndConditions"})
        assert created["@odata.type"] == "#microsoft.graph.termsAndConditions"
        assert created["version"] == 1 and created["roleScopeTagIds"] == ["0"]
        assert created["title"] == "Contoso device terms"
        assert created["acceptanceStatement"] == "Contoso may wipe corporate data."
        assert created["createdDateTime"].endswith("Z")
        for bad in ({"title": "no name"}, {"displayName": " "}, {"displayName": "X", "version": 2}, {"x": 1}):
            assert (await admin.post(TERMS, json=bad)).status_code == 400, bad
        assert (await admin.post(TERMS, json={"displayName": "v1", "version": 1})).status_code == 201
        listed = (await admin.get(TERMS, params={"$filter": "version eq 1", "$orderby": "displayName"})).json()
        assert [t["displayName"] for t in listed["value"]] == ["Corporate terms", "v1"]
        fetched = (await admin.get(f"{TERMS}/{created['id']}")).json()
        assert fetched == created
        patched = await admin.patch(f"{TERMS}/{created['id']}", json={"description": "changed"})
        assert patched.status_code == 200 and patched.json()["description"] == "changed"
        assert patched.json()["title"] == created["title"]
        assert (await admin.delete(f"{TERMS}/{created['id']}")).status_code == 204
        assert (await admin.get(f"{TERMS}/{created['id']}")).status_code == 404
        assert (await admin.patch(f"{TERMS}/{created['id']}", json={"title": "x"})).status_code == 404


async def test_version_changes_only_to_the_next_one_tc_05_003_1249(tmp_path: Path) -> None:
    """TC-05 (003:1249-1251, 1296-1315): an edit keeps the version unless "require users to re-accept" sets it to
    the next one; users who accepted the old version must accept again, the others' acceptances stay valid."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        terms = await _terms(admin)
        ada = await _user(admin, "ada@example.com")
        await _assign(admin, terms["id"], ALL_USERS)
        await muster.container.terms.accept(DEFAULT_ORG_ID, ada, "ada@example.com", terms["id"], 1, NOW)
        typo = await admin.patch(f"{TERMS}/{terms['id']}", json={"bodyText": "You agree that... (fixed)"})
        assert typo.json()["version"] == 1
        assert await _pending(muster, ada) == []  # the earlier acceptance remains valid
        for skipped in (0, 3, -1):
            answer = await admin.patch(f"{TERMS}/{terms['id']}", json={"version": skipped})
            assert answer.status_code == 400 and "set it to 2" in answer.json()["error"]["message"]
        bumped = await admin.patch(f"{TERMS}/{terms['id']}", json={"version": 2, "bodyText": "New terms"})
        assert bumped.status_code == 200 and bumped.json()["version"] == 2
        assert await _pending(muster, ada) == [terms["id"]]
        with pytest.raises(NotAllowed):  # the old text is no longer the one to accept
            await muster.container.terms.accept(DEFAULT_ORG_ID, ada, "ada@example.com", terms["id"], 1, NOW)
        await muster.container.terms.accept(DEFAULT_ORG_ID, ada, "ada@example.com", terms["id"], 2, NOW)
        assert await _pending(muster, ada) == []


async def test_assignments_all_users_or_groups_tc_02_003_1229(tmp_path: Path) -> None:
    """TC-02 (003:1229-1231): assigned to all users or to groups (and groups can be excluded); terms are not
    assigned to devices nor filtered."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        terms = await _terms(admin)
        assert (await admin.get(f"{TERMS}/{terms['id']}/assignments")).json()["value"] == []
        group = {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g-1"}
        excluded = {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g-2"}
        answer = await _assign(admin, terms["id"], ALL_USERS, group, excluded)
        assert answer.status_code == 200, answer.text
        listed = (await admin.get(f"{TERMS}/{terms['id']}/assignments")).json()["value"]
        assert listed == answer.json()["value"]
        assert [a["target"]["@odata.type"] for a in listed] == [t["@odata.type"] for t in (ALL_USERS, group, excluded)]
        assert listed[0]["@odata.type"] == "#microsoft.graph.termsAndConditionsAssignment"
        filtered = {
            **group,
            "deviceAndAppManagementAssignmentFilterId": "f",
            "deviceAndAppManagementAssignmentFilterType": "include",
        }
        for bad in (
            [{"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}],
            [filtered],
            [group, group],
            [{"@odata.type": "#microsoft.graph.groupAssignmentTarget"}],
        ):
            assert (await _assign(admin, terms["id"], *bad)).status_code == 400, bad
        assert (await admin.post(f"{TERMS}/{terms['id']}/assign", json={})).status_code in (400, 422)
        assert len((await admin.get(f"{TERMS}/{terms['id']}/assignments")).json()["value"]) == 3
        assert (await _assign(admin, terms["id"])).json()["value"] == []  # unassigned: applies to nobody


async def test_pending_terms_follow_assignments_and_localized_groups_tc_09_003_1292(tmp_path: Path) -> None:
    """TC-01 (003:342, 1207): assigned terms must be accepted; TC-09 (003:1292-1294): several policies for
    several groups; exclusions win; acceptance is per user, not per device (TC-06, 003:1317)."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        french, german = await _department_group(admin, "FR"), await _department_group(admin, "DE")
        anne = await _user(admin, "anne@example.com", department="FR")
        hans = await _user(admin, "hans@example.com", department="DE")
        bob = await _user(admin, "bob@example.com")
        conditions_fr = await _terms(admin, "FR", title="Conditions")
        terms_de = await _terms(admin, "DE", title="Bedingungen")
        everyone = await _terms(admin, "All", title="Everyone")
        await _assign(
            admin, conditions_fr["id"], {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": french}
        )
        await _assign(
            admin, terms_de["id"], {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": german}
        )
        not_german = {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": german}
        await _assign(admin, everyone["id"], ALL_USERS, not_german)
        await _terms(admin, "Unassigned")
        assert await _pending(muster, anne) == [conditions_fr["id"], everyone["id"]]
        assert await _pending(muster, hans) == [terms_de["id"]]
        assert await _pending(muster, bob) == [everyone["id"]]
        terms = muster.container.terms
        await terms.accept(DEFAULT_ORG_ID, bob, "bob@example.com", everyone["id"], 1, NOW)
        await terms.accept(DEFAULT_ORG_ID, bob, "bob@example.com", everyone["id"], 1, NOW + timedelta(hours=1))
        assert await _pending(muster, bob) == []  # once per user: a second device asks nothing more


async def test_acceptance_report_and_export_tc_07_003_1269(tmp_path: Path, database_url: str) -> None:
    """TC-07 (003:1269-1286): user name, accepted version and time, accepted latest, UPN; exported as CSV."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        terms = await _terms(admin)
        ada, bob = await _user(admin, "ada@example.com"), await _user(admin, "bob@example.com")
        service = muster.container.terms
        await service.accept(DEFAULT_ORG_ID, ada, "ada@example.com", terms["id"], 1, NOW)
        await service.accept(DEFAULT_ORG_ID, bob, "bob@example.com", terms["id"], 1, NOW + timedelta(minutes=5))
        await admin.patch(f"{TERMS}/{terms['id']}", json={"version": 2})
        await service.accept(DEFAULT_ORG_ID, ada, "ada@example.com", terms["id"], 2, NOW + timedelta(days=1))
        statuses = (await admin.get(f"{TERMS}/{terms['id']}/acceptanceStatuses")).json()["value"]
        assert [
            (s["userPrincipalName"], s["userDisplayName"], s["acceptedVersion"], s["acceptedLatest"]) for s in statuses
        ] == [("bob@example.com", "Bob@Example.Com", 1, False), ("ada@example.com", "Ada@Example.Com", 2, True)]
        assert statuses[0]["@odata.type"] == "#microsoft.graph.termsAndConditionsAcceptanceStatus"
        assert statuses[1]["acceptedDateTime"] == "2026-11-24T09:00:00Z"
        latest = await admin.get(
            f"{TERMS}/{terms['id']}/acceptanceStatuses", params={"$filter": "acceptedLatest eq true"}
        )
        assert [s["userPrincipalName"] for s in latest.json()["value"]] == ["ada@example.com"]
        export = await admin.get(f"{TERMS}/{terms['id']}/acceptanceStatuses/export")
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert "attachment" in export.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(export.text)))
        assert rows[0] == ["User name", "Accepted version", "Accepted time", "Accepted latest", "UPN"]
        assert [(r[1], r[3], r[4]) for r in rows[1:]] == [
            ("1", "No", "ada@example.com"),
            ("1", "No", "bob@example.com"),
            ("2", "Yes", "ada@example.com"),
        ]


async def test_declines_are_recorded_tc_10_003_1187(tmp_path: Path) -> None:
    """TC-10 (003:1187-1189): a decline is recorded with its time; the terms stay pending."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        terms = await _terms(admin)
        await _assign(admin, terms["id"], ALL_USERS)
        ada = await _user(admin, "ada@example.com")
        await muster.container.terms.decline(DEFAULT_ORG_ID, ada, "ada@example.com", terms["id"], 1, NOW)
        assert await _pending(muster, ada) == [terms["id"]]
        async with muster.container.engine.connect() as conn:
            rows = (await conn.execute(select(terms_declines))).all()
        assert [(r.user_id, r.version, r.declined_at) for r in rows] == [(ada, 1, NOW)]


async def test_scoped_admins_reach_only_their_terms_e19_003_1228(tmp_path: Path, database_url: str) -> None:
    """E19 scope_tags (003:1228): an admin scoped to A does not see terms tagged B, nor their report."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        tag_a, tag_b = await create_tag(admin, "A"), await create_tag(admin, "B")
        in_a = await _terms(admin, "A terms", roleScopeTagIds=[tag_a])
        in_b = await _terms(admin, "B terms", roleScopeTagIds=[tag_b])
        token = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="scoped", role=BuiltInRole.POLICY_AND_PROFILE_MANAGER, scope_tag_ids=[tag_a]
        )
        async with muster.admin(token) as scoped:
            assert [t["id"] for t in (await scoped.get(TERMS)).json()["value"]] == [in_a["id"]]
            for path in ("", "/assignments", "/acceptanceStatuses", "/acceptanceStatuses/export"):
                assert (await scoped.get(f"{TERMS}/{in_b['id']}{path}")).status_code == 404, path
            assert (await scoped.patch(f"{TERMS}/{in_b['id']}", json={"version": 2})).status_code == 404
            assert (await _assign(scoped, in_b["id"], ALL_USERS)).status_code == 404
            assert (await scoped.delete(f"{TERMS}/{in_b['id']}")).status_code == 404
            moved = await scoped.patch(f"{TERMS}/{in_a['id']}", json={"roleScopeTagIds": [tag_b]})
            assert moved.status_code == 403
            assert (await scoped.patch(f"{TERMS}/{in_a['id']}", json={"version": 2})).json()["version"] == 2
        assert (await admin.get(f"{TERMS}/{in_b['id']}")).json()["version"] == 1
