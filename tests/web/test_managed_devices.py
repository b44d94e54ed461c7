"""`managedDevices` listing: OData options and `@odata.nextLink` paging through the admin API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from muster.store.tables import DEFAULT_ORG_ID, devices
from tests.harness import DM, running_muster


def _device(n: int) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "org_id": DEFAULT_ORG_ID,
        "udid": f"UDID-{n:04d}",
        "serial_number": f"SN{n:04d}",
        "device_name": f"{'Sales' if n % 3 == 0 else 'Lab'}-{n:03d}",
        "operating_system": "iOS" if n % 2 else "macOS",
        "os_version": f"17.{n % 6}",
        "owner_type": "company",
        "enrollment_type": "profileEnrollment",
        "management_state": "managed",
        "inventory": {},
        "enrolled_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n),
    }


async def test_filter_order_select_and_paging(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        rows = [_device(n) for n in range(57)]
        async with muster.container.engine.begin() as conn:
            await conn.execute(insert(devices), rows)

        query = {
            "$filter": "operatingSystem eq 'ios' and startswith(deviceName,'sales')",
            "$orderby": "enrolledDateTime desc",
            "$select": "id,deviceName,enrolledDateTime",
            "$top": "3",
            "$count": "true",
        }
        page = (await admin.get(f"{DM}/managedDevices", params=query)).json()
        expected = sorted(
            (r for r in rows if r["operating_system"] == "iOS" and str(r["device_name"]).startswith("Sales")),
            key=lambda r: r["enrolled_at"],
            reverse=True,
        )  # type: ignore[arg-type,return-value]
        assert page["@odata.count"] == len(expected)
        names = []
        while True:
            assert set(page["value"][0]) == {"@odata.type", "id", "deviceName", "enrolledDateTime"}
            names += [d["deviceName"] for d in page["value"]]
            if "@odata.nextLink" not in page:
                break
            page = (await admin.get(page["@odata.nextLink"])).json()
        assert names == [r["device_name"] for r in expected]

        everything, url = [], f"{DM}/managedDevices?$top=10"
        while url:
            page = (await admin.get(url)).json()
            everything += [d["serialNumber"] for d in page["value"]]
            url = page.get("@odata.nextLink")
        assert sorted(everything) == sorted(str(r["serial_number"]) for r in rows)

        bad = await admin.get(f"{DM}/managedDevices", params={"$filter": "deviceName eq 'x' and"})
        assert bad.status_code == 400 and "position" in bad.json()["error"]["message"]
        unknown = await admin.get(f"{DM}/managedDevices", params={"$select": "secretKey"})
        assert unknown.status_code == 400
