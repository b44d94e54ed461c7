"""The ADE device sync schedule of one token, and how a sync's answer reconciles the token's device rows.

Apple's "acceptable enrollment program traffic" rules as Intune applies them (002_07f194c4e8cc4cb2.txt:18-25,
003_729e51c15a5a5608.txt:5054-5063): a full sync (Apple's fetch of every serial assigned to the MDM server) at most
once every 7 days, an automatic delta sync every 12 hours, a manual sync at most every 15 minutes and never while
another runs, 15 minutes for every run, and a full sync after a failed delta. docs/ade-rules.md explains the
readings chosen where the seeds disagree (24-hour cadence in the ASM and macOS articles, runs longer than 15 min).

Everything is a pure function of a `SyncState` and an injected `now`; the service stores the state per token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from muster.domain.ade_tokens import Decision, is_expired, token_use_decision

FULL_SYNC_MIN_INTERVAL = timedelta(days=7)
DELTA_SYNC_INTERVAL = timedelta(hours=12)
MANUAL_SYNC_MIN_INTERVAL = timedelta(minutes=15)
SYNC_TIME_LIMIT = timedelta(minutes=15)
DEVICES_PER_MINUTE = 3_000
LARGE_TOKEN_DEVICES = 200_000
# Released devices are purged "within 30-45 days": from day 30 on, so a purge job running at least every
# 15 days keeps the 45-day promise.
RELEASED_PURGE_AFTER = timedelta(days=30)


class SyncKind(StrEnum):
    FULL = "full"
    DELTA = "delta"


class SyncOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timedOut"


@dataclass(frozen=True)
class SyncState:
    """What the schedule needs to know about one token."""

    token_expires_at: datetime
    last_full_at: datetime | None = None  # start of the last full sync that succeeded
    last_started_at: datetime | None = None  # start of the last sync of any kind
    last_manual_at: datetime | None = None  # start of the last sync an admin asked for
    running_since: datetime | None = None
    running_kind: SyncKind | None = None
    last_outcome: SyncOutcome | None = None
    delta_failed: bool = False  # a delta failed since the last successful full sync


def is_timed_out(state: SyncState, now: datetime) -> bool:
    """A run still open after 15 minutes is over, and failed (ADE-15)."""
    return state.running_since is not None and now - state.running_since >= SYNC_TIME_LIMIT


def is_running(state: SyncState, now: datetime) -> bool:
    return state.running_since is not None and not is_timed_out(state, now)


def settle(state: SyncState, now: datetime) -> SyncState:
    """The state with a run past its time limit closed as timed out; every other rule reads settled states."""
    if not is_timed_out(state, now):
        return state
    return _closed(state, SyncOutcome.TIMED_OUT)


def next_kind(state: SyncState, now: datetime) -> SyncKind:
    """Full when no full sync has succeeded yet, after a failed delta, or once 7 days have passed; else delta.

    A failed or timed-out full sync does not count: Apple's list was not fetched, so the next run fetches again
    (resuming from the cursor the service kept), whatever the 7-day window says.
    """
    state = settle(state, now)
    if state.last_full_at is None or state.delta_failed:
        return SyncKind.FULL
    return SyncKind.FULL if now - state.last_full_at >= FULL_SYNC_MIN_INTERVAL else SyncKind.DELTA


def next_due(state: SyncState, now: datetime) -> tuple[SyncKind, datetime] | None:
    """The next automatic sync and when it is due (possibly already past); None if the token has expired by then.

    A new token syncs at once (ADE-05); afterwards a sync is due 12 hours after the previous one started,
    a manual one included, since that run already fetched the changes (ADE-13).
    """
    state = settle(state, now)
    when = now if state.last_started_at is None else state.last_started_at + DELTA_SYNC_INTERVAL
    moment = max(when, now)
    if is_expired(state.token_expires_at, moment):
        return None
    return next_kind(state, moment), when


def automatic_sync_due(state: SyncState, now: datetime) -> SyncKind | None:
    """What the scheduler should start now, if anything."""
    state = settle(state, now)
    due = next_due(state, now)
    if due is None or is_running(state, now):
        return None
    kind, when = due
    return kind if when <= now else None


def may_start_manual(state: SyncState, now: datetime, *, device_count: int = 0) -> Decision:
    """Whether an admin's Sync may start now; when not, the reason and the earliest retry (ADE-14, 16, 17, 08)."""
    state = settle(state, now)
    usable = token_use_decision(state.token_expires_at, now, action="sync devices")
    if not usable.allowed:
        return usable
    waits = _manual_waits(state, now, device_count)
    # Report the constraint that lasts longest, so that retrying at the time given succeeds.
    return max(waits, key=lambda wait: wait.retry_after or now) if waits else Decision.allow()


def started(state: SyncState, kind: SyncKind, now: datetime, *, manual: bool) -> SyncState:
    """The state once a sync of `kind` has started."""
    state = settle(state, now)
    if is_running(state, now):
        raise ValueError("a sync is already running for this token")
    return replace(
        state,
        last_started_at=now,
        last_manual_at=now if manual else state.last_manual_at,
        running_since=now,
        running_kind=kind,
    )


