"""ADE sync schedule and row reconciliation (muster.domain.ade_sync)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.domain.ade_sync import (
    DeviceChange,
    DeviceOp,
    RowChanges,
    SyncKind,
    SyncOutcome,
    SyncState,
    automatic_sync_due,
    estimated_duration,
    finished,
    is_running,
    is_timed_out,
    may_start_manual,
    next_due,
    next_kind,
    purge_due,
    reconcile_delta,
    reconcile_full,
    started,
)
from muster.domain.ade_tokens import is_expired

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
NEW_TOKEN = SyncState(token_expires_at=T0 + timedelta(days=365))
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def _ran(state: SyncState, kind: SyncKind, at: datetime, outcome: SyncOutcome, *, manual: bool = False) -> SyncState:
    """A sync of `kind` started at `at` that reported `outcome` five minutes later."""
    return finished(started(state, kind, at, manual=manual), outcome, at + 5 * MINUTE)


def _after_first_full() -> SyncState:
    return _ran(NEW_TOKEN, SyncKind.FULL, T0, SyncOutcome.SUCCEEDED)


def test_new_token_syncs_fully_at_once() -> None:
    """ADE-05: after the token upload the server syncs automatically (003_729e51c15a5a5608.txt:919, :4718)."""
    assert next_due(NEW_TOKEN, T0) == (SyncKind.FULL, T0)
    assert automatic_sync_due(NEW_TOKEN, T0) is SyncKind.FULL


def test_delta_sync_runs_every_12_hours() -> None:
    """ADE-13: a delta sync runs automatically every 12 hours (002_07f194c4e8cc4cb2.txt:24)."""
    state = _after_first_full()
    assert next_due(state, T0 + HOUR) == (SyncKind.DELTA, T0 + 12 * HOUR)
    assert automatic_sync_due(state, T0 + 12 * HOUR - MINUTE) is None
    assert automatic_sync_due(state, T0 + 12 * HOUR) is SyncKind.DELTA


def test_full_sync_runs_at_most_once_every_7_days() -> None:
    """ADE-12: a full sync runs no more than once every seven days (002_07f194c4e8cc4cb2.txt:20, 003:5056)."""
    state = _after_first_full()
    assert next_kind(state, T0 + 7 * DAY - MINUTE) is SyncKind.DELTA
    assert next_kind(state, T0 + 7 * DAY) is SyncKind.FULL


def test_failed_delta_makes_the_next_sync_full() -> None:
    """R-036: 'If a delta sync fails for any reason, the next sync will be a full sync' (003:5063)."""
    state = _ran(_after_first_full(), SyncKind.DELTA, T0 + DAY, SyncOutcome.FAILED)
    assert state.delta_failed
    assert next_kind(state, T0 + DAY + HOUR) is SyncKind.FULL
    recovered = _ran(state, SyncKind.FULL, T0 + 2 * DAY, SyncOutcome.SUCCEEDED)
    assert not recovered.delta_failed
    assert recovered.last_full_at == T0 + 2 * DAY
    assert next_kind(recovered, T0 + 3 * DAY) is SyncKind.DELTA


def test_failed_full_sync_is_fetched_again() -> None:
    """ADE-12 reading (docs/ade-rules.md): a full sync that failed fetched nothing, so the next run is full."""
    state = _ran(NEW_TOKEN, SyncKind.FULL, T0, SyncOutcome.FAILED)
    assert state.last_full_at is None
    assert next_due(state, T0 + HOUR) == (SyncKind.FULL, T0 + 12 * HOUR)


def test_every_sync_has_15_minutes_to_finish() -> None:
    """ADE-15: all sync requests are given 15 minutes to finish (002_07f194c4e8cc4cb2.txt:24)."""
    running = started(_after_first_full(), SyncKind.DELTA, T0 + DAY, manual=False)
    assert not is_timed_out(running, T0 + DAY + 15 * MINUTE - timedelta(seconds=1))
    assert is_running(running, T0 + DAY + 14 * MINUTE)
    assert is_timed_out(running, T0 + DAY + 15 * MINUTE)
    assert not is_running(running, T0 + DAY + 15 * MINUTE)


def test_timed_out_delta_counts_as_failed() -> None:
    """ADE-15 and R-036: a run over 15 minutes is over, and failed; the next sync is full (002:24, 003:5063)."""
    running = started(_after_first_full(), SyncKind.DELTA, T0 + DAY, manual=False)
    assert next_kind(running, T0 + DAY + 20 * MINUTE) is SyncKind.FULL


def test_success_reported_after_the_time_limit_is_ignored() -> None:
    """ADE-15: a run past 15 minutes has already ended as timed out (002_07f194c4e8cc4cb2.txt:24)."""
    running = started(_after_first_full(), SyncKind.DELTA, T0 + DAY, manual=False)
    late = finished(running, SyncOutcome.SUCCEEDED, T0 + DAY + 16 * MINUTE)
    assert late.last_outcome is SyncOutcome.TIMED_OUT
    assert late.running_since is None
    assert late.delta_failed


def test_manual_sync_at_most_once_every_15_minutes() -> None:
    """ADE-14: trigger a sync manually no more than once every 15 minutes (002_07f194c4e8cc4cb2.txt:24)."""
    state = _ran(_after_first_full(), SyncKind.DELTA, T0 + HOUR, SyncOutcome.SUCCEEDED, manual=True)
    refused = may_start_manual(state, T0 + HOUR + 10 * MINUTE)
    assert not refused.allowed
    assert refused.retry_after == T0 + HOUR + 15 * MINUTE
    assert refused.reason == (
        "A manual sync can run at most once every 15 minutes. The last one started at 2025-06-02 09:00 UTC; "
        "try again at 2025-06-02 09:15 UTC."
    )
    assert may_start_manual(state, T0 + HOUR + 15 * MINUTE).allowed


def test_manual_sync_refused_while_a_sync_runs() -> None:
    """ADE-16: the Sync button is inactive until the sync completes (002_07f194c4e8cc4cb2.txt:24)."""
    running = started(_after_first_full(), SyncKind.DELTA, T0 + 12 * HOUR, manual=False)
    refused = may_start_manual(running, T0 + 12 * HOUR + 2 * MINUTE)
    assert not refused.allowed
    assert refused.retry_after == T0 + 12 * HOUR + 15 * MINUTE
    assert refused.reason.startswith("A sync is already running (started 2025-06-02 20:00 UTC).")
    assert may_start_manual(finished(running, SyncOutcome.SUCCEEDED, T0 + 12 * HOUR + 3 * MINUTE), T0 + 13 * HOUR)


def test_manual_refusal_gives_the_latest_retry_time() -> None:
    """ADE-14 and ADE-16 together (002_07f194c4e8cc4cb2.txt:24): retrying at the time given must work."""
    state = _ran(_after_first_full(), SyncKind.DELTA, T0 + HOUR, SyncOutcome.SUCCEEDED, manual=True)
    running = started(state, SyncKind.DELTA, T0 + HOUR + 5 * MINUTE, manual=False)
    refused = may_start_manual(running, T0 + HOUR + 6 * MINUTE)
    assert refused.retry_after == T0 + HOUR + 20 * MINUTE
    assert refused.reason.startswith("A sync is already running")


def test_retry_time_in_messages_is_rounded_up_to_the_minute() -> None:
    """ADE-14 (002_07f194c4e8cc4cb2.txt:24): the time shown must be one at which the retry succeeds."""
    state = _ran(_after_first_full(), SyncKind.DELTA, T0 + timedelta(seconds=30), SyncOutcome.SUCCEEDED, manual=True)
    assert "try again at 2025-06-02 08:16 UTC." in may_start_manual(state, T0 + MINUTE).reason


def test_manual_sync_is_a_delta_unless_a_full_one_is_due() -> None:
    """R-034/R-035: the Sync button triggers a delta sync (003_729e51c15a5a5608.txt:5063)."""
    state = _after_first_full()
    assert next_kind(state, T0 + HOUR) is SyncKind.DELTA
    assert next_kind(NEW_TOKEN, T0) is SyncKind.FULL


def test_manual_sync_resets_the_12_hour_timer() -> None:
    """ADE-13 reading (docs/ade-rules.md): a manual sync already fetched the changes (002_07f194c4e8cc4cb2.txt:24)."""
    state = _ran(_after_first_full(), SyncKind.DELTA, T0 + 5 * HOUR, SyncOutcome.SUCCEEDED, manual=True)
    assert next_due(state, T0 + 6 * HOUR) == (SyncKind.DELTA, T0 + 17 * HOUR)


def test_expired_token_never_syncs() -> None:
    """ADE-08: an expired token can no longer be used (000_a9a189d82eb2e905.txt:68)."""
    state = replace(_after_first_full(), token_expires_at=T0 + 2 * DAY)
    assert next_due(state, T0 + 3 * DAY) is None
    assert automatic_sync_due(state, T0 + 3 * DAY) is None
    refused = may_start_manual(state, T0 + 3 * DAY)
    assert not refused.allowed
    assert refused.retry_after is None
    assert "expired on 2025-06-04" in refused.reason


def test_no_sync_is_planned_past_the_token_expiry() -> None:
    """ADE-08 (000_a9a189d82eb2e905.txt:68): the next delta would fall after the token expired."""
    state = replace(_after_first_full(), token_expires_at=T0 + 6 * HOUR)
    assert next_due(state, T0 + HOUR) is None


def test_sync_duration_is_estimated_at_3000_devices_a_minute() -> None:
    """ADE-17: total devices ÷ 3,000 devices per minute = estimated wait (002_07f194c4e8cc4cb2.txt:25)."""
    assert estimated_duration(3_000) == MINUTE
    assert estimated_duration(200_000) == timedelta(minutes=66, seconds=40)


def test_large_token_waits_for_the_last_sync_to_deliver_every_device() -> None:
    """ADE-17: above 200,000 devices, wait for all devices before another manual sync (002:25)."""
    state = _after_first_full()
    assert may_start_manual(state, T0 + 20 * MINUTE, device_count=200_000).allowed
    refused = may_start_manual(state, T0 + 20 * MINUTE, device_count=240_000)
    assert refused.retry_after == T0 + 80 * MINUTE
    assert "240,000 devices" in refused.reason
    assert "about 80 minutes" in refused.reason
    assert may_start_manual(state, T0 + 80 * MINUTE, device_count=240_000).allowed


def test_released_devices_are_purged_after_30_days() -> None:
    """ADE-20: released devices are deleted automatically within 30-45 days (002_07f194c4e8cc4cb2.txt:23)."""
    released_at = T0
    assert not purge_due(released_at, T0 + 30 * DAY - MINUTE)
    assert purge_due(released_at, T0 + 30 * DAY)


def test_full_sync_brings_back_a_device_deleted_locally() -> None:
    """ADE-19: a device deleted here but still assigned in ABM reappears on the next full sync (002:22)."""
    changes = reconcile_full(["A1", "B2", "C3"], known=["A1", "C3"], released=[])
    assert changes == RowChanges(create=frozenset({"B2"}), refresh=frozenset({"A1", "C3"}), release=frozenset())


def test_full_sync_releases_devices_apple_no_longer_lists() -> None:
    """ADE-20: devices released from ABM show as 'removed from Apple Business' (002_07f194c4e8cc4cb2.txt:23)."""
    changes = reconcile_full(["A1", "D4"], known=["A1", "B2", "C3", "D4"], released=["C3", "D4"])
    assert changes.release == {"B2"}
    assert changes.refresh == {"A1", "D4"}  # D4 is assigned again: its released mark goes
    assert changes.create == frozenset()


def test_delta_sync_does_not_bring_back_a_device_deleted_locally() -> None:
    """R-037: a deleted device 'won't be re-imported … until the full sync is run' (003:6821)."""
    changes = reconcile_delta([DeviceChange("B2", DeviceOp.MODIFIED, T0)], known=["A1"], released=[])
    assert changes == RowChanges(create=frozenset(), refresh=frozenset(), release=frozenset())


