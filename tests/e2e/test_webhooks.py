"""Webhooks end to end: a receiver on 127.0.0.1 (a tiny ASGI app under uvicorn) gets signed events from a real
enrollment of a virtual iPhone; failed deliveries are retried on the schedule, then end `failed`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from muster.services.events import EventType
from muster.services.webhooks import WebhookEvents
from muster.simulators.apple_device import VirtualAppleDevice
from muster.store.tables import DEFAULT_ORG_ID
from muster.store.webhooks import SqlWebhookStore
from tests.harness import DM, RunningMuster, fake_apple, free_port, running_muster

HOOKS = f"{DM}/webhookSubscriptions"
SCHEDULE = [60.0, 300.0]  # seconds before the first and the second retry


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (200 once the script is spent) and keeps what came."""

    script: list[int] = field(default_factory=list)
    received: list[Delivery] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.received.append(Delivery({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        status = self.script.pop(0) if self.script else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        server.should_exit = True
        await task


def verify(delivery: Delivery, secret: str) -> None:
    """What a receiver does: recompute the signature over "<t>.<body>" and check the timestamp is recent."""
    parts = dict(item.split("=", 1) for item in delivery.headers["muster-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(time.time() - int(parts["t"])) < 3600
    assert delivery.headers["muster-event-id"] == delivery.event["id"]


async def subscribe(muster: RunningMuster, url: str, events: list[str]) -> tuple[str, str]:
    async with muster.admin() as admin:
        response = await admin.post(HOOKS, json={"notificationUrl": url, "events": events})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["secret"]


async def deliveries(muster: RunningMuster, subscription_id: str) -> list[dict[str, Any]]:
    async with muster.admin() as admin:
        response = await admin.get(f"{HOOKS}/{subscription_id}/deliveries")
    assert response.status_code == 200, response.text
    value: list[dict[str, Any]] = response.json()["value"]
    return value


async def test_enrollment_commands_and_checkout_are_signed_events(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver()
    async with (
        serve(receiver) as url,
        fake_apple(tmp_path / "apple") as apple,
        running_muster(
            tmp_path / "muster", database_url=database_url, apple=apple, webhook_allow_loopback_http=True
        ) as muster,
    ):
        await muster.install_push_certificate(apple)
        subscription_id, secret = await subscribe(muster, url, ["deviceEnrolled", "commandCompleted"])
        _, checkouts_secret = await subscribe(muster, url, ["deviceCheckedOut"])
        profile = await muster.enrollment_profile()
        installed = VirtualAppleDevice(http=httpx.AsyncClient()).install_profile(profile)
        async with httpx.AsyncClient(verify=installed.ssl_context()) as http:
            iphone = VirtualAppleDevice(http=http)
            await iphone.enroll(profile)
            handled = await iphone.poll()
            await iphone.checkin("CheckOut", Topic=apple.apns.topic)
        assert await muster.container.webhooks.deliver_due() == 2 + handled

        by_type: dict[str, list[Delivery]] = {}
        for delivery in receiver.received:
            by_type.setdefault(delivery.event["type"], []).append(delivery)
            verify(delivery, checkouts_secret if delivery.event["type"] == "deviceCheckedOut" else secret)
        [enrolled] = by_type["deviceEnrolled"]
        assert enrolled.event["data"]["udid"] == iphone.udid
        completed = [d.event["data"] for d in by_type["commandCompleted"]]
        assert len(completed) == handled
        assert {c["requestType"] for c in completed} >= {"DeviceInformation", "SecurityInfo"}
        assert {c["status"] for c in completed} == {"Acknowledged"}
        [checked_out] = by_type["deviceCheckedOut"]
        assert checked_out.event["data"]["udid"] == iphone.udid
        assert len({d.headers["muster-event-id"] for d in receiver.received}) == len(receiver.received)

        listed = await deliveries(muster, subscription_id)
        assert len(listed) == 1 + handled
        assert {(d["status"], d["attempts"], d["lastStatusCode"]) for d in listed} == {("succeeded", 1, 200)}
        assert await muster.container.webhooks.deliver_due() == 0  # nothing is sent twice


async def test_retries_follow_the_schedule_then_succeed(tmp_path: Path) -> None:
    receiver = Receiver(script=[500, 503])
    async with (
        serve(receiver) as url,
        running_muster(tmp_path, webhook_allow_loopback_http=True, webhook_retry_schedule_seconds=SCHEDULE) as muster,
    ):
        subscription_id, secret = await subscribe(muster, url, ["deviceEnrolled"])
        await publish(muster)
        dispatcher, start = muster.container.webhooks, muster.container.clock.now()

        assert await dispatcher.deliver_due(start) == 1
        [first] = await deliveries(muster, subscription_id)
        assert (first["status"], first["attempts"], first["lastStatusCode"]) == ("pending", 1, 500)
        assert await dispatcher.deliver_due(start + timedelta(seconds=59)) == 0  # not before the first wait
        assert await dispatcher.deliver_due(start + timedelta(seconds=61)) == 1
        assert await dispatcher.deliver_due(start + timedelta(seconds=61 + 299)) == 0
        assert await dispatcher.deliver_due(start + timedelta(seconds=61 + 301)) == 1
        [done] = await deliveries(muster, subscription_id)
        assert (done["status"], done["attempts"], done["lastStatusCode"], done["lastError"]) == (
            "succeeded",
            3,
            200,
            None,
        )
        assert len(receiver.received) == 3
        assert len({d.headers["muster-event-id"] for d in receiver.received}) == 1  # one event, three attempts
        for delivery in receiver.received:
            verify(delivery, secret)


async def test_a_dead_receiver_ends_failed_and_rotation_changes_the_secret(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    async with running_muster(
        tmp_path, webhook_allow_loopback_http=True, webhook_retry_schedule_seconds=SCHEDULE
    ) as muster:
        subscription_id, secret = await subscribe(muster, dead, ["deviceEnrolled"])
        await publish(muster)
        dispatcher, start = muster.container.webhooks, muster.container.clock.now()
        for at in (0, 61, 61 + 301):
            assert await dispatcher.deliver_due(start + timedelta(seconds=at)) == 1
        assert await dispatcher.deliver_due(start + timedelta(days=1)) == 0
        [failed] = await deliveries(muster, subscription_id)
        assert (failed["status"], failed["attempts"], failed["lastStatusCode"]) == ("failed", 3, None)
        assert failed["lastError"] and "ConnectError" in failed["lastError"]

        async with muster.admin() as admin:
            rotated = (await admin.post(f"{HOOKS}/{subscription_id}/rotateSecret")).json()
            assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
            assert "secret" not in (await admin.get(f"{HOOKS}/{subscription_id}")).json()
            assert (await admin.delete(f"{HOOKS}/{subscription_id}")).status_code == 204
            assert (await admin.get(f"{HOOKS}/{subscription_id}")).status_code == 404


async def test_subscriptions_refuse_bad_urls_and_events(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        for body in (
            {"notificationUrl": "http://127.0.0.1:9/x", "events": ["deviceEnrolled"]},  # dev setting is off
            {"notificationUrl": "http://hooks.example.com/x", "events": ["deviceEnrolled"]},
            {"notificationUrl": "https://user:pw@hooks.example.com/x", "events": ["deviceEnrolled"]},
            {"notificationUrl": "https://hooks.example.com:99999/x", "events": ["deviceEnrolled"]},
            {"notificationUrl": "https://hooks.example.com/x", "events": ["deviceExploded"]},
            {"notificationUrl": "https://hooks.example.com/x", "events": []},
            {"notificationUrl": "https://hooks.example.com/x"},
            {"notificationUrl": "https://" + "a" * 3000, "events": ["deviceEnrolled"]},
            {"notificationUrl": "https://hooks.example.com/x", "events": ["deviceEnrolled"], "extra": 1},
        ):
            response = await admin.post(HOOKS, json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["code"]
        assert (await admin.get(HOOKS)).json()["value"] == []
        stored = json.dumps((await admin.get(f"{DM}/auditEvents")).json())
        assert "user:pw@" not in stored and "https://[redacted]@hooks.example.com/x" in stored


async def publish(muster: RunningMuster) -> None:
    """An event as the device path publishes it (the enrollment test drives the real device path)."""
    events = WebhookEvents(store=SqlWebhookStore(muster.container.engine), clock=muster.container.clock)
    await events.publish(org_id=DEFAULT_ORG_ID, event_type=EventType.DEVICE_ENROLLED, data={"udid": "U1"})


async def test_a_delivery_left_by_a_dead_process_is_retried_when_its_lease_ends(tmp_path: Path) -> None:
    receiver = Receiver()
    async with (
        serve(receiver) as url,
        running_muster(tmp_path, webhook_allow_loopback_http=True, webhook_timeout_seconds=5) as muster,
    ):
        subscription_id, secret = await subscribe(muster, url, ["deviceEnrolled"])
        await publish(muster)
        start = muster.container.clock.now()
        store = SqlWebhookStore(muster.container.engine)
        [abandoned] = await store.claim_due(now=start, lease_until=start + timedelta(seconds=50), limit=10)
        dispatcher = muster.container.webhooks
        assert await dispatcher.deliver_due(start + timedelta(seconds=49)) == 0  # still leased to the "dead" one
        assert await dispatcher.deliver_due(start + timedelta(seconds=51)) == 1
        [done] = await deliveries(muster, subscription_id)
        assert (done["id"], done["status"], done["attempts"]) == (abandoned.id, "succeeded", 2)
        [delivery] = receiver.received
        verify(delivery, secret)
