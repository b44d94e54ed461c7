"""Enrollment program token lifecycle (muster.domain.ade_tokens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from muster.domain.ade_tokens import (
    Decision,
    MdmServerIdentity,
    Program,
    days_until_expiration,
    deletion_decision,
    expiry_warnings_due,
    profile_device_warning,
    profile_limit_decision,
    program_for_org_type,
    renewal_decision,
    school_data_sync_decision,
    token_device_warning,
    token_expiry,
    token_limit_decision,
    token_use_decision,
)

UPLOADED = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
EXPIRES = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SERVER = MdmServerIdentity(server_uuid="S-1", server_name="Muster Paris", org_id="ORG-1", org_name="Contoso")


def _renewal(
    *,
    entered_apple_id: str = "admin@contoso.com",
    uploaded: MdmServerIdentity = SERVER,
    uploaded_expires_at: datetime = EXPIRES + timedelta(days=365),
    program: Program = Program.BUSINESS_MANAGER,
    now: datetime = EXPIRES - timedelta(days=10),
) -> Decision:
    return renewal_decision(
        apple_id="admin@contoso.com",
        entered_apple_id=entered_apple_id,
        current=SERVER,
        uploaded=uploaded,
        uploaded_expires_at=uploaded_expires_at,
        program=program,
        now=now,
    )


def test_token_lives_365_days_when_apple_states_no_expiry() -> None:
    """ADE-07: the token expires every 365 days (000_a9a189d82eb2e905.txt:68, 003_729e51c15a5a5608.txt:917)."""
    assert token_expiry(UPLOADED, None) == UPLOADED + timedelta(days=365)


def test_token_expiry_stated_by_apple_wins() -> None:
    """ADE-07 (000_a9a189d82eb2e905.txt:68); the token's own access_token_expiry is exact (apple-protocols.md §7.1)."""
    stated = datetime(2026, 2, 27, 21, 27, 41, tzinfo=UTC)
    assert token_expiry(UPLOADED, stated) == stated


def test_days_until_expiration_counts_whole_days_and_stops_at_zero() -> None:
    """The token page shows 'Days Until Expiration' (003_729e51c15a5a5608.txt:5134)."""
    assert days_until_expiration(EXPIRES, UPLOADED) == 365
    assert days_until_expiration(EXPIRES, EXPIRES - timedelta(days=226, hours=3)) == 226
    assert days_until_expiration(EXPIRES, EXPIRES - timedelta(hours=23)) == 0
    assert days_until_expiration(EXPIRES, EXPIRES + timedelta(days=3)) == 0


def test_expiry_warnings_come_at_30_14_7_and_1_days() -> None:
    """ADE-07: the console warns before the token expires (000_a9a189d82eb2e905.txt:68)."""
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(days=31), set()) == []
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(days=30), set()) == [30]
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(days=20), {30}) == []
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(days=14), {30}) == [14]
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(days=7), {30, 14}) == [7]
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(hours=1), {30, 14, 7}) == [1]
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(hours=1), {30, 14, 7, 1}) == []


def test_missed_expiry_warnings_come_due_together() -> None:
    """ADE-07 (000_a9a189d82eb2e905.txt:68): a token uploaded 6 days before expiry still gets warned at once."""
    assert expiry_warnings_due(EXPIRES, EXPIRES - timedelta(days=6), set()) == [30, 14, 7]


def test_expired_token_gets_no_more_warnings() -> None:
    """ADE-08: once expired the token is unusable; its expired state replaces warnings (000:68)."""
    assert expiry_warnings_due(EXPIRES, EXPIRES, set()) == []


def test_expired_token_cannot_sync_or_assign() -> None:
    """ADE-08: an expired token can no longer be used (000_a9a189d82eb2e905.txt:68)."""
    assert token_use_decision(EXPIRES, EXPIRES - timedelta(seconds=1), action="assign profiles").allowed
    refused = token_use_decision(EXPIRES, EXPIRES, action="assign profiles")
    assert not refused.allowed
    assert refused.reason.startswith("Cannot assign profiles: the enrollment program token expired on 2026-03-01.")


def test_renewal_with_the_same_apple_id_and_server_is_allowed() -> None:
    """ADE-09: renew with the Apple ID of the original token and the new token file (002_07f194c4e8cc4cb2.txt:43-46)."""
    assert _renewal() == Decision.allow()
    assert _renewal(entered_apple_id="  Admin@Contoso.COM ").allowed


def test_renewal_needs_the_apple_id_that_created_the_token() -> None:
    """ADE-09: 'Enter the Apple ID used to create the original token' (002_07f194c4e8cc4cb2.txt:43)."""
    refused = _renewal(entered_apple_id="someone@contoso.com")
    assert not refused.allowed
    assert "admin@contoso.com" in refused.reason


