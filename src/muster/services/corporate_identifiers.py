"""Corporate device identifiers (Graph `importedDeviceIdentities`): add, import (list or CSV), search, delete, and
the match that marks an enrolling device corporate-owned.

Seeds: seed-catalog-A §2.4 CID-01..18 (003_729e51c15a5a5608.txt:1024-1090). Every valid item of an import is
kept whatever the others hold (per-item results); only whole-file rules (CID-05, CID-06) refuse a whole CSV.
An identifier already imported with other details is listed for review and changed only when the import asks
to overwrite (CID-07); an identifier repeated within one import is taken from its first occurrence (CID-08).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from muster.domain.clock import Clock
from muster.domain.corporate_identifiers import (
    CsvRejected,
    IdentifierError,
    IdentityInput,
    Key,
    ValidIdentity,
    identity_type,
    normalise,
    parse_csv,
    validated,
)
from muster.domain.errors import Conflict, InvalidInput, NotFound
from muster.protocols.odata import QueryOptions
from muster.services.audit import AuditSink

MAX_ITEMS_PER_CALL = 50_000  # a 1,000,000-identifier import is 20 calls (see docs/corporate-identifiers.md)


@dataclass(frozen=True, slots=True)
class ImportedIdentityRow:
    id: str
    org_id: str
    identity_type: str
    identifier: str
    description: str | None
    platform: str
    enrollment_state: str
    created_at: datetime
    updated_at: datetime
    last_contacted_at: datetime | None


class Stored(StrEnum):
    """What an import did with one valid identity."""

    CREATED = "created"
    UNCHANGED = "unchanged"  # already imported with the same details
    OVERWRITTEN = "overwritten"
    DIFFERENT_DETAILS = "differentDetails"  # already imported with other details, kept for review (CID-07)


class CorporateIdentifierStore(Protocol):
    async def page(
        self, org_id: str, options: QueryOptions
    ) -> tuple[list[ImportedIdentityRow], str | None, int | None]: ...

    async def get(self, org_id: str, identity_id: str) -> ImportedIdentityRow | None: ...

    async def import_identities(
        self, org_id: str, identities: Sequence[ValidIdentity], *, overwrite: bool, now: datetime
    ) -> dict[Key, tuple[Stored, ImportedIdentityRow]]:
        """Insert the identities (distinct keys), in one transaction; safe under concurrent imports."""

    async def find(self, org_id: str, keys: Sequence[Key]) -> list[ImportedIdentityRow]: ...

    async def find_match(self, org_id: str, keys: Sequence[Key]) -> ImportedIdentityRow | None:
        """The identity of the first key that was imported."""

    async def mark_contacted(self, identity_id: str, now: datetime, enrolled: bool) -> None: ...

    async def delete(self, org_id: str, identity_id: str) -> bool: ...

    async def delete_keys(self, org_id: str, keys: Sequence[Key]) -> set[Key]:
        """Delete the identities of these keys; the keys that were found."""


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """One item of an import, as the admin sent it, and what became of it."""

    given: IdentityInput
    row: ImportedIdentityRow | None  # stored or already there (for review); None when the item is not valid
    stored: Stored | None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class _Entry:
    unit: str  # "item" or "line"
    position: int  # with `unit`, where the admin finds it ("line 7")
    given: IdentityInput
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.unit} {self.position}"


class CorporateIdentifiers:
    def __init__(self, *, store: CorporateIdentifierStore, audit: AuditSink, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def page(
        self, org_id: str, options: QueryOptions
    ) -> tuple[list[ImportedIdentityRow], str | None, int | None]:
        return await self._store.page(org_id, options)

    async def get(self, org_id: str, identity_id: str) -> ImportedIdentityRow:
        row = await self._store.get(org_id, identity_id)
        if row is None:
            raise NotFound(f"imported device identity {identity_id} not found")
        return row

    async def create(self, org_id: str, given: IdentityInput) -> ImportedIdentityRow:
        """CID-09: one identity; an identifier already imported is a conflict (import with overwrite changes it)."""
        try:
            identity = validated(given)
        except IdentifierError as error:
            raise InvalidInput(str(error)) from None
        stored = await self._store.import_identities(org_id, [identity], overwrite=False, now=self._clock.now())
        state, row = stored.get(identity.key, (None, None))
        if state is not Stored.CREATED or row is None:
            raise Conflict(f"{identity.identity_type} {identity.identifier} is already imported")
        return row

    async def import_list(
        self, org_id: str, items: Sequence[IdentityInput], *, overwrite: bool, actor: str
    ) -> list[ImportOutcome]:
        if len(items) > MAX_ITEMS_PER_CALL:
            raise InvalidInput(f"at most {MAX_ITEMS_PER_CALL} identities per call; split the list")
        entries = [_Entry("item", index, item) for index, item in enumerate(items, start=1)]
        return await self._import(
            org_id, entries, overwrite=overwrite, actor=actor, activity="importDeviceIdentityList"
        )

    async def import_csv(
        self, org_id: str, data: bytes, kind: str, *, overwrite: bool, actor: str
    ) -> list[ImportOutcome]:
        """CID-01..08: a file of one identifier type; whole-file rules refuse it all, row rules only the row."""
        try:
            rows = parse_csv(data, identity_type(kind))
        except (CsvRejected, IdentifierError) as error:
            raise InvalidInput(str(error)) from None
        entries = [_Entry("line", row.line, row.item, row.error) for row in rows]
        return await self._import(org_id, entries, overwrite=overwrite, actor=actor, activity="importCsv")

    async def _import(
        self, org_id: str, entries: Sequence[_Entry], *, overwrite: bool, actor: str, activity: str
    ) -> list[ImportOutcome]:
        first_of: dict[Key, _Entry] = {}
        checked = [(entry, _checked(entry, first_of)) for entry in entries]
        valid = [identity for _, identity in checked if isinstance(identity, ValidIdentity)]
        stored = await self._store.import_identities(org_id, valid, overwrite=overwrite, now=self._clock.now())
        outcomes = [_outcome(entry, identity, stored) for entry, identity in checked]
        counts = {state.value: 0 for state in Stored} | {"notImported": 0}
        for outcome in outcomes:
            counts[outcome.stored.value if outcome.stored else "notImported"] += 1
        await self._audit.admin_event(
            actor=actor,
            activity=activity,
            target=None,
            detail={"items": len(entries), "overwrite": overwrite, **counts},
        )
        return outcomes

    async def search(self, org_id: str, items: Sequence[IdentityInput]) -> list[ImportedIdentityRow]:
        """`searchExistingIdentities`: the imported identities among `items` (items that are not valid match none)."""
        return await self._store.find(org_id, _keys(items))

    async def delete(self, org_id: str, identity_id: str) -> None:
        """CID-17: the device already enrolled keeps its ownership (ownership is stored on the device)."""
        if not await self._store.delete(org_id, identity_id):
            raise NotFound(f"imported device identity {identity_id} not found")

    async def delete_list(self, org_id: str, items: Sequence[IdentityInput], *, actor: str) -> list[bool]:
        """Delete the identities named by type and identifier (CID-17); per item, whether it was there."""
        if len(items) > MAX_ITEMS_PER_CALL:
            raise InvalidInput(f"at most {MAX_ITEMS_PER_CALL} identities per call; split the list")
        keys = [_key(item) for item in items]
        deleted = await self._store.delete_keys(org_id, [key for key in keys if key is not None])
        await self._audit.admin_event(
            actor=actor, activity="deleteDeviceIdentityList", target=None, detail={"deleted": len(deleted)}
        )
        return [key in deleted for key in keys]

    async def find_match(self, org_id: str, keys: Sequence[Key]) -> ImportedIdentityRow | None:
        """The imported identity that makes an enrolling device corporate (keys from `identity_keys`, CID-14)."""
        return await self._store.find_match(org_id, keys)

    async def mark_contacted(self, identity_id: str, *, enrolled: bool) -> None:
        """CID-11: the matched identity's device talked to Muster; `enrolled` when its enrollment completed."""
        await self._store.mark_contacted(identity_id, self._clock.now(), enrolled)


