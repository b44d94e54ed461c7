"""Tables of corporate device identifiers (Graph `importedDeviceIdentity`) and device enrollment managers.

Seeds: seed-catalog-A E16, E17 (003_729e51c15a5a5608.txt:1024-1090, 1442-1523).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, UniqueConstraint

from muster.store.tables import metadata, org_column, ts_column

imported_device_identities = Table(
    "imported_device_identities",
    metadata,
    Column("id", String(36), primary_key=True),
    org_column(),
    Column("identity_type", String(30), nullable=False),  # imei | serialNumber | manufacturerModelSerial
    Column("identifier", String(200), nullable=False),  # normalised (muster.domain.corporate_identifiers)
    Column("description", String(128)),  # the seeds' "details": admin-only, never sent to a device
    Column("platform", String(20), nullable=False),
    Column("enrollment_state", String(20), nullable=False),
    ts_column("created_at", nullable=False),
    ts_column("updated_at", nullable=False),
    ts_column("last_contacted_at"),
    # One identity per identifier: imports rely on it (INSERT ... ON CONFLICT), so concurrent imports stay correct.
    # The identifier leads, so a lookup of thousands of identifiers (`identifier IN (...)`) is an index condition
    # whatever the planner believes of org_id and identity_type, which every row of an organisation shares.
    UniqueConstraint("identifier", "identity_type", "org_id", name="uq_imported_device_identities_identifier"),
)

device_enrollment_managers = Table(
    "device_enrollment_managers",
    metadata,
    # A user is a DEM or not: the DEM's id is its user's id. Deleting the user ends its DEM role.
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    org_column(),
    Column("added_by", String(256), nullable=False),
    ts_column("added_at", nullable=False),
)