def test_delta_sync_imports_new_devices_and_releases_removed_ones() -> None:
    """ADE-11: a sync imports new devices and refreshes existing status (002_07f194c4e8cc4cb2.txt:12, 003:5063)."""
    changes = reconcile_delta(
        [
            DeviceChange("N1", DeviceOp.ADDED, T0),
            DeviceChange("A1", DeviceOp.MODIFIED, T0),
            DeviceChange("B2", DeviceOp.DELETED, T0),
            DeviceChange("C3", DeviceOp.DELETED, T0),
        ],
        known=["A1", "B2", "C3"],
        released=["C3"],
    )
    assert changes == RowChanges(create=frozenset({"N1"}), refresh=frozenset({"A1"}), release=frozenset({"B2"}))


def test_delta_sync_applies_the_latest_change_per_serial() -> None:
    """ADE-11 (002:12); Apple may repeat a device in a sync, the newest op_date wins (apple-protocols.md §7.3)."""
    changes = reconcile_delta(
        [DeviceChange("A1", DeviceOp.DELETED, T0 + HOUR), DeviceChange("A1", DeviceOp.MODIFIED, T0)],
        known=["A1"],
        released=[],
    )
    assert changes.release == {"A1"}
    assert changes.refresh == frozenset()


def test_a_second_run_cannot_start_while_one_is_running() -> None:
    """ADE-16: one sync at a time per token (002_07f194c4e8cc4cb2.txt:24)."""
    running = started(NEW_TOKEN, SyncKind.FULL, T0, manual=False)
    with pytest.raises(ValueError, match="already running"):
        started(running, SyncKind.DELTA, T0 + MINUTE, manual=True)
    assert started(running, SyncKind.FULL, T0 + 15 * MINUTE, manual=False).running_since == T0 + 15 * MINUTE


