"""Two server processes on one PostgreSQL database deliver each webhook attempt once: deliveries are claimed with
`FOR UPDATE SKIP LOCKED` and leased, so the workers' delivery loops never send the same row twice."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest

from muster.services.events import EventType
from muster.services.webhooks import WebhookEvents
from muster.store.tables import DEFAULT_ORG_ID
from muster.store.webhooks import SqlWebhookStore
from tests.e2e.test_webhooks import Receiver, deliveries, serve, subscribe
from tests.harness import fresh_postgres_database, postgres_available, running_muster

pytestmark = pytest.mark.postgres
EVENTS = 60


async def test_two_server_processes_deliver_each_event_once(tmp_path: Path) -> None:
    if not await postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable, and CI must run this test")
        pytest.skip("PostgreSQL is not reachable")
    receiver = Receiver()
    async with (
        serve(receiver) as url,
        fresh_postgres_database() as database_url,
        running_muster(
            tmp_path,
            database_url=database_url,
            server_processes=2,
            webhook_allow_loopback_http=True,
            webhook_poll_seconds=0.05,
            webhook_concurrency=2,
        ) as muster,
    ):
        subscription_id, _ = await subscribe(muster, url, ["commandCompleted"])
        events = WebhookEvents(store=SqlWebhookStore(muster.container.engine), clock=muster.container.clock)
        for n in range(EVENTS):
            await events.publish(org_id=DEFAULT_ORG_ID, event_type=EventType.COMMAND_COMPLETED, data={"n": n})
        for _ in range(600):  # the workers' own delivery loops do the sending
            listed = await deliveries(muster, subscription_id)
            if all(d["status"] == "succeeded" for d in listed):
                break
            await asyncio.sleep(0.05)
        assert len(listed) == EVENTS
        assert {(d["status"], d["attempts"]) for d in listed} == {("succeeded", 1)}  # claimed once each
        received = Counter(d.headers["muster-event-id"] for d in receiver.received)
        assert len(received) == EVENTS and set(received.values()) == {1}
