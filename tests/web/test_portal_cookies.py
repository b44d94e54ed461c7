"""The portal's signed cookies: what is sealed comes back, anything altered, foreign or garbled does not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from muster.web.portal import seal, unseal

KEY = bytes(range(32))
payloads = st.dictionaries(st.text(max_size=10), st.text(max_size=30) | st.integers(), max_size=5).filter(
    lambda p: "exp" not in p
)


@given(payloads)
def test_sealed_payloads_come_back(payload: dict[str, object]) -> None:
    opened = unseal(KEY, "session", seal(KEY, "session", payload, 60))
    assert opened is not None and isinstance(opened.pop("exp"), int)
    assert opened == payload


@given(payloads, st.integers(min_value=0), st.characters(codec="ascii"))
def test_any_change_is_refused(payload: dict[str, object], position: int, replacement: str) -> None:
    sealed = seal(KEY, "session", payload, 60)
    index = position % len(sealed)
    altered = sealed[:index] + replacement + sealed[index + 1 :]
    if altered != sealed:
        assert unseal(KEY, "session", altered) is None


@given(payloads)
def test_other_purposes_keys_and_expired_cookies_are_refused(payload: dict[str, object]) -> None:
    sealed = seal(KEY, "session", payload, 60)
    assert unseal(KEY, "login", sealed) is None
    assert unseal(bytes(32), "session", sealed) is None
    assert unseal(KEY, "session", seal(KEY, "session", payload, -1)) is None


@given(st.text(max_size=5000))
def test_garbage_is_refused_without_error(value: str) -> None:
    assert unseal(KEY, "session", value) is None