# --- Properties over random event sequences -------------------------------------------------------------------


_LIMIT = timedelta(minutes=15)


@dataclass
class _Run:
    """An independent record of one run, to check the schedule against (its own 15-minute limit: ADE-15)."""

    start: datetime
    kind: SyncKind
    manual: bool
    reported: tuple[datetime, SyncOutcome] | None = None

    def closed_at(self) -> datetime:
        if self.reported and self.reported[0] - self.start < _LIMIT:
            return self.reported[0]
        return self.start + _LIMIT

    def outcome(self) -> SyncOutcome:
        if self.reported and self.reported[0] - self.start < _LIMIT:
            return self.reported[1]
        return SyncOutcome.TIMED_OUT


def _full_is_required(runs: list[_Run], now: datetime) -> bool:
    ok = SyncOutcome.SUCCEEDED
    succeeded = [i for i, run in enumerate(runs) if run.kind is SyncKind.FULL and run.outcome() is ok]
    if not succeeded:
        return True
    last_full = succeeded[-1]
    delta_failed_since = any(run.kind is SyncKind.DELTA and run.outcome() is not ok for run in runs[last_full + 1 :])
    return delta_failed_since or now - runs[last_full].start >= timedelta(days=7)


def _check_start(runs: list[_Run], state: SyncState, kind: SyncKind, now: datetime, *, manual: bool) -> None:
    assert not is_expired(state.token_expires_at, now), "never a sync on an expired token"
    assert all(run.closed_at() <= now for run in runs), "never two runs at once"
    if manual:
        assert all(now - run.start >= timedelta(minutes=15) for run in runs if run.manual), "manual ≥ 15 min apart"
    assert (kind is SyncKind.FULL) == _full_is_required(runs, now), "full only when required (7 days, failed delta)"