def test_renewal_refuses_a_token_of_another_mdm_server() -> None:
    """F-06: the new token must come from the same MDM server (002_07f194c4e8cc4cb2.txt:34-35, 003:5120)."""
    other = MdmServerIdentity(server_uuid="S-2", server_name="Muster Lyon", org_id="ORG-1", org_name="Contoso")
    refused = _renewal(uploaded=other)
    assert not refused.allowed
    assert "'Muster Lyon'" in refused.reason
    assert "Apple Business Manager, open Settings > MDM Servers > Muster Paris > Download Token" in refused.reason


def test_renewal_refuses_a_token_of_another_organisation() -> None:
    """F-06: a token from another organisation would manage other devices (002_07f194c4e8cc4cb2.txt:34)."""
    other = MdmServerIdentity(server_uuid="S-9", server_name="Muster", org_id="ORG-9", org_name="Fabrikam")
    refused = _renewal(uploaded=other, program=Program.SCHOOL_MANAGER)
    assert not refused.allowed
    assert "another organisation (Fabrikam)" in refused.reason
    assert "Apple School Manager" in refused.reason


def test_renewal_refuses_an_already_expired_token_file() -> None:
    """ADE-08: an expired token can't be used (000_a9a189d82eb2e905.txt:68), so it can't renew one either."""
    refused = _renewal(uploaded_expires_at=EXPIRES - timedelta(days=20))
    assert not refused.allowed
    assert "expired on 2026-02-09" in refused.reason


def test_expired_token_can_still_be_renewed() -> None:
    """ADE-08 reading (docs/ade-rules.md): renewal restores an expired token (002_07f194c4e8cc4cb2.txt:32-46)."""
    assert _renewal(now=EXPIRES + timedelta(days=40)).allowed


def test_empty_token_can_be_deleted() -> None:
    """ADE-22: no devices, none on the default policy, no policies (002_07f194c4e8cc4cb2.txt:50-53)."""
    assert deletion_decision(assigned_devices=0, default_profile_devices=0, profiles=0).allowed


def test_deletion_refusal_names_what_remains() -> None:
    """ADE-22/23: devices and policies must go first (002_07f194c4e8cc4cb2.txt:50-62, 003:5144-5156)."""
    refused = deletion_decision(assigned_devices=1200, default_profile_devices=3, profiles=2)
    assert not refused.allowed
    assert refused.reason.startswith(
        "This token can't be deleted yet: 1,200 devices are still assigned to the token, 3 devices use the default "
        "profile and 2 enrollment profiles remain (including any default profile)."
    )
    single = deletion_decision(assigned_devices=0, default_profile_devices=0, profiles=1)
    assert "yet: 1 enrollment profile remains (including any default profile)." in single.reason


def test_an_organisation_has_at_most_2000_tokens() -> None:
    """ADE-21: ADE tokens per Intune account: 2,000 (002_07f194c4e8cc4cb2.txt:69, 003:4663)."""
    assert token_limit_decision(1_999).allowed
    assert not token_limit_decision(2_000).allowed


def test_a_token_has_at_most_1000_profiles() -> None:
    """ADE-21 / R-042: enrollment policies per token: 1,000 (002_07f194c4e8cc4cb2.txt:67, 003:4661)."""
    assert profile_limit_decision(999).allowed
    refused = profile_limit_decision(1_000)
    assert refused.reason == "A token can have at most 1,000 enrollment profiles."


def test_more_than_200000_devices_per_token_is_warned_about() -> None:
    """ADE-21: past 200,000 devices per token, sync problems; split tokens (002_07f194c4e8cc4cb2.txt:64, :70)."""
    assert token_device_warning(200_000) is None
    warning = token_device_warning(200_001)
    assert warning is not None
    assert "200,001 devices" in warning
    assert "Split the devices" in warning


def test_more_than_200000_devices_per_profile_is_warned_about() -> None:
    """ADE-21: ADE devices per policy: 200,000 (002_07f194c4e8cc4cb2.txt:68, 003:4662)."""
    assert profile_device_warning(200_000) is None
    assert profile_device_warning(250_000) is not None


def test_program_follows_apples_organisation_type() -> None:
    """ADE-03: tokens come from Apple Business Manager or Apple School Manager (002_07f194c4e8cc4cb2.txt:6)."""
    assert program_for_org_type("edu") is Program.SCHOOL_MANAGER
    assert program_for_org_type("org") is Program.BUSINESS_MANAGER
    assert Program.SCHOOL_MANAGER.value == "appleSchoolManager"  # Graph tokenType


def test_only_school_tokens_share_with_school_data_sync() -> None:
    """School Data Sync connects Apple School Manager tokens (003_729e51c15a5a5608.txt:5863-5867)."""
    assert school_data_sync_decision(Program.SCHOOL_MANAGER).allowed
    assert not school_data_sync_decision(Program.BUSINESS_MANAGER).allowed
