"""Syncing ADE devices from Apple Business Manager (NanoDEP-style, with the peers' bugs fixed).

One run per token at a time across every server process (a lease row); the cursor advances only together
with the devices it covered; a run killed mid-way is resumed by the next one from the last saved page; an
echoed cursor ends the run instead of looping; cursor errors restart with a full fetch. The schedule and the
admin-facing rules (12-hour delta, 7-day full, 15-minute manual gap and time limit) are `muster.domain.ade_sync`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from muster.domain import ade_sync as rules
from muster.domain.ade_sync import SyncKind, SyncOutcome, SyncState
from muster.domain.clock import Clock
from muster.domain.errors import NotAllowed, NotFound, PreconditionMissing
from muster.pki.secretbox import SecretBox
from muster.protocols.apple.dep import DepDevice, FetchPage
from muster.protocols.apple.dep_errors import DepApiError, DepCursorExhausted, DepCursorExpired
from muster.protocols.apple.dep_token import DepCredentials
from muster.services.ade_ports import AdeSyncStore, DepApi, DepApiFactory, PageWrite, SyncedDevice, TokenSyncRow

log = logging.getLogger(__name__)
CREDENTIALS_PURPOSE = "depTokenCredentials"
PAGE_LIMIT = 1000


class EchoedCursor(Exception):
    """Apple answered with the cursor it was sent and more to follow: looping would never end."""


class LeaseLost(Exception):
    """Another run took the token over (this one overran its lease)."""


@dataclass(frozen=True)
class SyncReport:
    token_id: str
    kind: SyncKind
    outcome: SyncOutcome
    devices: int
    error: str | None


def seal_credentials(secrets: SecretBox, credentials: DepCredentials) -> bytes:
    return secrets.encrypt(json.dumps(credentials.to_json()).encode(), purpose=CREDENTIALS_PURPOSE)


def open_credentials(secrets: SecretBox, sealed: bytes) -> DepCredentials:
    return DepCredentials.from_json(json.loads(secrets.decrypt(sealed, purpose=CREDENTIALS_PURPOSE)))


def sync_state(row: TokenSyncRow, now: datetime) -> SyncState:
    """The schedule's view of a token. A run whose lease lapsed (its process died) counts as failed, not running."""
    alive = row.sync_lease_expires_at is not None and row.sync_lease_expires_at > now
    outcome = SyncOutcome(row.last_sync_outcome) if row.last_sync_outcome else None
    if row.sync_started_at is not None and not alive:
        outcome = SyncOutcome.FAILED
    assert row.token_expires_at is not None
    return SyncState(
        token_expires_at=row.token_expires_at,
        last_full_at=row.last_full_sync_at,
        last_started_at=row.last_sync_started_at,
        last_manual_at=row.last_manual_sync_at,
        running_since=row.sync_started_at if alive else None,
        running_kind=SyncKind(row.sync_kind) if alive and row.sync_kind else None,
        last_outcome=outcome,
        delta_failed=row.full_sync_required,
    )


def _kind(row: TokenSyncRow, now: datetime) -> SyncKind:
    """No cursor yet, or a fetch that was interrupted: fetch (resuming where it stopped). Otherwise the schedule."""
    fetching = row.cursor is None or row.cursor_kind == "fetch"
    return SyncKind.FULL if fetching else rules.next_kind(sync_state(row, now), now)


@dataclass(frozen=True)
class _Claim:
    """A run whose lease is held: the token row as it was read, what the run does, and when it started."""

    row: TokenSyncRow
    kind: SyncKind
    run_id: str
    started: datetime


