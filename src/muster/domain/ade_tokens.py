"""Lifecycle rules of ADE enrollment program tokens (Graph `depOnboardingSetting`; Apple's "MDM server" token).

Seeds: 002_07f194c4e8cc4cb2.txt:32-70, 000_a9a189d82eb2e905.txt:68, 003_729e51c15a5a5608.txt:4661-4664, 5109-5156.
Where the seeds are silent or disagree, docs/ade-rules.md gives the reading chosen here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

TOKEN_LIFETIME = timedelta(days=365)
EXPIRY_WARNING_DAYS = (30, 14, 7, 1)

MAX_TOKENS_PER_ORGANISATION = 2_000
MAX_PROFILES_PER_TOKEN = 1_000
# Apple's per-server figure is a recommendation ("you might experience sync problems"), and Muster cannot refuse
# serials that Apple Business Manager assigns, so going past it warns instead of refusing.
RECOMMENDED_MAX_DEVICES_PER_TOKEN = 200_000
RECOMMENDED_MAX_DEVICES_PER_PROFILE = 200_000


class Program(StrEnum):
    """Which Apple portal issued the token (Graph `tokenType`)."""

    BUSINESS_MANAGER = "dep"
    SCHOOL_MANAGER = "appleSchoolManager"

    @property
    def portal_name(self) -> str:
        return "Apple School Manager" if self is Program.SCHOOL_MANAGER else "Apple Business Manager"


def program_for_org_type(org_type: str) -> Program:
    """The program of a token, from `org_type` in Apple's `GET /account` answer (`edu` is a school)."""
    return Program.SCHOOL_MANAGER if org_type == "edu" else Program.BUSINESS_MANAGER


@dataclass(frozen=True)
class Decision:
    """Whether an admin action may go ahead; when it may not, the reason shown to the admin."""

    allowed: bool
    reason: str = ""
    retry_after: datetime | None = None  # the earliest moment the action can succeed, when waiting is enough

    @classmethod
    def allow(cls) -> Decision:
        return cls(allowed=True)

    @classmethod
    def refuse(cls, reason: str, *, retry_after: datetime | None = None) -> Decision:
        return cls(allowed=False, reason=reason, retry_after=retry_after)


@dataclass(frozen=True)
class MdmServerIdentity:
    """Who a token speaks for, from Apple's `GET /account` (`server_uuid`, `server_name`, `org_id`, `org_name`)."""

    server_uuid: str
    server_name: str
    org_id: str
    org_name: str


def token_expiry(uploaded_at: datetime, access_token_expiry: datetime | None) -> datetime:
    """When a token stops working: Apple's `access_token_expiry` when the token states it, else 365 days."""
    return access_token_expiry if access_token_expiry is not None else uploaded_at + TOKEN_LIFETIME


def is_expired(expires_at: datetime, now: datetime) -> bool:
    return now >= expires_at


def days_until_expiration(expires_at: datetime, now: datetime) -> int:
    """Whole days left, as the token page shows them ("Days Until Expiration"); 0 once expired."""
    return max((expires_at - now).days, 0)


def expiry_warnings_due(expires_at: datetime, now: datetime, already_sent: Collection[int]) -> list[int]:
    """The warning thresholds (days before expiry) crossed and not yet announced for this expiry date.

    Several can come due at once (the server was down, or the token arrived with less than 30 days left): send
    one notice and record them all. An expired token gets no more warnings; its expired state replaces them.
    `already_sent` belongs to one expiry date: a renewed token starts with an empty set.
    """
    if is_expired(expires_at, now):
        return []
    left = expires_at - now
    return [days for days in EXPIRY_WARNING_DAYS if left <= timedelta(days=days) and days not in already_sent]


def token_use_decision(expires_at: datetime, now: datetime, *, action: str) -> Decision:
    """An expired token can no longer sync devices nor send or assign profiles (ADE-08)."""
    if not is_expired(expires_at, now):
        return Decision.allow()
    return Decision.refuse(
        f"Cannot {action}: the enrollment program token expired on {_day(expires_at)}. Download a new token "
        "from the same MDM server in Apple Business Manager or Apple School Manager and renew it here."
    )


