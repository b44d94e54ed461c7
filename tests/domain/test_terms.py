"""Terms and conditions rules (seed-catalog-A §2.8, E19): versions, acceptance, the acceptance report.

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.errors import InvalidInput, NotAllowed
from muster.domain.terms import (
    FIRST_VERSION,
    REPORT_COLUMNS,
    Acceptance,
    accepted_latest,
    check_acceptable,
    next_version,
    report_csv,
)

versions = st.integers(min_value=1, max_value=10_000)
WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def test_new_policies_start_at_version_1_tc_04_003_1247() -> None:
    assert FIRST_VERSION == 1


@given(versions)
def test_an_edit_without_reaccept_keeps_the_version_tc_05_003_1251(current: int) -> None:
    """TC-05 (003:1249-1251, 1313): a typo fix keeps the version, so earlier acceptances stay valid."""
    assert next_version(current, None) == current
    assert next_version(current, current) == current


@given(versions)
def test_require_reaccept_increments_by_exactly_one_tc_05_003_1249(current: int) -> None:
    """TC-05 (003:1249, 1296-1315): "increment the version number to <next>"; versions never skip nor go back."""
    assert next_version(current, current + 1) == current + 1


@given(versions, st.integers(min_value=-5, max_value=10_010))
def test_any_other_version_is_refused_tc_05_003_1313(current: int, requested: int) -> None:
    if requested in (current, current + 1):
        return
    with pytest.raises(InvalidInput, match=f"set it to {current + 1}"):
        next_version(current, requested)


@given(versions, versions)
def test_only_the_current_version_can_be_accepted_tc_05_003_1251(current: int, shown: int) -> None:
    """A user accepts the text in force; accepting an older version is refused (they must read the new one)."""
    if shown == current:
        check_acceptable(current, shown)
    else:
        with pytest.raises(NotAllowed):
            check_acceptable(current, shown)


@given(versions, versions)
def test_accepted_latest_compares_with_the_current_version_tc_07_003_1279(accepted: int, current: int) -> None:
    """TC-07 (003:1269-1279): "Accepted latest" is yes exactly when the accepted version is the current one."""
    acceptance = Acceptance("u1", "Ada", "ada@example.com", accepted, WHEN)
    assert accepted_latest(acceptance, current) is (accepted == current)


def test_the_export_has_the_report_columns_tc_07_003_1271() -> None:
    """TC-07 (003:1271-1286): User name, Accepted version, Accepted time, Accepted latest, UPN; exportable."""
    rows = [
        Acceptance("u1", "Ada Lovelace", "ada@example.com", 1, WHEN),
        Acceptance("u1", "Ada Lovelace", "ada@example.com", 2, WHEN.replace(hour=10)),
        Acceptance("u2", None, "bob@example.com", 1, WHEN),
    ]
    parsed = list(csv.reader(io.StringIO(report_csv(rows, current_version=2))))
    assert tuple(parsed[0]) == REPORT_COLUMNS
    assert parsed[1:] == [
        ["Ada Lovelace", "1", "2026-11-23T09:30:00Z", "No", "ada@example.com"],
        ["Ada Lovelace", "2", "2026-11-23T10:30:00Z", "Yes", "ada@example.com"],
        ["", "1", "2026-11-23T09:30:00Z", "No", "bob@example.com"],
    ]


@given(st.text(max_size=40))
def test_the_export_never_hands_a_spreadsheet_a_formula(name: str) -> None:
    """User names come from the directory; a cell starting with = + - @ would run as a formula when opened."""
    line = list(csv.reader(io.StringIO(report_csv([Acceptance("u", name, "u@x", 1, WHEN)], 1))))[1]
    assert not line[0].startswith(("=", "+", "-", "@"))
    assert line[0] in (name, "'" + name)
