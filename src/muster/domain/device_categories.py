"""Device categories (seed-catalog-A §2.7 CAT-01..11, E18): names, and which dynamic groups a rename touches.

A category's display name is what `device.deviceCategory` reads in dynamic group rules (CAT-03), so a rename
can move devices in or out of groups whose rules name the old one (CAT-06): the admin is told which.
"""

from __future__ import annotations

from muster.domain.errors import InvalidInput
from muster.domain.membership_rules import Comparison, Not, Rule, evaluate

CATEGORY_PROPERTY = "device.devicecategory"
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 1024


def checked_name(name: str) -> str:
    """A category name as stored: trimmed, non-empty, bounded (CAT-02: the name is required)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"displayName is required, at most {MAX_NAME_LENGTH} characters")
    return name


def name_key(name: str) -> str:
    """Names are unique per organisation ignoring case, since rules compare them ignoring case."""
    return name.casefold()


def rename_changes_rule(rule: Rule, old_name: str, new_name: str) -> bool:
    """Whether some `device.deviceCategory` test in `rule` answers differently for the old and the new name, so
    the group's membership would change for the category's devices (CAT-06)."""
    pending = [rule]
    while pending:
        node = pending.pop()
        if isinstance(node, Comparison):
            if node.property.lower() == CATEGORY_PROPERTY and evaluate(node, {CATEGORY_PROPERTY: old_name}) != evaluate(
                node, {CATEGORY_PROPERTY: new_name}
            ):
                return True
        elif isinstance(node, Not):
            pending.append(node.operand)
        else:
            pending += [node.left, node.right]
    return False
