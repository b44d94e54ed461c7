"""Corporate device identifiers as Graph beta `importedDeviceIdentities`, plus Muster's CSV upload and bulk delete.

Seeds: seed-catalog-A §2.4 CID-01..18; property names from anchors.md (importedDeviceIdentity). Import answers carry
one `importedDeviceIdentityResult` per item (`status`, and Muster's `error` saying why an item was not imported).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from muster.domain.corporate_identifiers import MAX_CSV_BYTES, IdentityInput
from muster.domain.errors import InvalidInput
from muster.domain.rbac import Permission, Principal
from muster.protocols.odata import next_link, parse_query_options
from muster.services.corporate_identifiers import MAX_ITEMS_PER_CALL, ImportedIdentityRow, ImportOutcome
from muster.web.admin.collections import ODATA_QUERY_OPTIONS
from muster.web.admin.deps import DEVICE_MANAGEMENT, container, forbid, require

router = APIRouter(prefix=f"{DEVICE_MANAGEMENT}/importedDeviceIdentities", tags=["importedDeviceIdentities"])

Reader = Annotated[Principal, Depends(require(Permission.CORPORATE_DEVICE_IDENTIFIERS_READ))]
Creator = Annotated[Principal, Depends(require(Permission.CORPORATE_DEVICE_IDENTIFIERS_CREATE))]
Deleter = Annotated[Principal, Depends(require(Permission.CORPORATE_DEVICE_IDENTIFIERS_DELETE))]
GRAPH_TYPE = "#microsoft.graph.importedDeviceIdentity"
RESULT_TYPE = "#microsoft.graph.importedDeviceIdentityResult"
PROPERTIES = frozenset(
    {
        "id",
        "importedDeviceIdentifier",
        "importedDeviceIdentityType",
        "description",
        "enrollmentState",
        "platform",
        "createdDateTime",
        "lastModifiedDateTime",
        "lastContactedDateTime",
    }
)
# Generous bounds: an item over the rules' limits gets its own error; only absurd ones refuse the request.
_MAX_TEXT = 1000


class IdentityBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Graph clients send @odata.type and read-only properties

    importedDeviceIdentifier: str = Field(max_length=_MAX_TEXT)
    importedDeviceIdentityType: str = Field(max_length=40)
    description: str | None = Field(default=None, max_length=_MAX_TEXT)
    platform: str | None = Field(default=None, max_length=40)

    def given(self) -> IdentityInput:
        return IdentityInput(
            self.importedDeviceIdentityType, self.importedDeviceIdentifier, self.description, self.platform
        )


class IdentityList(BaseModel):
    importedDeviceIdentities: list[IdentityBody] = Field(max_length=MAX_ITEMS_PER_CALL)

    def given(self) -> list[IdentityInput]:
        return [item.given() for item in self.importedDeviceIdentities]


class ImportList(IdentityList):
    overwriteImportedDeviceIdentities: bool = False


@lru_cache(maxsize=1024)  # an import's rows share their timestamps: 50,000 results, a handful of values
def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def graph_identity(row: ImportedIdentityRow) -> dict[str, Any]:
    return {
        "@odata.type": GRAPH_TYPE,
        "id": row.id,
        "importedDeviceIdentifier": row.identifier,
        "importedDeviceIdentityType": row.identity_type,
        "description": row.description,
        "enrollmentState": row.enrollment_state,
        "platform": row.platform,
        "createdDateTime": _time(row.created_at),
        "lastModifiedDateTime": _time(row.updated_at),
        "lastContactedDateTime": _time(row.last_contacted_at),
    }


def graph_result(outcome: ImportOutcome) -> dict[str, Any]:
    given = outcome.given
    found = (
        graph_identity(outcome.row)
        if outcome.row
        else {
            "id": None,
            "importedDeviceIdentifier": given.identifier,
            "importedDeviceIdentityType": given.identity_type,
            "description": given.details,
            "platform": given.platform,
        }
    )
    return found | {"@odata.type": RESULT_TYPE, "status": outcome.succeeded, "error": outcome.error}


def _json(body: dict[str, Any]) -> Response:
    # orjson: an answer of 50,000 results would take FastAPI's generic encoder about a second
    return Response(orjson.dumps(body), media_type="application/json")


def _results(outcomes: list[ImportOutcome]) -> Response:
    return _json({"value": [graph_result(outcome) for outcome in outcomes]})


@router.get("", dependencies=[ODATA_QUERY_OPTIONS])
async def list_imported_device_identities(request: Request, admin: Reader) -> dict[str, Any]:
    options = parse_query_options(dict(request.query_params))
    unknown = [name for name in options.select if name not in PROPERTIES]
    if unknown:
        raise InvalidInput(f"$select: unknown property {unknown[0]!r}")
    rows, token, total = await container(request).corporate_identifiers.page(admin.org_id, options)
    page: dict[str, Any] = {
        "@odata.context": f"{request.base_url}graph/beta/$metadata#deviceManagement/importedDeviceIdentities"
    }
    if total is not None:
        page["@odata.count"] = total
    page["value"] = [_selected(graph_identity(row), options.select) for row in rows]
    if token:
        page["@odata.nextLink"] = next_link(str(request.url.replace(query="")), dict(request.query_params), token)
    return page


def _selected(item: dict[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if not select or name in select or name.startswith("@")}


@router.post("", status_code=201)
async def create_imported_device_identity(request: Request, body: IdentityBody, admin: Creator) -> dict[str, Any]:
    """CID-09: one identifier, entered by hand."""
    return graph_identity(await container(request).corporate_identifiers.create(admin.org_id, body.given()))


def _may_overwrite(admin: Principal, overwrite: bool) -> None:
    """Overwriting details changes existing identities: it needs the Update permission too."""
    permission = Permission.CORPORATE_DEVICE_IDENTIFIERS_UPDATE
    if overwrite and not admin.can(permission):
        forbid(f"{admin.display_name} lacks the permission {permission.value}, which overwriting needs")


@router.post("/importDeviceIdentityList")
async def import_device_identity_list(request: Request, body: ImportList, admin: Creator) -> Response:
    """Up to 50,000 identities per call, each with its own result; valid ones are kept whatever the others hold."""
    _may_overwrite(admin, body.overwriteImportedDeviceIdentities)
    outcomes = await container(request).corporate_identifiers.import_list(
        admin.org_id, body.given(), overwrite=body.overwriteImportedDeviceIdentities, actor=admin.display_name
    )
    return _results(outcomes)


@router.post("/importCsv")
async def import_csv(
    request: Request,
    admin: Creator,
    importedDeviceIdentityType: Annotated[
        str, Query(max_length=40, description="imei, serialNumber or manufacturerModelSerial")
    ],
    overwrite: bool = False,
) -> Response:
    """Muster-only: a CSV file (text/csv body, no header, `identifier,details`; 5,000 rows, 5 MB at most)."""
    _may_overwrite(admin, overwrite)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
        raise InvalidInput("send the CSV file as the body, with Content-Type: text/csv")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_CSV_BYTES:
            raise InvalidInput(f"the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB; nothing was imported")
    outcomes = await container(request).corporate_identifiers.import_csv(
        admin.org_id, bytes(data), importedDeviceIdentityType, overwrite=overwrite, actor=admin.display_name
    )
    return _results(outcomes)


@router.post("/searchExistingIdentities")
async def search_existing_identities(request: Request, body: IdentityList, admin: Creator) -> Response:
    """Part of the import flow (reviewing duplicates), so it needs _Create; readers list with `$filter`."""
    rows = await container(request).corporate_identifiers.search(admin.org_id, body.given())
    return _json({"value": [graph_identity(row) for row in rows]})


@router.post("/deleteDeviceIdentityList")
async def delete_device_identity_list(request: Request, body: IdentityList, admin: Deleter) -> Response:
    """Muster-only: delete by type and identifier (CID-17); `status` tells whether each was there."""
    deleted = await container(request).corporate_identifiers.delete_list(
        admin.org_id, body.given(), actor=admin.display_name
    )
    items = body.importedDeviceIdentities
    return _json(
        {
            "value": [
                {
                    "importedDeviceIdentifier": item.importedDeviceIdentifier,
                    "importedDeviceIdentityType": item.importedDeviceIdentityType,
                    "status": found,
                }
                for item, found in zip(items, deleted, strict=True)
            ]
        }
    )


@router.get("/{identity_id}")
async def get_imported_device_identity(request: Request, identity_id: str, admin: Reader) -> dict[str, Any]:
    return graph_identity(await container(request).corporate_identifiers.get(admin.org_id, identity_id))


@router.delete("/{identity_id}", status_code=204)
async def delete_imported_device_identity(request: Request, identity_id: str, admin: Deleter) -> Response:
    """CID-17: an enrolled device keeps its ownership."""
    await container(request).corporate_identifiers.delete(admin.org_id, identity_id)
    return Response(status_code=204)
