"""The devices of a simulated ABM organisation: which MDM server each is assigned to, the Device records that
fetch and sync render, their opaque cursors, and the event log that sync pages through.

Spec: apple-protocols.md §7.3 (fetch, sync, cursors, Device objects). Fleets of 200,000 devices are kept as a
few compact tables; device records are rendered when asked for. `muster.simulators.abm` puts the DEP API,
the administrator's actions and fault injection in front of this.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import struct
import uuid
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from muster.protocols.apple import dep, dep_token
from muster.protocols.apple.dep import DepProfile, ProfileStatus
from muster.protocols.apple.dep_errors import DepErrorCode
from muster.protocols.apple.dep_token import DepCredentials

CURSOR_LIFETIME = timedelta(days=7)  # §7.3: EXPIRED_CURSOR after 7 days


@dataclass(frozen=True)
class Family:
    """What a device family looks like in DEP device records (§7.3)."""

    device_family: str
    os: str
    models: tuple[str, ...]


FAMILIES = {
    "iPhone": Family("iPhone", "iOS", ("iPhone 15", "iPhone 15 Pro", "iPhone 14", "iPhone SE (3rd generation)")),
    "iPad": Family("iPad", "iPadOS", ("iPad (10th generation)", "iPad Air (5th generation)", "iPad Pro 11-inch")),
    "Mac": Family("Mac", "OSX", ("MacBook Air (M2, 2022)", "MacBook Pro (14-inch, 2023)", "Mac mini (2023)")),
    "AppleTV": Family("AppleTV", "tvOS", ("Apple TV 4K (3rd generation)",)),
    "Vision": Family("Vision", "visionOS", ("Apple Vision Pro",)),
    "iPod": Family("iPod", "iOS", ("iPod touch (7th generation)",)),
}
_FAMILY_NAMES = tuple(FAMILIES)
_COLORS = ("SPACE GRAY", "SILVER", "GOLD", "MIDNIGHT", "STARLIGHT", "BLUE")
_CAPACITIES = ("64GB", "128GB", "256GB", "512GB")
_OPS = (dep.OpType.ADDED, dep.OpType.MODIFIED, dep.OpType.DELETED)
_ADDED, _MODIFIED, _DELETED = range(3)
# cursor = kind, fetch position, event sequence, creation time; then a MAC so that clients cannot forge one
_CURSOR = struct.Struct(">BQQd")
_CURSOR_MAC_BYTES = 16
_FETCHING, _FETCHED, _SYNCING = range(3)
# per-device profile state: (profile_uuid, profile_status, assigned at, pushed at) as UNIX times
_ProfileState = tuple[str | None, str, float | None, float | None]


class CursorRefused(Exception):
    """A fetch or sync request that Apple answers with 400 and `code` (§7.3)."""

    def __init__(self, code: DepErrorCode) -> None:
        super().__init__(code)
        self.code = code


class ServerHandle:
    """One "MDM server" in ABM (ABM-02): the uploaded certificate, the current token, the devices assigned
    to it (with the event log sync reads) and the profiles defined through its token. Set `terms_signed`
    to False for `T_C_NOT_SIGNED`, `access_denied` to True for `ACCESS_DENIED`."""

    def __init__(self, name: str, families: dict[str, int], clock: Callable[[], datetime], admin_id: str) -> None:
        self.name = name
        self.server_uuid = str(uuid.uuid4()).upper()
        self.certificate: x509.Certificate | None = None
        self.credentials: DepCredentials | None = None
        self.terms_signed = True
        self.access_denied = False
        self.profiles: dict[str, DepProfile] = {}
        self._families = families  # serial -> family index, shared by the organisation
        self._clock = clock
        self._admin_id = admin_id
        self._order: list[str] = []  # serials in assignment order; entries of departed devices stay behind
        self._position: dict[str, int] = {}  # serial -> its live index in _order
        self._batch_starts: list[int] = []
        self._batch_times: list[str] = []  # formatted once: every device record of the batch shows it
        self._profile_state: dict[str, _ProfileState] = {}
        self._event_serials: list[str] = []
        self._event_ops = bytearray()
        self._event_times = array("d")
        self._cursor_key = os.urandom(32)
        self._echoes = 0

    def upload_certificate(self, certificate: x509.Certificate | bytes) -> None:
        """Upload the MDM server's public key certificate (PEM or loaded), as in ABM-02."""
        if isinstance(certificate, bytes):
            certificate = x509.load_pem_x509_certificate(certificate)
        self.certificate = certificate

    def download_token(self, *, cipher: str = "aes128", valid_for: timedelta = timedelta(days=365)) -> bytes:
        """A new `.p7m` server token; the previous token and its sessions stop working at once (ADE-10)."""
        if self.certificate is None:
            raise ValueError("upload the MDM server's public key certificate first")
        self.credentials = DepCredentials(
            consumer_key="CK_" + os.urandom(48).hex(),
            consumer_secret="CS_" + os.urandom(20).hex(),
            access_token="AT_O" + str(random.randrange(10**15, 10**16)) + "O" + os.urandom(32).hex(),
            access_secret="AS_" + os.urandom(20).hex(),
            # whole seconds: the token's JSON carries no more
            access_token_expiry=(self._clock() + valid_for).replace(microsecond=0),
        )
        return dep_token.build_server_token(self.credentials, recipient_certificate=self.certificate, cipher=cipher)

    @property
    def device_count(self) -> int:
        return len(self._position)

    def has(self, serial: str) -> bool:
        return serial in self._position

    def accepts(self, access_token: str, now: datetime) -> bool:
        credentials = self.credentials
        return credentials is not None and credentials.access_token == access_token and not credentials.expired(now)

    # --- devices and their profile state --------------------------------------------------------------

    def add_devices(self, serials: Sequence[str], now: datetime) -> None:
        start = len(self._order)
        self._batch_starts.append(start)
        self._batch_times.append(dep.format_time(now))
        self._order.extend(serials)
        self._position.update(zip(serials, range(start, start + len(serials)), strict=True))
        self._record_events(serials, _ADDED, now)

    def remove_device(self, serial: str, now: datetime) -> None:
        del self._position[serial]
        self._profile_state.pop(serial, None)
        self._record_events([serial], _DELETED, now)

    def assign_profile(self, serial: str, profile_uuid: str, now: datetime) -> None:
        self._set_profile(serial, (profile_uuid, ProfileStatus.ASSIGNED, now.timestamp(), None), now)

    def remove_profile(self, serial: str, now: datetime) -> None:
        self._set_profile(serial, (None, ProfileStatus.REMOVED, None, None), now)

    def mark_pushed(self, serial: str, now: datetime) -> None:
        """The device downloaded its assigned profile; other states are left as they are."""
        state = self._profile_state.get(serial)
        if state is not None and state[1] == ProfileStatus.ASSIGNED:
            self._set_profile(serial, (state[0], ProfileStatus.PUSHED, state[2], now.timestamp()), now)

    def _set_profile(self, serial: str, state: _ProfileState, now: datetime) -> None:
        self._profile_state[serial] = state
        self._record_events([serial], _MODIFIED, now)

    def _record_events(self, serials: Sequence[str], op: int, now: datetime) -> None:
        self._event_serials.extend(serials)
        self._event_ops.extend(bytes([op]) * len(serials))
        self._event_times.extend([now.timestamp()] * len(serials))

    def record(self, serial: str, version: int) -> dict[str, Any]:
        """The Device object as fetch shows it now; fields gated by protocol version as Apple does (§7.2)."""
        record: dict[str, Any] = {"serial_number": serial}
        family_index = self._families.get(serial)
        if family_index is not None:
            record.update(_traits(serial, FAMILIES[_FAMILY_NAMES[family_index]], version))
        position = self._position.get(serial)
        if position is None:
            return record
        batch = bisect_right(self._batch_starts, position) - 1
        record["device_assigned_date"] = self._batch_times[batch]
        record["device_assigned_by"] = self._admin_id
        record.update(_profile_fields(self._profile_state.get(serial)))
        return record

    # --- cursors, fetch and sync (§7.3) -------------------------------------------------------------

    def invalidate_cursors(self) -> None:
        """Every cursor handed out so far becomes `INVALID_CURSOR`."""
        self._cursor_key = os.urandom(32)

    def echo_cursor(self, times: int) -> None:
        """The next `times` syncs echo the request cursor with `more_to_follow` true and no devices."""
        self._echoes += times

    def _cursor(self, kind: int, position: int, sequence: int, now: datetime) -> str:
        payload = _CURSOR.pack(kind, position, sequence, now.timestamp())
        return (payload + self._mac(payload)).hex()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._cursor_key, payload, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]

    def _read_cursor(self, cursor: str, now: datetime) -> tuple[int, int, int]:
        try:
            raw = bytes.fromhex(cursor)
        except ValueError:
            raise CursorRefused(DepErrorCode.INVALID_CURSOR) from None
        payload, mac = raw[: _CURSOR.size], raw[_CURSOR.size :]
        if len(raw) != _CURSOR.size + _CURSOR_MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise CursorRefused(DepErrorCode.INVALID_CURSOR)
        kind, position, sequence, created = _CURSOR.unpack(payload)
        if now - datetime.fromtimestamp(created, UTC) > CURSOR_LIFETIME:
            raise CursorRefused(DepErrorCode.EXPIRED_CURSOR)
        return kind, position, sequence

    def fetch_page(self, cursor: str | None, limit: int, version: int, now: datetime) -> dict[str, Any]:
        """One page of `POST /server/devices`, as JSON; a bad cursor raises `CursorRefused`."""
        if cursor is None:
            position, sequence = 0, len(self._event_ops)  # sync later reports what changes from here on
        else:
            kind, position, sequence = self._read_cursor(cursor, now)
            if kind != _FETCHING:
                raise CursorRefused(DepErrorCode.EXHAUSTED_CURSOR)
        devices: list[dict[str, Any]] = []
        while position < len(self._order) and len(devices) < limit:
            serial = self._order[position]
            if self._position.get(serial) == position:
                devices.append(self.record(serial, version))
            position += 1
        while position < len(self._order) and self._position.get(self._order[position]) != position:
            position += 1  # skip departed devices, so that more_to_follow is exact
        more = position < len(self._order)
        next_cursor = self._cursor(_FETCHING if more else _FETCHED, position, sequence, now)
        return _page(next_cursor, devices, more, now)

    def sync_page(self, cursor: str | None, limit: int, version: int, now: datetime) -> dict[str, Any]:
        """One page of `POST /devices/sync`: the changes since `cursor`, oldest first."""
        if cursor is None:
            raise CursorRefused(DepErrorCode.CURSOR_REQUIRED)
        _, _, sequence = self._read_cursor(cursor, now)
        if self._echoes:
            self._echoes -= 1
            return _page(cursor, [], True, now)  # Apple's echoed cursor (anchors §3.2)
        end = min(sequence + limit, len(self._event_ops))
        devices = [self._event_record(index, version) for index in range(sequence, end)]
        more = end < len(self._event_ops)
        return _page(self._cursor(_SYNCING, 0, end, now), devices, more, now)

    def _event_record(self, index: int, version: int) -> dict[str, Any]:
        record = self.record(self._event_serials[index], version)
        record["op_type"] = _OPS[self._event_ops[index]]
        record["op_date"] = dep.format_time(datetime.fromtimestamp(self._event_times[index], UTC))
        return record


