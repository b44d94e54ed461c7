"""CSV import of users: an upsert by userPrincipalName, all rows or none.

Columns (header row required, names case-insensitive, any order, unknown columns refused): userPrincipalName
(required), displayName, givenName, surname, mail, department, jobTitle, accountEnabled (true/false, yes/no,
1/0), groups (display names of assigned groups, separated by semicolons). An empty cell leaves an existing user's
value as it is, so importing the same file twice changes nothing. Listed groups are added to; a user is never
removed from a group by an import. Every row is checked before anything is written; the errors name their row
(the header is row 1, as a spreadsheet shows it).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from muster.domain.clock import Clock
from muster.domain.errors import InvalidInput
from muster.services.audit import AuditSink
from muster.services.directory import ASSIGNED, Directory

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_ERRORS_SHOWN = 20
COLUMNS = {
    "userprincipalname": ("user_principal_name", 320),
    "displayname": ("display_name", 256),
    "givenname": ("given_name", 128),
    "surname": ("surname", 128),
    "mail": ("mail", 320),
    "department": ("department", 128),
    "jobtitle": ("job_title", 128),
    "accountenabled": ("account_enabled", 5),
    "groups": ("groups", 8192),
}
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class UserImportStore(Protocol):
    async def import_users(
        self, saved: Sequence[tuple[Mapping[str, Any], Mapping[str, bool]]], memberships: Sequence[tuple[str, str]]
    ) -> int:
        """Save users (each with its dynamic-group memberships) and add (group id, user id) memberships not yet
        there, in one transaction; returns how many memberships were added."""


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int
    updated: int
    unchanged: int
    memberships_added: int


class UserImport:
    def __init__(self, *, directory: Directory, store: UserImportStore, audit: AuditSink, clock: Clock) -> None:
        self._directory = directory
        self._store = store
        self._audit = audit
        self._clock = clock

    async def run(self, org_id: str, data: bytes, *, actor: str) -> ImportResult:
        rows = parse_user_csv(data)
        errors: list[str] = []
        groups: dict[str, str] = {}
        for number, row in rows:
            for name in row.get("groups", []):
                if name.lower() not in groups:
                    group = await self._directory.group_by_name(org_id, name)
                    if group is None or group["membership_type"] != ASSIGNED:
                        why = "no such group" if group is None else "it has dynamic membership"
                        errors.append(f"row {number}: cannot add to group {name!r}: {why}")
                        continue
                    groups[name.lower()] = group["id"]
        _raise_if_any(errors)

        now, counts = self._clock.now(), {"created": 0, "updated": 0, "unchanged": 0}
        known = {user["user_principal_name"].lower(): user for user in await self._directory.everyone("user", org_id)}
        dynamic_memberships = await self._directory.user_rules(org_id)
        users: list[tuple[Mapping[str, Any], Mapping[str, bool]]] = []
        memberships: list[tuple[str, str]] = []
        for _, row in rows:
            fields = {k: v for k, v in row.items() if k != "groups"}
            existing = known.get(fields["user_principal_name"].lower())
            if existing is None:
                user = {"account_enabled": True, **fields, "id": str(uuid.uuid4()), "org_id": org_id}
                user |= {"source": "csv", "created_at": now, "updated_at": now}
                counts["created"] += 1
            elif all(existing.get(k) == v for k, v in fields.items() if k != "user_principal_name"):
                user, counts["unchanged"] = existing, counts["unchanged"] + 1
            else:
                user = {**existing, **fields, "user_principal_name": existing["user_principal_name"]}
                user["updated_at"] = now
                counts["updated"] += 1
            users.append((user, dynamic_memberships(user)))
            memberships += [(groups[name.lower()], user["id"]) for name in row.get("groups", [])]
        added = await self._store.import_users(users, memberships)
        result = ImportResult(len(rows), memberships_added=added, **counts)
        await self._audit.admin_event(actor=actor, activity="importUsers", target=None, detail=vars(result))
        return result


def parse_user_csv(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(row number, column values) for every data row, or InvalidInput listing every faulty row."""
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"the CSV file is not UTF-8 (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        unknown = [name for name in header if name not in COLUMNS]
        if "userprincipalname" not in header or unknown or len(set(header)) != len(header):
            raise InvalidInput(
                "row 1: the header must name userPrincipalName and only these columns, once each: "
                + ", ".join(sorted(COLUMNS))
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        rows: list[tuple[int, dict[str, Any]]] = []
        errors: list[str] = []
        seen: dict[str, int] = {}
        for values in reader:
            number = reader.line_num
            if len(rows) >= MAX_ROWS:
                raise InvalidInput(f"the CSV file has more than {MAX_ROWS} rows")
            if not any(value.strip() for value in values):
                continue
            try:
                row = _row(header, values)
            except ValueError as error:
                errors.append(f"row {number}: {error}")
                continue
            upn = row["user_principal_name"].lower()
            if upn in seen:
                errors.append(f"row {number}: userPrincipalName repeats row {seen[upn]}")
            seen[upn] = number
            rows.append((number, row))
    except csv.Error as error:
        raise InvalidInput(f"row {reader.line_num}: not valid CSV: {error}") from None
    _raise_if_any(errors)
    return rows


def _row(header: list[str], values: list[str]) -> dict[str, Any]:
    if len(values) != len(header):
        raise ValueError(f"{len(values)} cells where the header names {len(header)} columns")
    row: dict[str, Any] = {}
    for name, raw in zip(header, values, strict=True):
        column, limit = COLUMNS[name]
        value = raw.strip()
        if len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
        if not value:
            continue
        if column == "account_enabled":
            if value.lower() not in _BOOLEANS:
                raise ValueError(f"accountEnabled must be true or false, not {value!r}")
            row[column] = _BOOLEANS[value.lower()]
        elif column == "groups":
            row[column] = list(dict.fromkeys(g.strip() for g in value.split(";") if g.strip()))
        else:
            row[column] = value
    upn = row.get("user_principal_name", "")
    if "@" not in upn or any(c.isspace() for c in upn):
        raise ValueError(f"userPrincipalName must have the form name@domain, not {upn!r}")
    return row


def _raise_if_any(errors: list[str]) -> None:
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise InvalidInput(f"nothing imported: {len(errors)} row(s) have errors: {shown}{more}")
