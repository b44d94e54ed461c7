"""device categories and terms and conditions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TAG_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _org() -> sa.Column[str]:
    return sa.Column("org_id", sa.String(length=36), nullable=False)


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f(f"fk_{table}_org_id_organizations"))


def upgrade() -> None:
    op.create_table(
        "device_categories",
        sa.Column("id", sa.String(length=36), nullable=False),
        _org(),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("name_key", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("scope_tag_ids", TAG_LIST, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("device_categories"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_categories")),
        sa.UniqueConstraint("org_id", "name_key", name="uq_device_categories_org_name"),
    )
    op.create_index(op.f("ix_device_categories_org_id"), "device_categories", ["org_id"], unique=False)
    op.create_table(
        "terms_and_conditions",
        sa.Column("id", sa.String(length=36), nullable=False),
        _org(),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("title", sa.String(length=256), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("acceptance_statement", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("scope_tag_ids", TAG_LIST, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("terms_and_conditions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_and_conditions")),
    )
    op.create_index(op.f("ix_terms_and_conditions_org_id"), "terms_and_conditions", ["org_id"], unique=False)
    op.create_table(
        "terms_acceptances",
        sa.Column("terms_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _org(),
        sa.Column("user_principal_name", sa.String(length=320), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("terms_acceptances"),
        sa.ForeignKeyConstraint(
            ["terms_id"],
            ["terms_and_conditions.id"],
            name=op.f("fk_terms_acceptances_terms_id_terms_and_conditions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("terms_id", "user_id", "version", name=op.f("pk_terms_acceptances")),
    )
    op.create_index(op.f("ix_terms_acceptances_org_id"), "terms_acceptances", ["org_id"], unique=False)
    op.create_table(
        "terms_declines",
        sa.Column("id", sa.String(length=36), nullable=False),
        _org(),
        sa.Column("terms_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("user_principal_name", sa.String(length=320), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("terms_declines"),
        sa.ForeignKeyConstraint(
            ["terms_id"],
            ["terms_and_conditions.id"],
            name=op.f("fk_terms_declines_terms_id_terms_and_conditions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_declines")),
    )
    op.create_index(op.f("ix_terms_declines_org_id"), "terms_declines", ["org_id"], unique=False)
    op.create_index("ix_terms_declines_terms_user", "terms_declines", ["terms_id", "user_id"], unique=False)
    op.create_index("ix_terms_declines_org_declined", "terms_declines", ["org_id", "declined_at"], unique=False)


def downgrade() -> None:
    op.drop_table("terms_declines")
    op.drop_table("terms_acceptances")
    op.drop_table("terms_and_conditions")
    op.drop_table("device_categories")