def renewal_decision(
    *,
    apple_id: str,
    entered_apple_id: str,
    current: MdmServerIdentity,
    uploaded: MdmServerIdentity,
    uploaded_expires_at: datetime,
    program: Program,
    now: datetime,
) -> Decision:
    """Whether an uploaded token may replace the current one (002_07f194c4e8cc4cb2.txt:43-44).

    Renewal needs the Apple ID that created the token and a token downloaded from the same MDM server: a token
    of another server would silently swap the devices this token manages.
    """
    if _normalise_apple_id(entered_apple_id) != _normalise_apple_id(apple_id):
        return Decision.refuse(
            f"Enter the Apple ID used to create this token ({apple_id}); a token is renewed with the same Apple ID."
        )
    portal = program.portal_name
    if uploaded.org_id != current.org_id:
        return Decision.refuse(
            f"This token belongs to another organisation ({uploaded.org_name}), not to {current.org_name}. "
            f"Download the token from the MDM server '{current.server_name}' in {portal}."
        )
    if uploaded.server_uuid != current.server_uuid:
        return Decision.refuse(
            f"This token is for the MDM server '{uploaded.server_name}', but this token is linked to "
            f"'{current.server_name}'. In {portal}, open Settings > MDM Servers > {current.server_name} > "
            "Download Token, and upload that file."
        )
    if is_expired(uploaded_expires_at, now):
        return Decision.refuse(f"The uploaded token expired on {_day(uploaded_expires_at)}; download a new one.")
    return Decision.allow()


def deletion_decision(*, assigned_devices: int, default_profile_devices: int, profiles: int) -> Decision:
    """A token may be deleted only once no device and no enrollment profile remains (ADE-22)."""
    remaining = []
    if assigned_devices:
        remaining.append(f"{_count(assigned_devices, 'device is', 'devices are')} still assigned to the token")
    if default_profile_devices:
        remaining.append(f"{_count(default_profile_devices, 'device uses', 'devices use')} the default profile")
    if profiles:
        remaining.append(
            f"{_count(profiles, 'enrollment profile remains', 'enrollment profiles remain')} "
            "(including any default profile)"
        )
    if not remaining:
        return Decision.allow()
    return Decision.refuse(
        f"This token can't be deleted yet: {_join(remaining)}. Delete the token's devices, then its enrollment "
        "profiles, then the token. Deleting devices removes them from management."
    )


def token_limit_decision(existing_tokens: int) -> Decision:
    if existing_tokens < MAX_TOKENS_PER_ORGANISATION:
        return Decision.allow()
    return Decision.refuse(
        f"An organisation can have at most {MAX_TOKENS_PER_ORGANISATION:,} enrollment program tokens."
    )


def profile_limit_decision(existing_profiles: int) -> Decision:
    if existing_profiles < MAX_PROFILES_PER_TOKEN:
        return Decision.allow()
    return Decision.refuse(f"A token can have at most {MAX_PROFILES_PER_TOKEN:,} enrollment profiles.")


def token_device_warning(device_count: int) -> str | None:
    """Past 200,000 devices a token syncs badly; Apple's advice is to split the devices across tokens."""
    if device_count <= RECOMMENDED_MAX_DEVICES_PER_TOKEN:
        return None
    return (
        f"This token holds {device_count:,} devices, more than the recommended "
        f"{RECOMMENDED_MAX_DEVICES_PER_TOKEN:,} per token; syncs may fail. Split the devices across several "
        "MDM servers and tokens."
    )


def profile_device_warning(device_count: int) -> str | None:
    if device_count <= RECOMMENDED_MAX_DEVICES_PER_PROFILE:
        return None
    return (
        f"This profile is assigned to {device_count:,} devices, more than the recommended "
        f"{RECOMMENDED_MAX_DEVICES_PER_PROFILE:,} per profile. Spread the devices over several profiles."
    )


def school_data_sync_decision(program: Program) -> Decision:
    """Only Apple School Manager tokens can share rosters with School Data Sync (003_729e51c15a5a5608.txt:5863)."""
    if program is Program.SCHOOL_MANAGER:
        return Decision.allow()
    return Decision.refuse("School Data Sync is available only for Apple School Manager tokens.")


def _normalise_apple_id(apple_id: str) -> str:
    # Apple IDs are e-mail addresses: Apple matches them regardless of case.
    return apple_id.strip().casefold()


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number:,} {singular if number == 1 else plural}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
