"""`importedDeviceIdentities` over HTTP: add, list, import (list and CSV) with per-item results, review of duplicates,
search, delete, permissions, concurrency, and the store's match for the enrollment decision.

Seeds: seed-catalog-A §2.4 CID-01..17 (003_729e51c15a5a5608.txt:1024-1090).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from muster.domain.corporate_identifiers import IdentityType, identity_keys
from muster.domain.rbac import BuiltInRole, Permission
from muster.store.corporate_identifiers import SqlCorporateIdentifierStore
from muster.store.tables import DEFAULT_ORG_ID, devices
from tests.harness import DM, RunningMuster, running_muster

IDS = f"{DM}/importedDeviceIdentities"
CSV = {"Content-Type": "text/csv"}


def item(identifier: str, kind: str = "serialNumber", details: str | None = None) -> dict[str, Any]:
    return {"importedDeviceIdentifier": identifier, "importedDeviceIdentityType": kind, "description": details}


async def import_list(admin: httpx.AsyncClient, items: list[dict[str, Any]], overwrite: bool = False) -> list[Any]:
    response = await admin.post(
        f"{IDS}/importDeviceIdentityList",
        json={"importedDeviceIdentities": items, "overwriteImportedDeviceIdentities": overwrite},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


async def token_with(muster: RunningMuster, admin: httpx.AsyncClient, *permissions: Permission) -> str:
    """A Read Only Operator token also assigned a custom role holding `permissions`."""
    actions = [p.value for p in permissions]
    role = await admin.post(
        f"{DM}/roleDefinitions",
        json={"displayName": "ids", "rolePermissions": [{"resourceActions": [{"allowedResourceActions": actions}]}]},
    )
    assert role.status_code == 201, role.text
    token = await muster.container.admins.create_token(
        org_id=DEFAULT_ORG_ID, name="ids", role=BuiltInRole.READ_ONLY_OPERATOR
    )
    principal = await muster.container.authenticator.authenticate(token)
    assert principal is not None
    assigned = await admin.post(
        f"{DM}/roleAssignments",
        json={"displayName": "ids", "members": [principal.id], "roleDefinitionId": role.json()["id"]},
    )
    assert assigned.status_code == 201, assigned.text
    muster.container.authenticator.invalidate()
    return token


async def test_add_get_list_and_delete_one_identifier_003_1073(tmp_path: Path, database_url: str) -> None:
    """CID-09 (003_729e51c15a5a5608.txt:1073-1078) manual entry; CID-11 (:1082) new ones are "Not contacted";
    CID-17 (:1084-1090) delete."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        created = await admin.post(IDS, json=item(" c02abc ", details="Front desk") | {"platform": "macOS"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["@odata.type"] == "#microsoft.graph.importedDeviceIdentity"
        assert body["importedDeviceIdentifier"] == "C02ABC" and body["enrollmentState"] == "notContacted"
        assert body["description"] == "Front desk" and body["platform"] == "macOS"
        assert body["lastContactedDateTime"] is None and body["createdDateTime"].endswith("Z")
        again = await admin.post(IDS, json=item("C02ABC"))
        assert again.status_code == 409 and "already imported" in again.json()["error"]["message"]
        bad = await admin.post(IDS, json=item("0123", "imei"))
        assert bad.status_code == 400 and "14 digits" in bad.json()["error"]["message"]
        await admin.post(IDS, json=item("35925406864620", "imei"))
        listed = (
            await admin.get(IDS, params={"$filter": "importedDeviceIdentityType eq 'imei'", "$count": "true"})
        ).json()
        assert listed["@odata.count"] == 1 and listed["value"][0]["importedDeviceIdentifier"] == "35925406864620"
        page = (await admin.get(IDS, params={"$top": "1", "$select": "id,importedDeviceIdentifier"})).json()
        assert set(page["value"][0]) == {"@odata.type", "id", "importedDeviceIdentifier"} and "@odata.nextLink" in page
        assert (await admin.get(IDS, params={"$select": "nope"})).status_code == 400
        assert (await admin.get(f"{IDS}/{body['id']}")).json() == body
        assert (await admin.delete(f"{IDS}/{body['id']}")).status_code == 204
        assert (await admin.get(f"{IDS}/{body['id']}")).status_code == 404
        assert (await admin.delete(f"{IDS}/{body['id']}")).status_code == 404


