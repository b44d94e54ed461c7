"""Terms and conditions (Intune's T&C policies, seed-catalog-A §2.8 TC-01..11, E19): versions, acceptance and the
acceptance report.

A policy starts at version 1 (TC-04). Editing it keeps the version, so earlier acceptances stay valid (typo
fixes), unless the admin asks users to re-accept: then the version becomes exactly the previous one plus one
(TC-05). Acceptance is per user, not per device (TC-06): a user accepts each version once; a user has pending
terms when they have not accepted the policy's current version.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from muster.domain.errors import InvalidInput, NotAllowed

FIRST_VERSION = 1
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 1024
MAX_TITLE_LENGTH = 256
MAX_SUMMARY_LENGTH = 4000
MAX_BODY_LENGTH = 100_000


class TermsNotAccepted(NotAllowed):
    """The user must accept these terms before enrolling a device (TC-01)."""

    code = "termsNotAccepted"


def next_version(current: int, requested: int | None) -> int:
    """The version after an edit: unchanged (None or the current one), or the current one plus one, which asks
    every assigned user to accept again (TC-05). Any other number is refused: versions never skip or go back."""
    if requested is None or requested == current:
        return current
    if requested == current + 1:
        return requested
    raise InvalidInput(
        f"version is {current}: keep it, or set it to {current + 1} to require users to accept the terms again"
    )


def check_acceptable(current: int, version: int) -> None:
    """A user accepts the version they were shown; an older one is refused, since it is no longer the text in
    force (the user must read the current text)."""
    if version != current:
        raise NotAllowed(f"these terms are now at version {current}: read and accept the current text")


@dataclass(frozen=True)
class Acceptance:
    """One row of the acceptance report (TC-07, E19 TermsAcceptance)."""

    user_id: str
    user_display_name: str | None
    user_principal_name: str
    accepted_version: int
    accepted_at: datetime


def accepted_latest(acceptance: Acceptance, current_version: int) -> bool:
    """The report's "Accepted latest" column: yes when the user accepted the version now in force (TC-07)."""
    return acceptance.accepted_version == current_version


REPORT_COLUMNS = ("User name", "Accepted version", "Accepted time", "Accepted latest", "UPN")


def report_csv(acceptances: Iterable[Acceptance], current_version: int) -> str:
    """The exported acceptance report (TC-07: Acceptance Reporting > Export), one line per accepted version.

    Cells that a spreadsheet would run as a formula (starting with = + - @) are quoted with a leading apostrophe:
    user names come from the directory, which users may be able to edit."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    for row in acceptances:
        writer.writerow(
            (
                _cell(row.user_display_name or ""),
                row.accepted_version,
                row.accepted_at.isoformat().replace("+00:00", "Z"),
                "Yes" if accepted_latest(row, current_version) else "No",
                _cell(row.user_principal_name),
            )
        )
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
