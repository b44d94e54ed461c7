"""The database schema (SQLAlchemy Core). Every change here needs an Alembic migration.

Organisation-scoped tables carry `org_id` from the start so one server can later host several organisations.
Secrets live only in `*_encrypted` columns (see `muster.pki.secretbox`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from muster.domain.rbac import TaggedObject
from muster.store.scope_tags import scope_tags_column, tagged_table_info

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DEFAULT_ORG_ID = "00000000-0000-0000-0000-000000000001"
# "<device id>:<user id>" (see muster.protocols.apple.checkin.MAX_ID_LENGTH).
ENROLLMENT_ID_LENGTH = 400


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; Muster stores UTC only")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ts_column(name: str, nullable: bool = True) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


def org_column() -> Column[str]:
    return Column("org_id", String(36), ForeignKey("organizations.id"), nullable=False, index=True)


organizations = Table(
    "organizations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    ts_column("created_at", nullable=False),
)

# Key pairs the server owns: the device CA and the profile-signing identity.
key_pairs = Table(
    "key_pairs",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("purpose", String(40), nullable=False),
    Column("certificate_pem", Text, nullable=False),
    Column("key_encrypted", LargeBinary, nullable=False),
    ts_column("created_at", nullable=False),
    UniqueConstraint("org_id", "purpose", name="uq_key_pairs_org_purpose"),
)

push_certificates = Table(
    "push_certificates",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("status", String(24), nullable=False),  # awaitingCertificate | active | replaced
    Column("csr_pem", Text, nullable=False),
    Column("key_encrypted", LargeBinary, nullable=False),
    Column("certificate_pem", Text),
    Column("topic", String(255)),
    Column("apple_id", String(320)),
    Column("serial_number", String(80)),
    ts_column("not_after"),
    ts_column("created_at", nullable=False),
    ts_column("uploaded_at"),
)

# Consents an administrator gave to share data with a vendor (Graph `dataSharingConsents`).
data_sharing_consents = Table(
    "data_sharing_consents",
    metadata,
    Column("org_id", String(36), ForeignKey("organizations.id"), primary_key=True),
    Column("id", String(80), primary_key=True),
    Column("granted_by", String(320), nullable=False),
    ts_column("granted_at", nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("name", String(200), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("role", String(60), nullable=False),
    Column("scope_tag_ids", JSON),  # the role's scope tags; null: every tag (the bootstrap administrator)
    ts_column("created_at", nullable=False),
    ts_column("last_used_at"),
    ts_column("revoked_at"),
)

# One row per enrollment-profile download: the one-time SCEP challenge and who the profile is for.
enrollment_requests = Table(
    "enrollment_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("challenge_sha256", String(64), nullable=False, unique=True),
    Column("user_principal_name", String(320)),
    # Graph deviceEnrollmentType the enrollment will have: userEnrollment (profile), appleBulkWithoutUser (ADE), ...
    Column("enrollment_type", String(40), nullable=False, server_default="profileEnrollment"),
    Column("ade_device_id", String(36)),
    Column("device_name", String(255)),
    Column("status", String(24), nullable=False),  # issued | certificateIssued | enrolled
    Column("decision", JSON),  # the enrollment gate's admitting decision (muster.domain.enrollment_decision)
    Column("created_by", String(200), nullable=False),
    ts_column("created_at", nullable=False),
    ts_column("expires_at", nullable=False),
    ts_column("consumed_at"),
)

enrollment_failures = Table(
    "enrollment_failures",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("enrollment_request_id", String(36), ForeignKey("enrollment_requests.id")),
    Column("stage", String(40), nullable=False),
    Column("reason", String(80), nullable=False),
    Column("detail", Text, nullable=False),
    ts_column("occurred_at", nullable=False),
    # What the Enrollment failures report shows; known for refusals by the enrollment gate.
    Column("user_principal_name", String(320)),
    Column("enrollment_method", String(60)),
    Column("operating_system", String(40)),
    Column("os_version", String(40)),
    Column("serial_number", String(80)),
    Column("failure_reason", String(120)),
    Column("remediation", Text),
    Column("decision", JSON),
    Index("ix_enrollment_failures_org_time", "org_id", "occurred_at"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("udid", String(80), unique=True),
    Column("serial_number", String(80), index=True),
    Column("device_name", String(255)),
    Column("operating_system", String(40)),
    Column("os_version", String(40)),
    Column("build_version", String(40)),
    Column("model", String(80)),
    Column("model_name", String(120)),
    Column("product_name", String(80)),
    Column("imei", String(40)),
    Column("meid", String(40)),
    Column("wifi_mac", String(40)),
    Column("phone_number", String(40)),
    Column("is_supervised", Boolean),
    Column("is_encrypted", Boolean),
    Column("total_storage_bytes", BigInteger),
    Column("free_storage_bytes", BigInteger),
    Column("owner_type", String(20), nullable=False),  # company | personal | unknown
    Column("enrollment_type", String(40), nullable=False),
    Column("management_state", String(30), nullable=False),
    Column("user_principal_name", String(320)),
    ts_column("enrolled_at"),
    ts_column("last_sync_at"),
    ts_column("unenrolled_at"),
    Column("inventory", JSON, nullable=False),
    Column("device_category_id", String(36), index=True),  # Graph deviceCategory; null is "Unassigned"
    Column("enrollment_decision", JSON),  # the policies applied when it first enrolled
    scope_tags_column(),
    Index("ix_devices_org_user", "org_id", "user_principal_name"),
    info=tagged_table_info(TaggedObject.MANAGED_DEVICE),
)

# An MDM channel: the device channel ("<udid>") or a user channel ("<udid>:<user>").
enrollments = Table(
    "enrollments",
    metadata,
    Column("id", String(ENROLLMENT_ID_LENGTH), primary_key=True),
    org_column(),
    Column("device_id", String(36), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("parent_id", String(ENROLLMENT_ID_LENGTH), ForeignKey("enrollments.id", ondelete="CASCADE")),
    Column("kind", String(30), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("topic", String(256), nullable=False),
    Column("push_token", LargeBinary),
    Column("push_magic", String(128)),
    Column("push_unregistered", Boolean, nullable=False, default=False),
    Column("unlock_token_encrypted", LargeBinary),
    Column("bootstrap_token_encrypted", LargeBinary),
    Column("awaiting_configuration", Boolean, nullable=False, default=False),
    Column("user_short_name", String(320)),
    Column("user_long_name", String(320)),
    ts_column("authenticated_at"),
    ts_column("token_updated_at"),
    ts_column("last_seen_at"),
    ts_column("checked_out_at"),
)

# Device identity certificates issued over SCEP, and the enrollment each is bound to at Authenticate.
device_certificates = Table(
    "device_certificates",
    metadata,
    Column("sha256", String(64), primary_key=True),
    org_column(),
    Column("enrollment_request_id", String(36), ForeignKey("enrollment_requests.id")),
    Column(
        "enrollment_id", String(ENROLLMENT_ID_LENGTH), ForeignKey("enrollments.id", ondelete="SET NULL"), index=True
    ),
    Column("serial_number", String(64), nullable=False),
    Column("subject", String(500), nullable=False),
    ts_column("not_after", nullable=False),
    ts_column("issued_at", nullable=False),
)

# Raw check-in messages, kept as received (unknown keys from newer OS releases included).
checkin_messages = Table(
    "checkin_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("enrollment_id", String(ENROLLMENT_ID_LENGTH), nullable=False, index=True),
    Column("message_type", String(64), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    ts_column("received_at", nullable=False),
)

commands = Table(
    "commands",
    metadata,
    Column("uuid", String(36), primary_key=True),
    org_column(),
    Column("request_type", String(80), nullable=False),
    Column("body", LargeBinary, nullable=False),  # the encoded plist sent to devices
    Column("action", String(60)),  # the admin action that queued it, e.g. "wipe"
    Column("created_by", String(200), nullable=False),
    ts_column("created_at", nullable=False),
)

# Per-enrollment delivery state of a command.
command_deliveries = Table(
    "command_deliveries",
    metadata,
    Column(
        "enrollment_id",
        String(ENROLLMENT_ID_LENGTH),
        ForeignKey("enrollments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("command_uuid", String(36), ForeignKey("commands.uuid", ondelete="CASCADE"), primary_key=True),
    Column("status", String(24), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("queued_seq", BigInteger, nullable=False),
    ts_column("sent_at"),
    ts_column("completed_at"),
    Column("result", LargeBinary),
    Column("error_chain", JSON),
    Index("ix_command_deliveries_next", "enrollment_id", "status", "priority", "queued_seq"),
    Index("ix_command_deliveries_command", "command_uuid"),
)

# The audit log lives in muster.store.tables_audit (`audit_log`).


# -- Automated Device Enrollment (Apple Business Manager / Apple School Manager) ---------------------------------

# An enrollment program token (Graph `depOnboardingSettings`): one ABM/ASM "MDM server".
dep_tokens = Table(
    "dep_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("name", String(200), nullable=False),
    Column("program", String(10), nullable=False),  # abm | asm
    Column("certificate_pem", Text, nullable=False),  # the public key the admin uploads to ABM
    Column("key_encrypted", LargeBinary, nullable=False),
    Column("credentials_encrypted", LargeBinary),  # the OAuth credentials from the server token
    Column("apple_id", String(320)),
    Column("server_uuid", String(80)),
    Column("server_name", String(200)),
    Column("abm_org_name", String(200)),
    Column("abm_org_id", String(80)),
    ts_column("token_expires_at"),
    Column("expiry_warnings_sent", JSON, nullable=False),
    Column("default_ios_profile_id", String(36)),
    Column("default_macos_profile_id", String(36)),
    # Sync state (see muster.domain.ade_sync.SyncState). The cursor only advances in the transaction that saved
    # its devices; `fetch_generation` names the full fetch the cursor belongs to, across resumed runs.
    Column("cursor", Text),
    Column("cursor_kind", String(10)),  # fetch | sync
    Column("fetch_generation", String(36)),
    Column("full_sync_required", Boolean, nullable=False),
    ts_column("last_sync_started_at"),
    ts_column("last_full_sync_at"),
    ts_column("last_manual_sync_at"),
    ts_column("last_successful_sync_at"),
    Column("last_sync_outcome", String(20)),
    Column("last_sync_error", Text),
    Column("sync_run_id", String(36)),
    Column("sync_lease_owner", String(80)),
    ts_column("sync_lease_expires_at"),
    ts_column("sync_started_at"),
    Column("sync_kind", String(10)),
    Column("sync_manual", Boolean, nullable=False),
    Column("sync_devices_seen", Integer, nullable=False),
    scope_tags_column(),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    info=tagged_table_info(TaggedObject.DEP_TOKEN),
)

# An ADE enrollment profile (Graph `depIOSEnrollmentProfile` / `depMacOSEnrollmentProfile`).
ade_profiles = Table(
    "ade_profiles",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("token_id", String(36), ForeignKey("dep_tokens.id"), nullable=False, index=True),
    Column("platform", String(10), nullable=False),  # iOS | macOS
    Column("display_name", String(200), nullable=False),
    Column("description", Text),
    Column("settings", JSON, nullable=False),
    Column("abm_profile_uuid", String(80)),
    ts_column("defined_at"),
    scope_tags_column(),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    info=tagged_table_info(TaggedObject.ADE_PROFILE),
)

# A serial number the token's ABM MDM server holds (Graph `importedAppleDeviceIdentity`).
ade_devices = Table(
    "ade_devices",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("token_id", String(36), ForeignKey("dep_tokens.id"), nullable=False),
    Column("serial_number", String(80), nullable=False),
    Column("model", String(120)),
    Column("description", String(255)),
    Column("color", String(80)),
    Column("asset_tag", String(120)),
    Column("os", String(20)),
    Column("device_family", String(20)),
    Column("abm_profile_uuid", String(80)),
    Column("abm_profile_status", String(20)),  # empty | assigned | pushed | removed
    ts_column("abm_profile_assigned_at"),
    ts_column("abm_profile_pushed_at"),
    ts_column("device_assigned_at"),
    Column("device_assigned_by", String(320)),
    Column("abm_status", String(20), nullable=False),  # assigned | released
    ts_column("released_at"),
    ts_column("op_date"),
    Column("last_seen_run_id", String(36)),
    Column("profile_id", String(36), ForeignKey("ade_profiles.id", ondelete="SET NULL"), index=True),
    Column("assignment_status", String(20), nullable=False),  # none | pending | succeeded | failed
    Column("assignment_error", String(80)),
    Column("assignment_attempts", Integer, nullable=False),
    ts_column("next_assignment_at"),
    Column("managed_device_id", String(36)),
    Column("enrollment_state", String(20), nullable=False),  # notContacted | enrolled | failed
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    UniqueConstraint("token_id", "serial_number", name="uq_ade_devices_token_serial"),
    Index("ix_ade_devices_serial", "org_id", "serial_number"),
    Index("ix_ade_devices_retry", "assignment_status", "next_assignment_at"),
)

# The directory: users and groups (Graph `users`/`groups`), provisioned by SCIM, CSV import or the admin API.
users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("user_principal_name", String(320), nullable=False),
    Column("display_name", String(256)),
    Column("given_name", String(128)),
    Column("surname", String(128)),
    Column("mail", String(320)),
    Column("account_enabled", Boolean, nullable=False),
    Column("external_id", String(256)),  # the identity provider's id (SCIM externalId)
    Column("department", String(128)),
    Column("job_title", String(128)),
    Column("source", String(20), nullable=False),  # api | scim | csv | oidc
    # The identity provider's SCIM document (phone numbers, addresses...) kept as sent, so SCIM reads return it
    # whole; the columns above are the copies of its attributes that Muster itself reads.
    Column("scim_profile", JSON),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    UniqueConstraint("org_id", "user_principal_name", name="uq_users_org_upn"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("display_name", String(256), nullable=False),
    Column("description", String(1024)),
    Column("mail_nickname", String(64)),
    Column("external_id", String(256)),
    Column("membership_type", String(20), nullable=False),  # assigned | dynamic
    Column("membership_rule", Text),  # dynamic groups: a rule in the assignment-filter language
    Column("source", String(20), nullable=False),  # api | scim | csv
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
)

# Direct members of a group: users, devices or groups. Dynamic groups' members are computed into this table.
group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(36), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", String(36), primary_key=True),
    Column("member_type", String(10), nullable=False),  # user | device | group
    Index("ix_group_members_member", "member_id"),
)