class Fleet:
    """The organisation's devices: each serial's family (kept after the device leaves, so that earlier sync
    records still render) and the MDM servers the devices are assigned to."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.servers: list[ServerHandle] = []
        self._families: dict[str, int] = {}  # serial -> family index, shared with every server
        self._clock = clock

    def add_server(self, name: str, admin_id: str, certificate: x509.Certificate | bytes | None) -> ServerHandle:
        server = ServerHandle(name, self._families, self._clock, admin_id)
        if certificate is not None:
            server.upload_certificate(certificate)
        self.servers.append(server)
        return server

    def seed(self, server: ServerHandle, count: int, families: Sequence[str], seed: int) -> list[str]:
        """`count` new devices for `server`, round-robin over `families`, in assignment order."""
        codes = [_FAMILY_NAMES.index(name) for name in families]
        generator = random.Random(seed)
        serials: list[str] = []
        for index in range(count):
            serial = _serial(generator)
            while serial in self._families:
                serial = _serial(generator)
            self._families[serial] = codes[index % len(codes)]
            serials.append(serial)
        server.add_devices(serials, self._clock())
        return serials

    def assign(self, server: ServerHandle, serials: Iterable[str], family: str) -> None:
        """Move known devices to `server`; unknown ones arrive as new devices of `family`."""
        code = _FAMILY_NAMES.index(family)
        moved: list[str] = []
        for serial in dict.fromkeys(serials):
            current = self.server_of(serial)
            if current is server:
                continue
            if current is not None:
                current.remove_device(serial, self._clock())
            self._families.setdefault(serial, code)
            moved.append(serial)
        if moved:
            server.add_devices(moved, self._clock())

    def unassign(self, serials: Iterable[str]) -> None:
        for serial in serials:
            current = self.server_of(serial)
            if current is not None:
                current.remove_device(serial, self._clock())

    def mark_pushed(self, serials: Iterable[str]) -> None:
        for serial in serials:
            server = self.server_of(serial)
            if server is not None:
                server.mark_pushed(serial, self._clock())

    def server_of(self, serial: str) -> ServerHandle | None:
        return next((server for server in self.servers if server.has(serial)), None)


def _serial(generator: random.Random) -> str:
    # Twelve characters like Apple's; hexadecimal keeps generation of large fleets fast.
    return f"F{generator.getrandbits(44):011X}"


def _traits(serial: str, family: Family, version: int) -> dict[str, Any]:
    """Model, colour and capacity derived from the serial: deterministic, and nothing stored per device."""
    digest = hashlib.blake2b(serial.encode(), digest_size=3).digest()
    model = family.models[digest[0] % len(family.models)]
    color = _COLORS[digest[1] % len(_COLORS)]
    traits: dict[str, Any] = {
        "model": model,
        "description": f"{model.upper()} {color} {_CAPACITIES[digest[2] % len(_CAPACITIES)]}",
        "color": color,
    }
    if version >= 2:
        traits["os"] = "iOS" if family.os == "iPadOS" and version < 7 else family.os
        traits["device_family"] = family.device_family
    return traits


def _profile_fields(state: _ProfileState | None) -> dict[str, Any]:
    if state is None:
        return {"profile_status": ProfileStatus.EMPTY}
    profile_uuid, status, assigned, pushed = state
    fields: dict[str, Any] = {"profile_status": status}
    if profile_uuid is not None:
        fields["profile_uuid"] = profile_uuid
    for name, moment in (("profile_assign_time", assigned), ("profile_push_time", pushed)):
        if moment is not None:
            fields[name] = dep.format_time(datetime.fromtimestamp(moment, UTC))
    return fields


def _page(cursor: str, devices: list[dict[str, Any]], more: bool, now: datetime) -> dict[str, Any]:
    return {"cursor": cursor, "devices": devices, "fetched_until": dep.format_time(now), "more_to_follow": more}
