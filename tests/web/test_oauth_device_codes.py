"""Device code lifecycle rules on a real store with a controlled clock: expiry, polling interval, user codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.clock import FixedClock
from muster.domain.errors import NotAllowed
from muster.domain.sign_in import OAuthError, SignedInUser
from muster.services.device_codes import (
    USER_CODE_ALPHABET,
    DeviceCodes,
    display_user_code,
    normalize_user_code,
)
from muster.store.engine import create_engine
from muster.store.migrate import upgrade
from muster.store.oauth import SqlDeviceCodeStore
from muster.store.tables import DEFAULT_ORG_ID, organizations
from tests.harness import table_rows

USER = SignedInUser("u1", "ada@example.com", "Ada", ("pwd",))


async def _error(call: object) -> str:
    with pytest.raises(OAuthError) as raised:
        await call  # type: ignore[misc]
    return raised.value.error


async def test_expiry_interval_and_single_use(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(organizations.insert().values(id=DEFAULT_ORG_ID, name="t", created_at=datetime.now(UTC)))
        clock = FixedClock(datetime(2026, 11, 23, 12, tzinfo=UTC))
        codes = DeviceCodes(store=SqlDeviceCodeStore(engine), clock=clock, org_id=DEFAULT_ORG_ID)
        grant = await codes.start("muster-cli")
        stored = await table_rows(engine)
        assert grant.device_code not in repr(stored["device_codes"])  # only its hash is kept
        assert (
            await _error(codes.poll(device_code=grant.device_code, client_id="muster-cli")) == "authorization_pending"
        )
        clock.advance(timedelta(seconds=2))
        assert await _error(codes.poll(device_code=grant.device_code, client_id="muster-cli")) == "slow_down"
        clock.advance(timedelta(seconds=9))  # the interval is now 10 s
        assert await _error(codes.poll(device_code=grant.device_code, client_id="muster-cli")) == "slow_down"
        clock.advance(timedelta(seconds=15))  # and now 15 s
        assert (
            await _error(codes.poll(device_code=grant.device_code, client_id="muster-cli")) == "authorization_pending"
        )
        assert await _error(codes.poll(device_code=grant.device_code, client_id="another")) == "invalid_grant"

        await codes.approve(display_user_code(grant.user_code).lower(), USER)
        with pytest.raises(NotAllowed):
            await codes.approve(grant.user_code, USER)
        login = await codes.poll(device_code=grant.device_code, client_id="muster-cli")
        assert (login.subject.subject_id, login.subject.kind, login.amr) == ("u1", "user", ("pwd",))
        assert await _error(codes.poll(device_code=grant.device_code, client_id="muster-cli")) == "invalid_grant"

        late = await codes.start("muster-cli")
        clock.advance(timedelta(seconds=901))
        assert await _error(codes.poll(device_code=late.device_code, client_id="muster-cli")) == "expired_token"
        with pytest.raises(NotAllowed, match="expired"):
            await codes.approve(late.user_code, USER)
        assert await _error(codes.start("someone")) == "invalid_client"
    finally:
        await engine.dispose()


@given(st.text(alphabet=USER_CODE_ALPHABET, min_size=8, max_size=8))
def test_user_codes_read_back_however_they_are_typed(code: str) -> None:
    shown = display_user_code(code)
    for typed in (shown, shown.lower(), code, f" {shown[:4]} {shown[5:]} "):
        assert normalize_user_code(typed) == code


@given(st.text(max_size=40))
def test_anything_else_is_not_a_user_code(text: str) -> None:
    code = normalize_user_code(text)
    assert code is None or (len(code) == 8 and set(code) <= set(USER_CODE_ALPHABET))
