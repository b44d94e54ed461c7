"""Graph `auditEvents`: shape, $filter on the documented properties, default newest-first order, paging, the
category and activity type functions, and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from muster.domain.clock import FixedClock
from muster.domain.rbac import BuiltInRole
from muster.services.audit import Actor, AuditRecord
from muster.store.audit import SqlAuditLog, SqlAuditSink
from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import DM, running_muster

EVENTS = f"{DM}/auditEvents"
HOOKS = f"{DM}/webhookSubscriptions"


async def test_audit_events_list_filter_page_and_get(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url, webhook_allow_loopback_http=True) as muster:
        reader = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="auditor", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        async with muster.admin() as admin, muster.admin(reader) as read_only:
            created = await admin.post(
                HOOKS, json={"notificationUrl": "https://hooks.example.com/in", "events": ["deviceEnrolled"]}
            )
            assert created.status_code == 201, created.text
            hook_id = created.json()["id"]
            bad = await admin.post(HOOKS, json={"notificationUrl": "ftp://x", "events": ["deviceEnrolled"]})
            assert bad.status_code == 400
            patched = await admin.patch(f"{HOOKS}/{hook_id}", json={"description": "SIEM"})
            assert patched.status_code == 200
            assert (await read_only.delete(f"{HOOKS}/{hook_id}")).status_code == 403
            assert (await read_only.get(EVENTS)).status_code == 200  # reading is not audited

            everything = (await admin.get(EVENTS)).json()
            assert [e["activity"] for e in everything["value"]] == [
                "deleteWebhookSubscription",
                "updateWebhookSubscription",
                "createWebhookSubscription",
                "createWebhookSubscription",
            ]
            first = everything["value"][-1]
            assert first["@odata.type"] == "#microsoft.graph.auditEvent"
            assert first["activityOperationType"] == "Create" and first["activityResult"] == "success"
            assert first["category"] == first["componentName"] == "webhookSubscriptions"
            assert first["activityType"] == "createWebhookSubscription webhookSubscriptions"
            assert first["correlationId"] == created.headers["x-request-id"]
            assert first["actor"]["applicationDisplayName"] == "initial administrator" or (
                first["actor"]["userPrincipalName"] == "initial administrator"
            )
            assert first["actor"]["ipAddress"] == "127.0.0.1"
            [resource] = first["resources"]
            assert resource["resourceId"] == hook_id
            changed = {p["displayName"]: p["newValue"] for p in resource["modifiedProperties"]}
            assert changed["notificationUrl"] == "https://hooks.example.com/in"
            assert created.json()["secret"] not in str(everything)

            async def activities(**params: str) -> list[str]:
                response = await admin.get(EVENTS, params=params)
                assert response.status_code == 200, response.text
                return [e["activity"] for e in response.json()["value"]]

            assert await activities(**{"$filter": "activityResult eq 'failure'"}) == [
                "deleteWebhookSubscription",
                "createWebhookSubscription",
            ]
            assert await activities(**{"$filter": "category eq 'security'"}) == ["deleteWebhookSubscription"]
            assert await activities(**{"$filter": "activityType eq 'authorizationDenied'"}) == [
                "deleteWebhookSubscription"
            ]
            assert await activities(**{"$filter": "actor eq 'auditor'"}) == ["deleteWebhookSubscription"]
            assert await activities(**{"$filter": "activityOperationType eq 'Patch'"}) == ["updateWebhookSubscription"]
            later = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
            earlier = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert await activities(**{"$filter": f"activityDateTime ge {later}"}) == []
            assert (
                len(await activities(**{"$filter": f"activityDateTime ge {earlier} and activityDateTime le {later}"}))
                == 4
            )
            assert await activities(**{"$orderby": "activityDateTime asc", "$top": "1"}) == [
                "createWebhookSubscription"
            ]
            assert (await admin.get(EVENTS, params={"$filter": "nope eq 1"})).status_code == 400
            assert (await admin.get(EVENTS, params={"$select": "nope"})).status_code == 400
            selected = (await admin.get(EVENTS, params={"$select": "activity,actor", "$top": "1"})).json()["value"]
            assert set(selected[0]) == {"@odata.type", "id", "activity", "actor"}

            seen, url = [], f"{EVENTS}?$top=3"
            while url:
                page = (await admin.get(url)).json()
                seen += [e["id"] for e in page["value"]]
                url = page.get("@odata.nextLink", "")
            assert seen == [e["id"] for e in everything["value"]]

            one = await admin.get(f"{EVENTS}/{first['id']}")
            assert one.json() == first
            assert (await admin.get(f"{EVENTS}/nope")).status_code == 404

            categories = (await admin.get(f"{EVENTS}/getAuditCategories()")).json()["value"]
            assert {"security", "webhookSubscriptions", "managedDevices"} <= set(categories)
            types = (await admin.get(f"{EVENTS}/getAuditActivityTypes(category='webhookSubscriptions')")).json()
            assert "rotateSecret webhookSubscriptions" in types["value"]
            assert "createWebhookSubscription webhookSubscriptions" in types["value"]


async def test_retention_purges_only_old_events(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster:
        clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
        sink = SqlAuditSink(muster.container.engine, clock=clock, org_id=DEFAULT_ORG_ID)
        record = AuditRecord("admin", "old", "old admin", "Action", "success", Actor("System", "system"))
        await sink.write(record)
        clock.advance(timedelta(days=400))
        await sink.write(AuditRecord("admin", "new", "new admin", "Action", "success", Actor("System", "system")))
        clock.advance(timedelta(seconds=1))
        await sink.admin_event(actor="system", activity="depTokenExpiryWarning", target="t1", detail={"key": "k"})
        log = SqlAuditLog(muster.container.engine)
        assert await log.purge(clock.now() - timedelta(days=365)) == 1
        async with muster.admin() as admin:
            kept = (await admin.get(EVENTS)).json()["value"]
        assert [e["activity"] for e in kept] == ["depTokenExpiryWarning", "new"]
        assert kept[0]["actor"]["auditActorType"] == "System"
        assert kept[0]["resources"][0]["modifiedProperties"] == [
            {"displayName": "key", "oldValue": None, "newValue": "[redacted]"}
        ]
