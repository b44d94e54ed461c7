"""Device name templates of ADE enrollment profiles ("Apply device name template").

Seeds: `{{SERIAL}}` and `{{DEVICETYPE}}` stand for the device's serial number and device type, so
`{{DEVICETYPE}}-{{SERIAL}}` names an iPad with serial ABC123 `iPad-ABC123` (003_729e51c15a5a5608.txt:966); the
template may not exceed 63 characters, variables included (003_729e51c15a5a5608.txt:4975).
"""

from __future__ import annotations

import re

MAX_TEMPLATE_LENGTH = 63
MAX_DEVICE_NAME_LENGTH = 63

SERIAL = "{{SERIAL}}"
DEVICE_TYPE = "{{DEVICETYPE}}"
VARIABLES = (SERIAL, DEVICE_TYPE)

_VARIABLE = re.compile(r"\{\{[^{}]*\}\}")


def template_problems(template: str) -> list[str]:
    """Why `template` cannot be used, one message per problem (an empty list means it is valid)."""
    problems = []
    if not template.strip():
        problems.append("Enter a device name template, or turn off 'Apply device name template'.")
    if len(template) > MAX_TEMPLATE_LENGTH:
        problems.append(
            f"The device name template has {len(template)} characters; it may have at most "
            f"{MAX_TEMPLATE_LENGTH}, variables included."
        )
    unknown = sorted({token for token in _VARIABLE.findall(template) if token not in VARIABLES})
    if unknown:
        problems.append(
            f"Unknown variable {', '.join(unknown)} in the device name template; use {SERIAL} or {DEVICE_TYPE}."
        )
    return problems


def render_device_name(template: str, *, serial: str, device_type: str) -> str:
    """The name a device gets from `template` (`device_type` as Apple names the family, e.g. "iPad").

    The 63-character limit counts the variables' own text, so a serial longer than `{{SERIAL}}` can push the
    result past it; the result is cut to 63 characters so the name never exceeds the limit the admin was shown.
    Unknown variables are left as written (validation reports them before a profile is saved).
    """
    values = {SERIAL: serial, DEVICE_TYPE: device_type}
    name = _VARIABLE.sub(lambda match: values.get(match.group(0), match.group(0)), template)
    return name[:MAX_DEVICE_NAME_LENGTH]
