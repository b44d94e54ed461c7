"""Every admin change leaves exactly one audit event (generated from the route table), with no secret in it;
refusals are security events; request ids tie responses, logs and audit events together."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from muster.domain.rbac import BuiltInRole
from muster.logs import JsonFormatter, request_id
from muster.services.audit import REDACTED, is_secret_name, redact
from muster.store.tables import DEFAULT_ORG_ID
from muster.store.tables_audit import audit_log
from tests.harness import DM, RunningMuster, running_muster
from tests.web.test_admin_access import admin_routes

CANARY = "canary-Zq81xPw"
SECRET_BODY = {
    "password": CANARY,
    "clientSecret": CANARY,
    "secretText": CANARY,
    "depToken": CANARY,
    "totpCode": CANARY,
    "nested": {"privateKey": CANARY, "list": [{"passcode": CANARY}]},
    "certificate": f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----",
}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


async def events_for(muster: RunningMuster, correlation_id: str) -> list[dict[str, Any]]:
    query = select(audit_log).where(audit_log.c.correlation_id == correlation_id)
    async with muster.container.engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def test_every_admin_change_leaves_one_redacted_event(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        writes = [(route.method, route.path) for route in admin_routes() if route.method not in ("GET", "HEAD")]
        assert len(writes) >= 10
        for method, path in writes:
            response = await admin.request(method, _concrete(path), json=SECRET_BODY)
            assert response.status_code not in (401, 403), (method, path, response.text)
            events = await events_for(muster, response.headers["x-request-id"])
            assert len(events) == 1, (method, path, events)
            event = events[0]
            assert event["actor_name"] == "initial administrator" and event["actor_type"] in ("ItPro", "Application")
            assert event["http_method"] == method and event["path"] == _concrete(path)
            assert event["status_code"] == response.status_code
            assert event["result"] == ("success" if response.status_code < 400 else "failure")
            assert event["category"] != "security"
            stored = json.dumps(event, default=str)
            assert CANARY not in stored and muster.admin_token not in stored, (method, path, stored)
            if "{" in path:
                assert event["resources"][0]["resourceId"] == "00000000-0000-0000-0000-000000000000"
        reading = await admin.get(f"{DM}/managedDevices")
        assert await events_for(muster, reading.headers["x-request-id"]) == []


async def test_service_details_join_the_request_event(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        response = await admin.post(f"{DM}/dataSharingConsents/appleMDMPushCertificate/consentToDataSharing")
        assert response.status_code == 200, response.text
        [event] = await events_for(muster, response.headers["x-request-id"])
        assert event["activity"] == "consentToDataSharing"
        assert [change["activity"] for change in event["detail"]["changes"]] == ["consentToDataSharing"]
        # A read that makes a change (a new push CSR and its key) is audited too, once.
        csr = await admin.get(
            f"{DM}/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest"
        )
        assert csr.status_code == 200, csr.text
        [event] = await events_for(muster, csr.headers["x-request-id"])
        assert (event["operation_type"], event["result"]) == ("Get", "success")
        assert [change["activity"] for change in event["detail"]["changes"]] == [
            "downloadPushCertificateSigningRequest"
        ]


async def test_refusals_are_security_events_without_the_token(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster:
        reader = await muster.container.admins.create_token(
            org_id=DEFAULT_ORG_ID, name="auditor", role=BuiltInRole.READ_ONLY_OPERATOR
        )
        bad_token = "mst_not-a-real-token-" + CANARY
        async with muster.admin(bad_token) as stranger, muster.admin(reader) as read_only:
            unauthenticated = await stranger.get(f"{DM}/managedDevices")
            forbidden = await read_only.post(f"{DM}/webhookSubscriptions", json={"password": CANARY})
        assert (unauthenticated.status_code, forbidden.status_code) == (401, 403)
        [refused] = await events_for(muster, unauthenticated.headers["x-request-id"])
        assert (refused["category"], refused["activity_type"]) == ("security", "authenticationFailed")
        assert refused["actor_type"] == "Unknown" and refused["ip_address"] == "127.0.0.1"
        [denied] = await events_for(muster, forbidden.headers["x-request-id"])
        assert (denied["category"], denied["activity_type"], denied["actor_name"]) == (
            "security",
            "authorizationDenied",
            "auditor",
        )
        for event in (refused, denied):
            stored = json.dumps(event, default=str)
            assert CANARY not in stored and reader not in stored


async def test_request_ids_are_accepted_when_sane_and_echoed(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        kept = await admin.get("/healthz", headers={"X-Request-Id": "lb-1234.abc_DEF-9"})
        assert kept.headers["x-request-id"] == "lb-1234.abc_DEF-9"
        for insane in ("has space", "x" * 65, "semi;colon", ""):
            replaced = await admin.get("/healthz", headers={"X-Request-Id": insane})
            assert re.fullmatch(r"[0-9a-f-]{36}", replaced.headers["x-request-id"]), insane
        missing = await admin.get(f"{DM}/auditEvents/{'0' * 36}", headers={"X-Request-Id": "trace-77"})
        assert missing.status_code == 404
        assert missing.json()["error"]["innerError"]["request-id"] == "trace-77"


def test_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("muster.test", logging.INFO, __file__, 1, "hello", None, None)
    assert "requestId" not in json.loads(JsonFormatter().format(record))
    token = request_id.set("req-42")
    try:
        assert json.loads(JsonFormatter().format(record))["requestId"] == "req-42"
    finally:
        request_id.reset(token)


_secret_names = st.sampled_from(["password", "clientSecret", "depToken", "privateKey", "totpSecret", "pushMagic"])
_plain_names = st.text("abcdefghijlmquvwxyz", min_size=1, max_size=8).filter(lambda name: not is_secret_name(name))
_details = st.recursive(
    st.dictionaries(st.one_of(_secret_names, _plain_names), st.just(CANARY) | st.integers(), max_size=4),
    lambda inner: st.dictionaries(st.one_of(_secret_names, _plain_names), inner | st.lists(inner, max_size=2)),
    max_leaves=12,
)


@given(_details)
def test_redact_removes_every_value_under_a_secret_name(detail: dict[str, Any]) -> None:
    def leaks(value: Any, under_secret: bool) -> bool:
        if isinstance(value, dict):
            return any(leaks(v, under_secret or is_secret_name(k)) for k, v in value.items())
        if isinstance(value, list):
            return any(leaks(item, under_secret) for item in value)
        return under_secret and value != REDACTED

    assert not leaks(redact(detail), False)