# Waits in minutes: the schedule's own boundaries are where mistakes hide, so they are drawn often.
_WAITS = st.one_of(
    st.sampled_from([1, 5, 14, 15, 16, 6 * 60, 12 * 60, 24 * 60, 6 * 24 * 60, 7 * 24 * 60]),
    st.integers(0, 8 * 24 * 60),
)
_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), _WAITS),
        st.tuples(st.sampled_from(["tick", "tick", "press", "succeed", "fail"]), st.just(0)),
        # Renewals, now and then one that lets the token lapse within days.
        st.tuples(st.just("renew"), st.sampled_from([-1, 2, 30, 365])),
    ),
    min_size=10,
    max_size=80,
)


@settings(deadline=None, max_examples=400)
@given(events=_EVENTS)
def test_schedule_keeps_apples_traffic_rules(events: list[tuple[str, int]]) -> None:
    """ADE-12..16 and R-036 over random histories (002_07f194c4e8cc4cb2.txt:20-24, 003_729e51c15a5a5608.txt:5063):
    never two manual syncs within 15 minutes, never two runs at once, a full sync only when none succeeded yet,
    7 days after the last one or after a failed delta, never a sync on an expired token, a sync at least every
    12 hours while the token is valid, and a refusal's retry time at which the retry succeeds."""
    now, state = T0, NEW_TOKEN
    runs: list[_Run] = []
    for event, amount in events:
        if event == "wait":
            now += timedelta(minutes=amount)
        elif event == "renew":
            state = replace(state, token_expires_at=now + timedelta(days=amount))
        elif event in ("succeed", "fail") and state.running_since is not None:
            outcome = SyncOutcome.SUCCEEDED if event == "succeed" else SyncOutcome.FAILED
            state = finished(state, outcome, now)
            if runs[-1].reported is None:
                runs[-1].reported = (now, outcome)
        elif event == "tick":
            kind = automatic_sync_due(state, now)
            idle = all(run.closed_at() <= now for run in runs)
            overdue = not runs or now - runs[-1].start >= timedelta(hours=12)
            valid = not is_expired(state.token_expires_at, now)
            assert (kind is not None) == (idle and overdue and valid), "automatic sync exactly when due"
            if kind is not None:
                _check_start(runs, state, kind, now, manual=False)
                state = started(state, kind, now, manual=False)
                runs.append(_Run(now, kind, manual=False))
        elif event == "press":
            decision = may_start_manual(state, now)
            if decision.allowed:
                kind = next_kind(state, now)
                _check_start(runs, state, kind, now, manual=True)
                state = started(state, kind, now, manual=True)
                runs.append(_Run(now, kind, manual=True))
            elif decision.retry_after is not None:
                assert decision.retry_after > now
                later = may_start_manual(state, decision.retry_after)
                assert later.allowed or is_expired(state.token_expires_at, decision.retry_after)
            else:
                assert is_expired(state.token_expires_at, now)
