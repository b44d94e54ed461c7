"""Clip device-reported descriptive strings (names, models, versions) to what their column holds.

Identifiers never pass through here: codecs refuse over-long ones. A device name longer than the column is
still a device name, so it is shortened rather than refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table


def fit(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    clipped: dict[str, Any] = {}
    for name, value in values.items():
        length = getattr(table.c[name].type, "length", None)
        clipped[name] = value[:length] if isinstance(value, str) and length else value
    return clipped
