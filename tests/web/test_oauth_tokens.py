"""Access token rules with a controlled clock: a token is valid from issue to expiry (with a small leeway),
survives a restart (the key is shared through the store), and nothing but a token we issued ever verifies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from muster.domain.clock import FixedClock
from muster.domain.rbac import TokenSubject
from muster.pki.secretbox import SecretBox
from muster.services.access_tokens import LEEWAY_SECONDS, AccessTokens

START = datetime(2026, 11, 23, 12, tzinfo=UTC)
SUBJECT = TokenSubject(org_id="org", kind="user", subject_id="u1", display_name="Ada")
SECRETS = SecretBox(SecretBox.generate_key())


class MemoryKeys:
    """The signing-key port, in memory (the SQL store is exercised by the end-to-end tests)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, bytes]] = []

    async def all(self, org_id: str) -> list[tuple[str, bytes]]:
        return list(self.rows)

    async def add(self, *, org_id: str, kid: str, key_encrypted: bytes, now: datetime) -> None:
        self.rows.append((kid, key_encrypted))


class Subjects:
    """The token-subject port: which users are still enabled."""

    def __init__(self) -> None:
        self.enabled = {"u1"}

    async def active(self, *, org_id: str, kind: str, subject_id: str) -> bool:
        return subject_id in self.enabled


def tokens(keys: MemoryKeys, clock: FixedClock, subjects: Subjects | None = None) -> AccessTokens:
    service = AccessTokens(
        keys=keys,
        subjects=subjects or Subjects(),
        secrets=SECRETS,
        clock=clock,
        org_id="org",
        issuer="https://mdm.example.com",
        lifetime_seconds=3600,
    )
    asyncio.run(service.load())
    return service


@settings(max_examples=60, deadline=None)
@given(elapsed=st.integers(min_value=-3 * 3600, max_value=3 * 3600))
def test_valid_exactly_within_lifetime_and_leeway(elapsed: int) -> None:
    keys, clock = MemoryKeys(), FixedClock(START)
    issuer = tokens(keys, clock)
    token = issuer.issue(SUBJECT, authorized_party="muster-cli", amr=("pwd",)).access_token
    clock.advance(timedelta(seconds=elapsed))
    restarted = tokens(keys, clock)  # another process, or after a restart: same key from the store
    assert len(keys.rows) == 1
    verified = asyncio.run(restarted.verify(token))
    assert (verified == SUBJECT) == (-LEEWAY_SECONDS <= elapsed < 3600 + LEEWAY_SECONDS)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_\-]{0,80}\.[A-Za-z0-9_\-]{0,80}\.[A-Za-z0-9_\-]{0,80}"))
def test_nothing_else_verifies(text: str) -> None:
    service = tokens(MemoryKeys(), FixedClock(START))
    assert asyncio.run(service.verify(text)) is None


def test_disabled_subject_and_foreign_issuer() -> None:
    keys, clock, subjects = MemoryKeys(), FixedClock(START), Subjects()
    service = tokens(keys, clock, subjects)
    token = service.issue(SUBJECT, authorized_party="muster-cli").access_token
    assert asyncio.run(service.verify(token)) == SUBJECT
    subjects.enabled.clear()
    assert asyncio.run(service.verify(token)) is None
    other = tokens(MemoryKeys(), clock)  # another installation, with its own key
    assert asyncio.run(other.verify(token)) is None
    assert service.jwks()["keys"][0]["kid"] == keys.rows[0][0]