def _checked(entry: _Entry, first_of: dict[Key, _Entry]) -> ValidIdentity | str:
    """The valid identity of an entry, or why it is not imported. Records the first occurrence of each key."""
    if entry.error is not None:
        return entry.error
    try:
        identity = validated(entry.given)
    except IdentifierError as error:
        return f"{entry.label}: {error}"
    first = first_of.setdefault(identity.key, entry)
    if first is not entry:
        return f"{entry.label}: repeats {first.label}; only the first occurrence is used"  # CID-08
    return identity


def _outcome(
    entry: _Entry, identity: ValidIdentity | str, stored: dict[Key, tuple[Stored, ImportedIdentityRow]]
) -> ImportOutcome:
    if isinstance(identity, str):
        return ImportOutcome(entry.given, None, None, identity)
    if identity.key not in stored:  # deleted by someone else between this import's insert and its read
        return ImportOutcome(entry.given, None, None, f"{entry.label}: deleted while being imported; import it again")
    state, row = stored[identity.key]
    if state is Stored.DIFFERENT_DETAILS:
        error = f"{entry.label}: already imported with other details; import with overwrite to replace them"
        return ImportOutcome(entry.given, row, state, error)
    return ImportOutcome(entry.given, row, state)


def _key(item: IdentityInput) -> Key | None:
    try:
        kind = identity_type(item.identity_type)
        return kind, normalise(kind, item.identifier)
    except IdentifierError:
        return None


def _keys(items: Sequence[IdentityInput]) -> list[Key]:
    if len(items) > MAX_ITEMS_PER_CALL:
        raise InvalidInput(f"at most {MAX_ITEMS_PER_CALL} identities per call; split the list")
    return list(dict.fromkeys(key for key in map(_key, items) if key is not None))
