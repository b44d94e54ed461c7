"""ADE profile settings in Graph's JSON shape <-> `muster.domain.ade_profiles.AdeProfileSettings`."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, get_type_hints

from muster.domain.ade_profiles import AdeProfileSettings, Platform, graph_name
from muster.domain.errors import InvalidInput

_FIELDS = {graph_name(f.name): f for f in dataclasses.fields(AdeProfileSettings)}
_TYPES = get_type_hints(AdeProfileSettings)
# Graph's @odata.type tells the platform of a profile.
ODATA_TYPES = {
    Platform.IOS: "#microsoft.graph.depIOSEnrollmentProfile",
    Platform.MACOS: "#microsoft.graph.depMacOSEnrollmentProfile",
}


def settings_from_graph(data: Mapping[str, Any], *, platform: Platform) -> AdeProfileSettings:
    """Read a Graph profile body; unknown properties and values of the wrong type are refused by name."""
    values: dict[str, Any] = {"platform": platform}
    for key, value in data.items():
        if key.startswith("@odata") or key in ("id", "platform"):
            continue
        field = _FIELDS.get(key)
        if field is None:
            raise InvalidInput(f"unknown enrollment profile property {key!r}")
        values[field.name] = _convert(key, _TYPES[field.name], value)
    if "display_name" not in values:
        raise InvalidInput("displayName is required")
    return AdeProfileSettings(**values)


def settings_to_graph(settings: AdeProfileSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in _FIELDS.items():
        value = getattr(settings, field.name)
        if isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = [base64.b64encode(item).decode() for item in value]
        elif isinstance(value, enum.Enum):
            value = value.value
        out[name] = value
    return out


def _convert(key: str, kind: Any, value: Any) -> Any:
    origin = getattr(kind, "__origin__", None)
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return kind(value)
        if kind is str or (origin is None and str(kind) == "str | None"):
            return _text(value, nullable=kind is not str)
        if "int" in str(kind):
            if value is None and "None" in str(kind):
                return None
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError
            return value
        if "frozenset" in str(kind):
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise TypeError
            return frozenset(value)
        if "tuple" in str(kind):
            if not isinstance(value, list):
                raise TypeError
            return tuple(base64.b64decode(item, validate=True) for item in value)
        return _text(value, nullable=True)
    except (TypeError, ValueError, binascii.Error):
        raise InvalidInput(f"{key}: value of the wrong type or out of range") from None


def _text(value: Any, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise TypeError
    return value
