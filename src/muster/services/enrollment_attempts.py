"""Enrollment attempts (seed-catalog-A E27) and the Incomplete user enrollments report (§2.9 IER-01..07).

The enrollment portal tells this service what each signed-in user reaches: the sign-in (a new attempt), the
screens shown, a decline of the terms, the profile download (linked to its enrollment request). Whether the
device then enrolled is read from the device side when the report is built, so the MDM path is unchanged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.enrollment_attempts import (
    Attempt,
    Platform,
    Report,
    Screen,
    Section,
    abandonment,
    build_report,
    report_window,
)
from muster.domain.errors import InvalidInput


class AttemptStore(Protocol):
    async def add(self, org_id: str, portal_session: str, attempt: Attempt) -> None: ...

    async def latest_for_session(self, org_id: str, portal_session: str) -> Attempt | None:
        """The session's newest attempt, with whether its device enrolled."""

    async def reach(self, attempt_id: str, screen: Screen, now: datetime, enrollment_request_id: str | None) -> None:
        """Move the attempt to `screen` as of `now` (and link its enrollment request when given)."""

    async def decline(self, attempt_id: str, now: datetime) -> None: ...

    async def started_between(self, org_id: str, start: datetime, end: datetime) -> list[Attempt]:
        """Attempts started in [start, end), with whether their device enrolled."""


class EnrollmentAttempts:
    def __init__(self, *, store: AttemptStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def start(self, org_id: str, portal_session: str, user_principal_name: str, platform: Platform) -> Attempt:
        """A user signed in to the portal to enroll: a new attempt (IER-02: each restart is one)."""
        now = self._clock.now()
        attempt = Attempt(
            id=str(uuid.uuid4()),
            user_principal_name=user_principal_name,
            platform=platform,
            started_at=now,
            screen=Screen.SET_UP_ACCESS,
            screen_at=now,
            declined_at=None,
            enrolled=False,
        )
        await self._store.add(org_id, portal_session, attempt)
        return attempt

    async def reached(
        self, org_id: str, portal_session: str, screen: Screen, *, enrollment_request_id: str | None = None
    ) -> None:
        """The user reached `screen`. Showing the same screen again is no progress (a reload must not reset the
        30-minute limit); a finished attempt is followed by a new one (IER-02, 003:1133)."""
        now = self._clock.now()
        attempt = await self._current(org_id, portal_session, now)
        if attempt is not None and (attempt.screen != screen or enrollment_request_id is not None):
            await self._store.reach(attempt.id, screen, now, enrollment_request_id)

    async def declined(self, org_id: str, portal_session: str) -> None:
        """The user declined the terms: the attempt ends incomplete in Terms of use (IER-07, TC-10)."""
        now = self._clock.now()
        attempt = await self._current(org_id, portal_session, now)
        if attempt is not None:
            await self._store.decline(attempt.id, now)

    async def _current(self, org_id: str, portal_session: str, now: datetime) -> Attempt | None:
        """The session's attempt still under way, or a new one after an incomplete one (IER-02). None when
        there is nothing to record: the session started no attempt (Setup Assistant's sessions are not Company
        Portal enrollments) or its device already enrolled (pages seen afterwards are no new attempt)."""
        attempt = await self._store.latest_for_session(org_id, portal_session)
        if attempt is None or attempt.enrolled:
            return None
        if abandonment(attempt, now) is None:
            return attempt
        return await self.start(org_id, portal_session, attempt.user_principal_name, attempt.platform)

    async def incomplete_report(
        self,
        org_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        platform: Platform | None,
        section: Section | None,
    ) -> Report:
        """IER-04..06 over the period asked for (default the past two weeks, at most 30 days back)."""
        now = self._clock.now()
        try:
            window = report_window(start, end, now)
        except ValueError as error:
            raise InvalidInput(f"{str(error).capitalize()}.") from error
        attempts = await self._store.started_between(org_id, window.start, window.end)
        if platform is not None:
            attempts = [attempt for attempt in attempts if attempt.platform == platform]
        return build_report(attempts, window, now, sections=(section,) if section else tuple(Section))
