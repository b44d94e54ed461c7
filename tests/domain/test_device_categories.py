"""Device category rules (seed-catalog-A §2.7, E18): names and what a rename does to dynamic group rules.

Seed lines are cited as 003:<line> for 003_729e51c15a5a5608.txt.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.device_categories import MAX_NAME_LENGTH, checked_name, name_key, rename_changes_rule
from muster.domain.errors import InvalidInput
from muster.domain.membership_rules import evaluate, parse_rule

names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=20).filter(
    lambda n: n.strip() and '"' not in n and "\\" not in n
)


def test_a_name_is_required_cat_02_003_1544() -> None:
    """CAT-02 (003:1544): the name is required (e.g. HR); blank or overlong names are refused."""
    assert checked_name("  HR ") == "HR"
    for bad in ("", "   ", "x" * (MAX_NAME_LENGTH + 1)):
        with pytest.raises(InvalidInput):
            checked_name(bad)


def test_names_are_unique_ignoring_case_like_rules_compare_them_cat_03_003_1556() -> None:
    """Rules compare `device.deviceCategory` ignoring case (003:1556), so "HR" and "hr" are the same category."""
    assert name_key("HR") == name_key("hr") != name_key("Sales")


@pytest.mark.parametrize(
    ("rule", "changed"),
    [
        ('device.deviceCategory -eq "HR"', True),
        ('device.devicecategory -eq "hr"', True),
        ('device.deviceCategory -ne "HR"', True),
        ('device.deviceCategory -in ["Sales", "HR"]', True),
        ('not (device.deviceCategory -startsWith "H")', True),
        ('device.deviceCategory -eq "Sales"', False),
        ('device.deviceCategory -startsWith "P" or device.model -eq "HR"', True),  # "People" starts with P
        ('device.model -eq "HR"', False),
    ],
)
def test_rename_from_hr_to_people_flags_the_rules_it_changes_cat_06_003_1568(rule: str, changed: bool) -> None:
    """CAT-06 (003:1568): the groups whose rules test the old name must be reviewed."""
    assert rename_changes_rule(parse_rule(rule), "HR", "People") is changed


@given(names, names)
def test_a_flagged_rule_is_one_whose_verdict_on_the_category_changes(old: str, new: str) -> None:
    """For a rule reading only the category, the rename is flagged exactly when the verdict differs."""
    rule = parse_rule(f'device.deviceCategory -eq "{old.strip()}"')
    verdicts = {evaluate(rule, {"device.deviceCategory": name}) for name in (old.strip(), new)}
    assert rename_changes_rule(rule, old.strip(), new) is (len(verdicts) == 2)