async def test_import_list_keeps_valid_items_and_reports_each_003_1071(tmp_path: Path, database_url: str) -> None:
    """Per-item results; CID-08 (003_729e51c15a5a5608.txt:1071, 1078) the first occurrence in one import is used;
    CID-03/04/06 item errors do not lose the valid items."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        results = await import_list(
            admin,
            [
                item("SER1", details="first"),
                item("ser1", details="second"),  # same serial, other case: a repeat
                item("SER.2"),
                item("SER3", details="x" * 129),
                item("012345678901234", "imei"),  # 15 digits, wrong check digit
                item("01234567890128", "imei"),
                item("Microsoft,Surface Pro 9,0F33", "manufacturerModelSerial"),
                item("X", "udid"),
            ],
        )
        assert [r["status"] for r in results] == [True, False, False, False, False, True, True, False]
        assert results[0]["id"] and results[0]["@odata.type"] == "#microsoft.graph.importedDeviceIdentityResult"
        assert "repeats item 1" in results[1]["error"] and "'.'" in results[2]["error"]
        assert "128" in results[3]["error"] and "check digit" in results[4]["error"]
        assert results[6]["importedDeviceIdentifier"] == "MICROSOFT,SURFACE PRO 9,0F33"
        stored = (await admin.get(IDS, params={"$count": "true"})).json()
        assert stored["@odata.count"] == 3
        first = next(r for r in stored["value"] if r["importedDeviceIdentifier"] == "SER1")
        assert first["description"] == "first"
        refused = await admin.post(f"{IDS}/importDeviceIdentityList", json={"importedDeviceIdentities": "nope"})
        assert refused.status_code == 400


async def test_duplicates_with_other_details_are_reviewed_then_overwritten_003_1071(
    tmp_path: Path, database_url: str
) -> None:
    """CID-07 (003_729e51c15a5a5608.txt:1071, 1078): listed for review, kept, and overwritten only when asked (and
    only for the identifiers sent with overwrite); the same details again is no change."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        await import_list(admin, [item("A1", details="old"), item("A2", details="old"), item("A3", details="same")])
        review = await import_list(
            admin, [item("A1", details="new"), item("A2", details="new"), item("A3", details="same")]
        )
        assert [r["status"] for r in review] == [False, False, True]
        assert "other details" in review[0]["error"] and review[0]["description"] == "old"
        overwritten = await import_list(admin, [item("A1", details="new")], overwrite=True)
        assert overwritten[0]["status"] is True and overwritten[0]["description"] == "new"
        found = (
            await admin.post(
                f"{IDS}/searchExistingIdentities", json={"importedDeviceIdentities": [item("A1"), item("A2")]}
            )
        ).json()
        assert {r["importedDeviceIdentifier"]: r["description"] for r in found["value"]} == {"A1": "new", "A2": "old"}