def finished(state: SyncState, outcome: SyncOutcome, now: datetime) -> SyncState:
    """The state once the running sync reports its outcome.

    A report arriving after the time limit is ignored: the run was already over, and failed (ADE-15).
    """
    if state.running_since is None or is_timed_out(state, now):
        return settle(state, now)
    return _closed(state, outcome)


def estimated_duration(device_count: int) -> timedelta:
    """Apple sends about 3,000 devices a minute (ADE-17)."""
    return timedelta(minutes=device_count / DEVICES_PER_MINUTE)


def purge_due(released_at: datetime, now: datetime) -> bool:
    """A device released from Apple Business Manager is deleted 30 to 45 days after its release (ADE-20)."""
    return now - released_at >= RELEASED_PURGE_AFTER


class DeviceOp(StrEnum):
    """Apple's `op_type` on devices returned by a delta sync."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True)
class DeviceChange:
    serial: str
    op: DeviceOp
    op_date: datetime


@dataclass(frozen=True)
class RowChanges:
    """What a sync does to the token's device rows."""

    create: frozenset[str]  # new rows
    refresh: frozenset[str]  # rows to update from Apple's record; a released mark on them is cleared
    release: frozenset[str]  # rows to mark "Removed from Apple Business", purged later (`purge_due`)


def reconcile_full(listed: Iterable[str], *, known: Iterable[str], released: Iterable[str]) -> RowChanges:
    """A full sync's list of serials is the truth: whatever it holds has a row afterwards.

    A device deleted here but still assigned to the MDM server in Apple Business Manager therefore comes back
    (ADE-19); rows Apple no longer lists were released or unassigned there.
    `known` are the serials with a row (released ones included); `released` those marked released.
    """
    listed_set, known_set = set(listed), set(known)
    return RowChanges(
        create=frozenset(listed_set - known_set),
        refresh=frozenset(listed_set & known_set),
        release=frozenset(known_set - listed_set - set(released)),
    )


def reconcile_delta(changes: Iterable[DeviceChange], *, known: Iterable[str], released: Iterable[str]) -> RowChanges:
    """A delta sync applies Apple's latest change per serial (Apple may repeat a device; the newest `op_date` wins).

    Only `added` creates rows: a device deleted here stays away until the next full sync, even when Apple reports
    it modified (003_729e51c15a5a5608.txt:6821).
    """
    latest: dict[str, DeviceChange] = {}
    for change in changes:
        if change.serial not in latest or change.op_date >= latest[change.serial].op_date:
            latest[change.serial] = change
    known_set, released_set = set(known), set(released)
    create, refresh, release = set(), set(), set()
    for serial, change in latest.items():
        if change.op is DeviceOp.DELETED:
            if serial in known_set - released_set:
                release.add(serial)
        elif serial in known_set:
            refresh.add(serial)
        elif change.op is DeviceOp.ADDED:
            create.add(serial)
    return RowChanges(create=frozenset(create), refresh=frozenset(refresh), release=frozenset(release))


def _closed(state: SyncState, outcome: SyncOutcome) -> SyncState:
    full_succeeded = state.running_kind is SyncKind.FULL and outcome is SyncOutcome.SUCCEEDED
    delta_failed = state.running_kind is SyncKind.DELTA and outcome is not SyncOutcome.SUCCEEDED
    return replace(
        state,
        last_full_at=state.running_since if full_succeeded else state.last_full_at,
        delta_failed=(state.delta_failed or delta_failed) and not full_succeeded,
        running_since=None,
        running_kind=None,
        last_outcome=outcome,
    )


def _manual_waits(state: SyncState, now: datetime, device_count: int) -> list[Decision]:
    """Each rule that still keeps a manual sync from starting, as a refusal with its retry time."""
    waits = []
    if state.running_since is not None:
        until = state.running_since + SYNC_TIME_LIMIT
        waits.append(
            Decision.refuse(
                f"A sync is already running (started {_clock(state.running_since)}). Sync is available again "
                f"when it finishes, at the latest at {_clock(until)}.",
                retry_after=until,
            )
        )
    if state.last_manual_at is not None and now < state.last_manual_at + MANUAL_SYNC_MIN_INTERVAL:
        until = state.last_manual_at + MANUAL_SYNC_MIN_INTERVAL
        waits.append(
            Decision.refuse(
                f"A manual sync can run at most once every 15 minutes. The last one started at "
                f"{_clock(state.last_manual_at)}; try again at {_clock(until)}.",
                retry_after=until,
            )
        )
    duration = estimated_duration(device_count)
    if device_count > LARGE_TOKEN_DEVICES and state.last_started_at and now < state.last_started_at + duration:
        until = state.last_started_at + duration
        waits.append(
            Decision.refuse(
                f"This token holds {device_count:,} devices and Apple sends about {DEVICES_PER_MINUTE:,} a "
                f"minute, so a sync takes about {_minutes(duration)} minutes. Wait until the last sync has "
                f"delivered every device: try again at {_clock(until)}.",
                retry_after=until,
            )
        )
    return waits


def _clock(moment: datetime) -> str:
    """A moment as the admin reads it, rounded up to the minute so that retrying at that minute works."""
    moment = moment.astimezone(UTC)
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _minutes(duration: timedelta) -> int:
    return -(-int(duration.total_seconds()) // 60)
