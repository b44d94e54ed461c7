"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkin_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("enrollment_id", sa.String(length=400), nullable=False),
        sa.Column("message_type", sa.String(length=64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_messages")),
    )
    with op.batch_alter_table("checkin_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_messages_enrollment_id"), ["enrollment_id"], unique=False)

    op.create_table(
        "oauth_seen_assertions",
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_oauth_seen_assertions")),
    )
    with op.batch_alter_table("oauth_seen_assertions", schema=None) as batch_op:
        batch_op.create_index("ix_oauth_seen_assertions_expires", ["expires_at"], unique=False)

    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "scope_tag_links",
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("tag_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("object_type", "object_id", "tag_id", name=op.f("pk_scope_tag_links")),
    )
    with op.batch_alter_table("scope_tag_links", schema=None) as batch_op:
        batch_op.create_index("ix_scope_tag_links_tag", ["object_type", "tag_id", "object_id"], unique=False)

    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_api_clients_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("app_id", name=op.f("uq_api_clients_app_id")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_clients_org_id"), ["org_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=60), nullable=False),
        sa.Column("scope_tag_ids", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_api_tokens_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_org_id"), ["org_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("category", sa.String(length=80), nullable=False),
        sa.Column("activity", sa.String(length=120), nullable=False),
        sa.Column("activity_type", sa.String(length=200), nullable=False),
        sa.Column("operation_type", sa.String(length=20), nullable=False),
        sa.Column("result", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=320), nullable=True),
        sa.Column("actor_name", sa.String(length=320), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("http_method", sa.String(length=10), nullable=True),
        sa.Column("path", sa.String(length=2000), nullable=True),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_audit_log_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_activity_type", ["org_id", "activity_type"], unique=False)
        batch_op.create_index("ix_audit_log_actor", ["org_id", "actor_name"], unique=False)
        batch_op.create_index("ix_audit_log_category_time", ["org_id", "category", "occurred_at"], unique=False)
        batch_op.create_index("ix_audit_log_correlation", ["correlation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_org_id"), ["org_id"], unique=False)
        batch_op.create_index("ix_audit_log_time", ["org_id", "occurred_at"], unique=False)

    op.create_table(
        "commands",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("request_type", sa.String(length=80), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_commands_org_id_organizations")),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_commands")),
    )
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commands_org_id"), ["org_id"], unique=False)

    op.create_table(
        "data_sharing_consents",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("granted_by", sa.String(length=320), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_data_sharing_consents_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_data_sharing_consents")),
    )
    op.create_table(
        "dep_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("program", sa.String(length=10), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("apple_id", sa.String(length=320), nullable=True),
        sa.Column("server_uuid", sa.String(length=80), nullable=True),
        sa.Column("server_name", sa.String(length=200), nullable=True),
        sa.Column("abm_org_name", sa.String(length=200), nullable=True),
        sa.Column("abm_org_id", sa.String(length=80), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expiry_warnings_sent", sa.JSON(), nullable=False),
        sa.Column("default_ios_profile_id", sa.String(length=36), nullable=True),
        sa.Column("default_macos_profile_id", sa.String(length=36), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("cursor_kind", sa.String(length=10), nullable=True),
        sa.Column("fetch_generation", sa.String(length=36), nullable=True),
        sa.Column("full_sync_required", sa.Boolean(), nullable=False),
        sa.Column("last_sync_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_full_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_manual_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_successful_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_outcome", sa.String(length=20), nullable=True),
        sa.Column("last_sync_error", sa.Text(), nullable=True),
        sa.Column("sync_run_id", sa.String(length=36), nullable=True),
        sa.Column("sync_lease_owner", sa.String(length=80), nullable=True),
        sa.Column("sync_lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_kind", sa.String(length=10), nullable=True),
        sa.Column("sync_manual", sa.Boolean(), nullable=False),
        sa.Column("sync_devices_seen", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_dep_tokens_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dep_tokens")),
    )
    with op.batch_alter_table("dep_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dep_tokens_org_id"), ["org_id"], unique=False)

    op.create_table(
        "device_codes",
        sa.Column("device_code_sha256", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("user_code", sa.String(length=8), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("amr", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_device_codes_org_id_organizations")),
        sa.PrimaryKeyConstraint("device_code_sha256", name=op.f("pk_device_codes")),
        sa.UniqueConstraint("user_code", name=op.f("uq_device_codes_user_code")),
    )
    with op.batch_alter_table("device_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_codes_org_id"), ["org_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("udid", sa.String(length=80), nullable=True),
        sa.Column("serial_number", sa.String(length=80), nullable=True),
        sa.Column("device_name", sa.String(length=255), nullable=True),
        sa.Column("operating_system", sa.String(length=40), nullable=True),
        sa.Column("os_version", sa.String(length=40), nullable=True),
        sa.Column("build_version", sa.String(length=40), nullable=True),
        sa.Column("model", sa.String(length=80), nullable=True),
        sa.Column("model_name", sa.String(length=120), nullable=True),
        sa.Column("product_name", sa.String(length=80), nullable=True),
        sa.Column("imei", sa.String(length=40), nullable=True),
        sa.Column("meid", sa.String(length=40), nullable=True),
        sa.Column("wifi_mac", sa.String(length=40), nullable=True),
        sa.Column("phone_number", sa.String(length=40), nullable=True),
        sa.Column("is_supervised", sa.Boolean(), nullable=True),
        sa.Column("is_encrypted", sa.Boolean(), nullable=True),
        sa.Column("total_storage_bytes", sa.BigInteger(), nullable=True),
        sa.Column("free_storage_bytes", sa.BigInteger(), nullable=True),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("enrollment_type", sa.String(length=40), nullable=False),
        sa.Column("management_state", sa.String(length=30), nullable=False),
        sa.Column("user_principal_name", sa.String(length=320), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unenrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inventory", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_devices_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("udid", name=op.f("uq_devices_udid")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_serial_number"), ["serial_number"], unique=False)

    op.create_table(
        "enrollment_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("challenge_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_principal_name", sa.String(length=320), nullable=True),
        sa.Column("enrollment_type", sa.String(length=40), server_default="profileEnrollment", nullable=False),
        sa.Column("ade_device_id", sa.String(length=36), nullable=True),
        sa.Column("device_name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_enrollment_requests_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_requests")),
        sa.UniqueConstraint("challenge_sha256", name=op.f("uq_enrollment_requests_challenge_sha256")),
    )
    with op.batch_alter_table("enrollment_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollment_requests_org_id"), ["org_id"], unique=False)

    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("mail_nickname", sa.String(length=64), nullable=True),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("membership_type", sa.String(length=20), nullable=False),
        sa.Column("membership_rule", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_groups_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_groups_org_id"), ["org_id"], unique=False)

    op.create_table(
        "identity_provider_settings",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=True),
        sa.Column("client_id", sa.String(length=256), nullable=True),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("scopes", sa.String(length=500), nullable=False),
        sa.Column("user_principal_name_claim", sa.String(length=64), nullable=False),
        sa.Column("require_mfa_for_enrollment", sa.Boolean(), nullable=False),
        sa.Column("mfa_acr_values", sa.String(length=500), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_identity_provider_settings_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_identity_provider_settings")),
    )
    op.create_table(
        "key_pairs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_key_pairs_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_pairs")),
        sa.UniqueConstraint("org_id", "purpose", name="uq_key_pairs_org_purpose"),
    )
    with op.batch_alter_table("key_pairs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_key_pairs_org_id"), ["org_id"], unique=False)

    op.create_table(
        "oauth_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_oauth_signing_keys_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_oauth_signing_keys")),
    )
    with op.batch_alter_table("oauth_signing_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_signing_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        "provisioning_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_provisioning_tokens_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_tokens")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_provisioning_tokens_secret_sha256")),
    )
    with op.batch_alter_table("provisioning_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provisioning_tokens_org_id"), ["org_id"], unique=False)

    op.create_table(
        "push_certificates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("csr_pem", sa.Text(), nullable=False),
        sa.Column("key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=True),
        sa.Column("apple_id", sa.String(length=320), nullable=True),
        sa.Column("serial_number", sa.String(length=80), nullable=True),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_push_certificates_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_certificates")),
    )
    with op.batch_alter_table("push_certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_certificates_org_id"), ["org_id"], unique=False)

    op.create_table(
        "role_definitions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_built_in", sa.Boolean(), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_role_definitions_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_definitions")),
        sa.UniqueConstraint("org_id", "display_name", name="uq_role_definitions_org_name"),
    )
    with op.batch_alter_table("role_definitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_definitions_org_id"), ["org_id"], unique=False)

    op.create_table(
        "role_scope_tags",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_built_in", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_role_scope_tags_org_id_organizations")),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_role_scope_tags")),
        sa.UniqueConstraint("org_id", "display_name", name="uq_role_scope_tags_org_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("user_principal_name", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("given_name", sa.String(length=128), nullable=True),
        sa.Column("surname", sa.String(length=128), nullable=True),
        sa.Column("mail", sa.String(length=320), nullable=True),
        sa.Column("account_enabled", sa.Boolean(), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("department", sa.String(length=128), nullable=True),
        sa.Column("job_title", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("scim_profile", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_users_org_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("org_id", "user_principal_name", name="uq_users_org_upn"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_org_id"), ["org_id"], unique=False)

    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("notification_url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.String(length=400), nullable=False),
        sa.Column("description", sa.String(length=400), nullable=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_webhook_subscriptions_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_subscriptions_org_id"), ["org_id"], unique=False)

    op.create_table(
        "ade_profiles",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=False),
        sa.Column("platform", sa.String(length=10), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("abm_profile_uuid", sa.String(length=80), nullable=True),
        sa.Column("defined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_ade_profiles_org_id_organizations")),
        sa.ForeignKeyConstraint(["token_id"], ["dep_tokens.id"], name=op.f("fk_ade_profiles_token_id_dep_tokens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ade_profiles")),
    )
    with op.batch_alter_table("ade_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ade_profiles_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ade_profiles_token_id"), ["token_id"], unique=False)

    op.create_table(
        "api_client_keys",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("thumbprint_sha1", sa.String(length=40), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_api_client_keys_client_id_api_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_client_keys")),
        sa.UniqueConstraint("client_id", "thumbprint_sha1", name="uq_api_client_keys_client_thumbprint"),
    )
    op.create_table(
        "api_client_passwords",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_clients.id"],
            name=op.f("fk_api_client_passwords_client_id_api_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_client_passwords")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_api_client_passwords_secret_sha256")),
    )
    with op.batch_alter_table("api_client_passwords", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_client_passwords_client_id"), ["client_id"], unique=False)

    op.create_table(
        "enrollment_failures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_request_id", sa.String(length=36), nullable=True),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_request_id"],
            ["enrollment_requests.id"],
            name=op.f("fk_enrollment_failures_enrollment_request_id_enrollment_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_enrollment_failures_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_failures")),
    )
    with op.batch_alter_table("enrollment_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollment_failures_org_id"), ["org_id"], unique=False)

    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(length=400), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("parent_id", sa.String(length=400), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("topic", sa.String(length=256), nullable=False),
        sa.Column("push_token", sa.LargeBinary(), nullable=True),
        sa.Column("push_magic", sa.String(length=128), nullable=True),
        sa.Column("push_unregistered", sa.Boolean(), nullable=False),
        sa.Column("unlock_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("bootstrap_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("awaiting_configuration", sa.Boolean(), nullable=False),
        sa.Column("user_short_name", sa.String(length=320), nullable=True),
        sa.Column("user_long_name", sa.String(length=320), nullable=True),
        sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_enrollments_device_id_devices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_enrollments_org_id_organizations")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["enrollments.id"], name=op.f("fk_enrollments_parent_id_enrollments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollments_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enrollments_org_id"), ["org_id"], unique=False)

    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("member_type", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index("ix_group_members_member", ["member_id"], unique=False)

    op.create_table(
        "role_assignments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("role_definition_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("scope_group_ids", sa.JSON(), nullable=False),
        sa.Column("scope_tag_ids", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_role_assignments_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["role_definition_id"],
            ["role_definitions.id"],
            name=op.f("fk_role_assignments_role_definition_id_role_definitions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_assignments")),
    )
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_assignments_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_role_assignments_role_definition_id"), ["role_definition_id"], unique=False
        )

    op.create_table(
        "user_credentials",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("totp_required", sa.Boolean(), nullable=False),
        sa.Column("totp_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("totp_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_totp_step", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_credentials")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=400), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_webhook_deliveries_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_subscription_id"), ["subscription_id"], unique=False)

    op.create_table(
        "ade_devices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=False),
        sa.Column("serial_number", sa.String(length=80), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("color", sa.String(length=80), nullable=True),
        sa.Column("asset_tag", sa.String(length=120), nullable=True),
        sa.Column("os", sa.String(length=20), nullable=True),
        sa.Column("device_family", sa.String(length=20), nullable=True),
        sa.Column("abm_profile_uuid", sa.String(length=80), nullable=True),
        sa.Column("abm_profile_status", sa.String(length=20), nullable=True),
        sa.Column("abm_profile_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("abm_profile_pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("device_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("device_assigned_by", sa.String(length=320), nullable=True),
        sa.Column("abm_status", sa.String(length=20), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("op_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_run_id", sa.String(length=36), nullable=True),
        sa.Column("profile_id", sa.String(length=36), nullable=True),
        sa.Column("assignment_status", sa.String(length=20), nullable=False),
        sa.Column("assignment_error", sa.String(length=80), nullable=True),
        sa.Column("assignment_attempts", sa.Integer(), nullable=False),
        sa.Column("next_assignment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("managed_device_id", sa.String(length=36), nullable=True),
        sa.Column("enrollment_state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_ade_devices_org_id_organizations")),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["ade_profiles.id"],
            name=op.f("fk_ade_devices_profile_id_ade_profiles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["token_id"], ["dep_tokens.id"], name=op.f("fk_ade_devices_token_id_dep_tokens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ade_devices")),
        sa.UniqueConstraint("token_id", "serial_number", name="uq_ade_devices_token_serial"),
    )
    with op.batch_alter_table("ade_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ade_devices_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ade_devices_profile_id"), ["profile_id"], unique=False)
        batch_op.create_index("ix_ade_devices_retry", ["assignment_status", "next_assignment_at"], unique=False)
        batch_op.create_index("ix_ade_devices_serial", ["org_id", "serial_number"], unique=False)

    op.create_table(
        "command_deliveries",
        sa.Column("enrollment_id", sa.String(length=400), nullable=False),
        sa.Column("command_uuid", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("queued_seq", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("error_chain", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["command_uuid"],
            ["commands.uuid"],
            name=op.f("fk_command_deliveries_command_uuid_commands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_command_deliveries_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enrollment_id", "command_uuid", name=op.f("pk_command_deliveries")),
    )
    with op.batch_alter_table("command_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_command_deliveries_command", ["command_uuid"], unique=False)
        batch_op.create_index(
            "ix_command_deliveries_next", ["enrollment_id", "status", "priority", "queued_seq"], unique=False
        )

    op.create_table(
        "device_certificates",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_request_id", sa.String(length=36), nullable=True),
        sa.Column("enrollment_id", sa.String(length=400), nullable=True),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_device_certificates_enrollment_id_enrollments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_request_id"],
            ["enrollment_requests.id"],
            name=op.f("fk_device_certificates_enrollment_request_id_enrollment_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_device_certificates_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_device_certificates")),
    )
    with op.batch_alter_table("device_certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_certificates_enrollment_id"), ["enrollment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_certificates_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_certificates_org_id"))
        batch_op.drop_index(batch_op.f("ix_device_certificates_enrollment_id"))

    op.drop_table("device_certificates")
    with op.batch_alter_table("command_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_command_deliveries_next")
        batch_op.drop_index("ix_command_deliveries_command")

    op.drop_table("command_deliveries")
    with op.batch_alter_table("ade_devices", schema=None) as batch_op:
        batch_op.drop_index("ix_ade_devices_serial")
        batch_op.drop_index("ix_ade_devices_retry")
        batch_op.drop_index(batch_op.f("ix_ade_devices_profile_id"))
        batch_op.drop_index(batch_op.f("ix_ade_devices_org_id"))

    op.drop_table("ade_devices")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_org_id"))
        batch_op.drop_index("ix_webhook_deliveries_due")

    op.drop_table("webhook_deliveries")
    op.drop_table("user_credentials")
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_assignments_role_definition_id"))
        batch_op.drop_index(batch_op.f("ix_role_assignments_org_id"))

    op.drop_table("role_assignments")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index("ix_group_members_member")

    op.drop_table("group_members")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollments_org_id"))
        batch_op.drop_index(batch_op.f("ix_enrollments_device_id"))

    op.drop_table("enrollments")
    with op.batch_alter_table("enrollment_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollment_failures_org_id"))

    op.drop_table("enrollment_failures")
    with op.batch_alter_table("api_client_passwords", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_client_passwords_client_id"))

    op.drop_table("api_client_passwords")
    op.drop_table("api_client_keys")
    with op.batch_alter_table("ade_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ade_profiles_token_id"))
        batch_op.drop_index(batch_op.f("ix_ade_profiles_org_id"))

    op.drop_table("ade_profiles")
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_subscriptions_org_id"))

    op.drop_table("webhook_subscriptions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_org_id"))

    op.drop_table("users")
    op.drop_table("role_scope_tags")
    with op.batch_alter_table("role_definitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_definitions_org_id"))

    op.drop_table("role_definitions")
    with op.batch_alter_table("push_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_certificates_org_id"))

    op.drop_table("push_certificates")
    with op.batch_alter_table("provisioning_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provisioning_tokens_org_id"))

    op.drop_table("provisioning_tokens")
    with op.batch_alter_table("oauth_signing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_signing_keys_org_id"))

    op.drop_table("oauth_signing_keys")
    with op.batch_alter_table("key_pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_pairs_org_id"))

    op.drop_table("key_pairs")
    op.drop_table("identity_provider_settings")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_groups_org_id"))

    op.drop_table("groups")
    with op.batch_alter_table("enrollment_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollment_requests_org_id"))

    op.drop_table("enrollment_requests")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_serial_number"))
        batch_op.drop_index(batch_op.f("ix_devices_org_id"))

    op.drop_table("devices")
    with op.batch_alter_table("device_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_codes_org_id"))

    op.drop_table("device_codes")
    with op.batch_alter_table("dep_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dep_tokens_org_id"))

    op.drop_table("dep_tokens")
    op.drop_table("data_sharing_consents")
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commands_org_id"))

    op.drop_table("commands")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_time")
        batch_op.drop_index(batch_op.f("ix_audit_log_org_id"))
        batch_op.drop_index("ix_audit_log_correlation")
        batch_op.drop_index("ix_audit_log_category_time")
        batch_op.drop_index("ix_audit_log_actor")
        batch_op.drop_index("ix_audit_log_activity_type")

    op.drop_table("audit_log")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_org_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_clients_org_id"))

    op.drop_table("api_clients")
    with op.batch_alter_table("scope_tag_links", schema=None) as batch_op:
        batch_op.drop_index("ix_scope_tag_links_tag")

    op.drop_table("scope_tag_links")
    op.drop_table("organizations")
    with op.batch_alter_table("oauth_seen_assertions", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_seen_assertions_expires")

    op.drop_table("oauth_seen_assertions")
    with op.batch_alter_table("checkin_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_messages_enrollment_id"))

    op.drop_table("checkin_messages")