class AdeSync:
    def __init__(
        self,
        *,
        store: AdeSyncStore,
        secrets: SecretBox,
        api: DepApiFactory,
        clock: Clock,
        owner: str,
        after_sync: Callable[[str], Awaitable[None]] | None = None,
        lease: timedelta = timedelta(seconds=120),
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._api = api
        self._clock = clock
        self._owner = owner
        self._after_sync = after_sync
        self._lease = lease
        self._tasks: set[asyncio.Task[SyncReport]] = set()

    async def start_manual(self, token_id: str) -> None:
        """An admin's Sync: refused with the reason while not allowed (ADE-14, -16), else started in the background.

        The run is claimed before answering, so a second request right after this one is refused, not accepted and
        then silently dropped."""
        row = await self._row(token_id)
        now = self._clock.now()
        decision = rules.may_start_manual(sync_state(row, now), now, device_count=row.device_count)
        if not decision.allowed:
            raise NotAllowed(decision.reason or "a sync cannot start now")
        claim = await self._claim(row, now, manual=True)
        if claim is None:
            raise NotAllowed("A sync is already running for this token. Sync is available again when it finishes.")
        self._spawn(self._execute(claim))

    def start_automatic(self, token_id: str) -> None:
        """The first sync after a token upload (ADE-05)."""
        self._spawn(self.run(token_id))

    async def run_due(self) -> list[SyncReport]:
        """The scheduler's tick: every token whose automatic sync is due."""
        now = self._clock.now()
        due = [
            row.id
            for row in await self._store.tokens_for_sync()
            if row.token_expires_at and rules.automatic_sync_due(sync_state(row, now), now)
        ]
        return [await self.run(token_id) for token_id in due]

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[None, None, SyncReport]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, token_id: str) -> SyncReport:
        """One automatic run of the token's sync, unless another is running."""
        row = await self._row(token_id)
        now = self._clock.now()
        claim = await self._claim(row, now, manual=False)
        if claim is None:
            return SyncReport(
                token_id, _kind(row, now), SyncOutcome.FAILED, 0, "a sync is already running for this token"
            )
        return await self._execute(claim)

    async def _claim(self, row: TokenSyncRow, now: datetime, *, manual: bool) -> _Claim | None:
        """Take the token's lease for a new run; None when another run holds it."""
        kind = _kind(row, now)
        run_id = str(uuid.uuid4())
        if not await self._store.acquire(
            row.id, owner=self._owner, run_id=run_id, kind=kind.value, manual=manual, now=now, lease=self._lease
        ):
            return None
        return _Claim(row, kind, run_id, now)

    async def _execute(self, claim: _Claim) -> SyncReport:
        row, kind, run_id, started, token_id = claim.row, claim.kind, claim.run_id, claim.started, claim.row.id
        devices, error, outcome, reset = 0, None, SyncOutcome.SUCCEEDED, False
        api = (
            self._api(open_credentials(self._secrets, row.credentials_encrypted)) if row.credentials_encrypted else None
        )
        try:
            if api is None:
                raise PreconditionMissing("the token has no server token uploaded")
            devices = await (
                self._full(api, row, run_id, started)
                if kind is SyncKind.FULL
                else self._delta(api, row, run_id, started)
            )
        except DepCursorExpired as failure:  # too old or unknown: the next run fetches everything again
            outcome, error, reset = SyncOutcome.FAILED, f"Apple refused the sync cursor ({failure.code})", True
        except EchoedCursor:
            outcome, error, reset = SyncOutcome.FAILED, "Apple returned the same cursor again; the sync stopped", True
        except TimeoutError:
            outcome, error = SyncOutcome.TIMED_OUT, "the sync did not finish within 15 minutes"
        except (DepApiError, LeaseLost, PreconditionMissing) as failure:
            outcome, error = SyncOutcome.FAILED, str(failure)
        finally:
            if api is not None:
                await api.aclose()
        failed_delta = outcome is not SyncOutcome.SUCCEEDED and kind is SyncKind.DELTA
        await self._store.finish(
            token_id,
            owner=self._owner,
            run_id=run_id,
            outcome=outcome.value,
            error=error,
            full_sync_required=failed_delta or (row.full_sync_required and kind is SyncKind.DELTA),
            reset_cursor=reset,
            now=self._clock.now(),
        )
        log.info(
            "ade sync finished",
            extra={"token": token_id, "kind": kind.value, "outcome": outcome.value, "devices": devices},
        )
        if outcome is SyncOutcome.SUCCEEDED and self._after_sync is not None:
            await self._after_sync(token_id)
        return SyncReport(token_id, kind, outcome, devices, error)

    async def _full(self, api: DepApi, row: TokenSyncRow, run_id: str, started: datetime) -> int:
        """Fetch Apple's whole list, resuming an interrupted fetch from its saved cursor.

        The next page is fetched while the current one is saved (its cursor is known as soon as the page arrives),
        so Apple's latency and the database overlap; the saved cursor still only ever follows saved devices."""
        resuming = row.cursor_kind == "fetch" and row.cursor is not None and row.fetch_generation is not None
        cursor = row.cursor if resuming else None
        generation = row.fetch_generation if resuming and row.fetch_generation else str(uuid.uuid4())
        seen = 0
        try:
            page = await api.fetch_devices(cursor, PAGE_LIMIT)
        except DepCursorExhausted:
            return seen  # this cursor already delivered everything: only syncs from here on
        while True:
            self._check_time(started)
            done = not page.more_to_follow
            if not done and page.cursor == cursor:
                raise EchoedCursor
            following = None if done else asyncio.ensure_future(api.fetch_devices(page.cursor, PAGE_LIMIT))
            try:
                seen += await self._save(
                    row,
                    run_id,
                    page,
                    cursor,
                    kind="sync" if done else "fetch",
                    generation=generation,
                    create=True,
                    complete=done,
                )
            except BaseException:
                if following is not None:
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                raise
            if following is None:
                return seen
            cursor = page.cursor
            try:
                page = await following
            except DepCursorExhausted:
                return seen

    async def _delta(self, api: DepApi, row: TokenSyncRow, run_id: str, started: datetime) -> int:
        cursor, seen = row.cursor, 0
        assert cursor is not None and row.fetch_generation is not None
        while True:
            self._check_time(started)
            page = await api.sync_devices(cursor, PAGE_LIMIT)
            seen += await self._save(
                row, run_id, page, cursor, kind="sync", generation=row.fetch_generation, create=False, complete=False
            )
            cursor = page.cursor
            if not page.more_to_follow:
                return seen

    async def _save(
        self,
        row: TokenSyncRow,
        run_id: str,
        page: FetchPage,
        sent: str | None,
        *,
        kind: str,
        generation: str,
        create: bool,
        complete: bool,
    ) -> int:
        if page.more_to_follow and page.cursor == sent:
            raise EchoedCursor
        devices = latest_per_serial(page.devices)
        saved = await self._store.save_page(
            PageWrite(
                token_id=row.id,
                org_id=row.org_id,
                owner=self._owner,
                run_id=run_id,
                devices=devices,
                cursor=page.cursor,
                cursor_kind=kind,
                fetch_generation=generation,
                create_missing=create,
                fetch_complete=complete,
                now=self._clock.now(),
                lease=self._lease,
            )
        )
        if not saved:
            raise LeaseLost("another sync took this token over")
        return len(devices)

    def _check_time(self, started: datetime) -> None:
        if self._clock.now() - started >= rules.SYNC_TIME_LIMIT:
            raise TimeoutError

    async def _row(self, token_id: str) -> TokenSyncRow:
        row = await self._store.token_sync_row(token_id)
        if row is None:
            raise NotFound(f"enrollment program token {token_id} not found")
        if row.token_expires_at is None:
            raise PreconditionMissing("upload the server token from Apple Business Manager first")
        return row


def _op_time(device: DepDevice) -> float:
    return device.op_date.timestamp() if device.op_date else 0.0


def latest_per_serial(devices: Sequence[DepDevice]) -> list[SyncedDevice]:
    """Apple may list a device more than once in a page: the record with the latest op_date wins."""
    chosen: dict[str, DepDevice] = {}
    for device in devices:
        current = chosen.get(device.serial_number)
        if current is None or _op_time(device) >= _op_time(current):
            chosen[device.serial_number] = device
    return [
        SyncedDevice(
            d.serial_number,
            d.model,
            d.description,
            d.color,
            d.asset_tag,
            d.os,
            d.device_family,
            d.profile_uuid,
            d.profile_status,
            d.profile_assign_time,
            d.profile_push_time,
            d.device_assigned_date,
            d.device_assigned_by,
            d.op_type,
            d.op_date,
        )
        for d in chosen.values()
    ]