async def test_overwriting_needs_the_update_permission(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        token = await token_with(muster, admin, Permission.CORPORATE_DEVICE_IDENTIFIERS_CREATE)
        async with muster.admin(token) as creator:
            assert (await creator.post(IDS, json=item("B1"))).status_code == 201
            refused = await creator.post(
                f"{IDS}/importDeviceIdentityList",
                json={"importedDeviceIdentities": [item("B1", details="x")], "overwriteImportedDeviceIdentities": True},
            )
            assert refused.status_code == 403 and Permission.CORPORATE_DEVICE_IDENTIFIERS_UPDATE.value in refused.text
            csv = await creator.post(
                f"{IDS}/importCsv?importedDeviceIdentityType=serialNumber&overwrite=true", content=b"B1\n", headers=CSV
            )
            assert csv.status_code == 403
            assert (await creator.delete(f"{IDS}/any")).status_code == 403  # no _Delete


async def test_read_only_operator_reads_but_cannot_change(tmp_path: Path) -> None:
    """Permissions CorporateDeviceIdentifiers Read/Create/Delete on every route (search is part of importing)."""
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        created = (await admin.post(IDS, json=item("R1"))).json()
        reader = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="reader", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        async with muster.admin(reader) as read_only:
            assert (await read_only.get(IDS)).json()["value"][0]["id"] == created["id"]
            found = await read_only.get(IDS, params={"$filter": "importedDeviceIdentifier eq 'R1'"})
            assert [r["id"] for r in found.json()["value"]] == [created["id"]]
            search = await read_only.post(
                f"{IDS}/searchExistingIdentities", json={"importedDeviceIdentities": [item("r1")]}
            )
            assert search.status_code == 403  # part of the import flow: _Create
            assert (await read_only.post(IDS, json=item("R2"))).status_code == 403
            assert (await read_only.delete(f"{IDS}/{created['id']}")).status_code == 403
            denied = await read_only.post(
                f"{IDS}/deleteDeviceIdentityList", json={"importedDeviceIdentities": [item("R1")]}
            )
            assert denied.status_code == 403


async def test_csv_import_limits_and_row_errors_003_1048(tmp_path: Path, database_url: str) -> None:
    """CID-01/02/05 (003_729e51c15a5a5608.txt:1048, 1050): one type per file, no header, exactly 5,000 rows accepted,
    5,001 refused whole; CID-06 (:1063) a dot fails the upload; row errors keep the valid rows; one audit event."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        url = f"{IDS}/importCsv?importedDeviceIdentityType=imei"
        five_thousand = b"".join(b"%014d,row %d\n" % (i, i) for i in range(5000))
        accepted = await admin.post(url, content=five_thousand, headers=CSV)
        assert accepted.status_code == 200, accepted.text
        assert len(accepted.json()["value"]) == 5000 and all(r["status"] for r in accepted.json()["value"])
        too_many = await admin.post(url, content=five_thousand + b"99999999999999\n", headers=CSV)
        assert too_many.status_code == 400 and "5000 rows" in too_many.json()["error"]["message"]
        serials = f"{IDS}/importCsv?importedDeviceIdentityType=serialNumber"
        dotted = await admin.post(serials, content=b"S1,ok\nS.2,bad\n", headers=CSV)
        assert dotted.status_code == 400 and "line 2" in dotted.json()["error"]["message"]
        mixed = await admin.post(serials, content=b"S1,ok\nS2," + b"x" * 129 + b"\nS3,a,b\nS1,again\n", headers=CSV)
        assert [r["status"] for r in mixed.json()["value"]] == [True, False, False, False]
        assert "line 2" in mixed.json()["value"][1]["error"] and "repeats line 1" in mixed.json()["value"][3]["error"]
        latin = await admin.post(serials, content="SÉRIE\n".encode("latin-1"), headers=CSV)
        assert latin.status_code == 400 and "UTF-8" in latin.json()["error"]["message"]
        not_csv = await admin.post(serials, content=b"S9\n", headers={"Content-Type": "application/json"})
        assert not_csv.status_code == 400 and "text/csv" in not_csv.json()["error"]["message"]
        wrong_type = await admin.post(f"{IDS}/importCsv?importedDeviceIdentityType=udid", content=b"S9\n", headers=CSV)
        assert wrong_type.status_code == 400
        large = await admin.post(serials, content=b"A" * (5 * 1024 * 1024 + 1), headers=CSV)
        assert large.status_code == 400 and "5 MB" in large.json()["error"]["message"]
        events = (await admin.get(f"{DM}/auditEvents", params={"$filter": "activity eq 'importCsv'"})).json()["value"]
        succeeded = [e for e in events if e["activityResult"] == "success"]
        assert len(succeeded) == 2  # one per call, not one per row


async def test_search_and_bulk_delete_003_1084(tmp_path: Path, database_url: str) -> None:
    """CID-17 (003_729e51c15a5a5608.txt:1084-1090): delete; the enrolled device keeps its corporate ownership."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        await import_list(admin, [item("D1"), item("D2"), item("35925406864620", "imei")])
        device_id = "d-1"
        async with muster.container.engine.begin() as conn:
            await conn.execute(
                insert(devices).values(
                    id=device_id,
                    org_id=DEFAULT_ORG_ID,
                    serial_number="D1",
                    owner_type="company",
                    enrollment_type="appleBulkWithUser",
                    management_state="managed",
                    inventory={},
                    scope_tag_ids=["0"],
                )
            )
        found = await admin.post(
            f"{IDS}/searchExistingIdentities",
            json={
                "importedDeviceIdentities": [
                    item("d1"),
                    item("359254068646207", "imei"),
                    item("nope"),
                    item("x", "udid"),
                ]
            },
        )
        assert sorted(r["importedDeviceIdentifier"] for r in found.json()["value"]) == ["35925406864620", "D1"]
        deleted = await admin.post(
            f"{IDS}/deleteDeviceIdentityList", json={"importedDeviceIdentities": [item("d1"), item("nope")]}
        )
        assert [r["status"] for r in deleted.json()["value"]] == [True, False]
        remaining = (await admin.get(IDS)).json()["value"]
        assert sorted(r["importedDeviceIdentifier"] for r in remaining) == ["35925406864620", "D2"]
        async with muster.container.engine.connect() as conn:
            owner = (await conn.execute(select(devices.c.owner_type).where(devices.c.id == device_id))).scalar_one()
        assert owner == "company"


async def test_concurrent_overlapping_imports_store_each_identifier_once(tmp_path: Path, database_url: str) -> None:
    """Imports use INSERT ... ON CONFLICT: concurrent calls with overlapping identifiers all succeed, once each."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        batches = [
            [item(f"C{n:05d}", details="same") for n in range(start, start + 1500)] for start in (0, 500, 1000, 0)
        ]
        results = await asyncio.gather(*(import_list(admin, batch) for batch in batches))
        assert all(r["status"] for batch in results for r in batch)
        created_ids = {r["importedDeviceIdentifier"]: r["id"] for batch in results for r in batch}
        listed = (await admin.get(IDS, params={"$count": "true", "$top": "1"})).json()
        assert listed["@odata.count"] == 2500 == len(created_ids)
        assert len(set(created_ids.values())) == 2500


async def test_the_enrollment_match_and_contact_states_003_1082(tmp_path: Path, database_url: str) -> None:
    """CID-14 (003_729e51c15a5a5608.txt:1013, 1024): the first key that was imported matches; CID-11 (:1082) states;
    CID-13 (:1061) an imported IMEI the device does not report does not match."""
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        await import_list(admin, [item("35925406864620", "imei"), item("F2LX1")])
        store = SqlCorporateIdentifierStore(muster.container.engine)  # what the enrollment gate reads
        ipad = identity_keys("iPadOS", "f2lx1", "359254068646207", "Apple", "iPad14,1")
        match = await store.find_match(DEFAULT_ORG_ID, ipad)
        assert match is not None and (match.identity_type, match.identifier) == (IdentityType.SERIAL_NUMBER, "F2LX1")
        other_imei = identity_keys("iOS", "OTHER", "01234567890128", None, None)
        assert await store.find_match(DEFAULT_ORG_ID, other_imei) is None
        assert (
            await store.find_match(DEFAULT_ORG_ID, identity_keys("macOS", None, "35925406864620", None, None)) is None
        )
        await muster.container.corporate_identifiers.mark_contacted(match.id, enrolled=True)
        shown = (await admin.get(f"{IDS}/{match.id}")).json()
        assert shown["enrollmentState"] == "enrolled" and shown["lastContactedDateTime"] is not None
