"""Corporate device identifiers (Graph `importedDeviceIdentity`): validation, normalisation, the CSV format and
which imported identities may mark an enrolling device corporate-owned.

Seeds: seed-catalog-A §2.4 CID-01..18 and E16 (003_729e51c15a5a5608.txt:1024-1090), seed-catalog-C §1.14.
Decisions (docs/corporate-identifiers.md): identifiers are stored normalised - IMEIs as their 14 digits (a 15th
Luhn check digit is checked then dropped, A-06), serials trimmed and upper-cased (serials compare without case) -
so an identifier matches however the admin or the device wrote it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

MAX_CSV_ROWS = 5_000  # CID-05 (003_729e51c15a5a5608.txt:1048): exactly 5,000 is accepted
MAX_CSV_BYTES = 5 * 1024 * 1024  # CID-05 (003_729e51c15a5a5608.txt:1050)
MAX_DETAILS_LENGTH = 128  # CID-04 (003_729e51c15a5a5608.txt:1048)
MAX_PART_LENGTH = 64  # one serial, manufacturer or model; far above any real one, and bounded for the index
IMEI_DIGITS = 14  # CID-03 (003_729e51c15a5a5608.txt:1024)


class IdentityType(StrEnum):
    IMEI = "imei"
    SERIAL_NUMBER = "serialNumber"
    MANUFACTURER_MODEL_SERIAL = "manufacturerModelSerial"


class EnrollmentState(StrEnum):
    """CID-11/E16 states (003_729e51c15a5a5608.txt:1082) under Graph's `enrollmentState` names."""

    UNKNOWN = "unknown"
    ENROLLED = "enrolled"
    NOT_CONTACTED = "notContacted"


class IdentityPlatform(StrEnum):
    """Graph's `platform` of an imported identity: informational, set by the admin (matching ignores it)."""

    UNKNOWN = "unknown"
    IOS = "ios"
    ANDROID = "android"
    WINDOWS = "windows"
    WINDOWS_MOBILE = "windowsMobile"
    MAC_OS = "macOS"


class DevicePlatform(StrEnum):
    """How a device enrolls, as far as the CID-15 matrix (003_729e51c15a5a5608.txt:1026-1040) tells them apart."""

    IOS = "iOS"
    IPADOS = "iPadOS"
    MACOS = "macOS"
    WINDOWS = "windows"
    ANDROID_DEVICE_ADMINISTRATOR = "androidDeviceAdministrator"
    ANDROID_PERSONAL_WORK_PROFILE = "androidWorkProfile"
    ANDROID_CORPORATE_WORK_PROFILE = "androidCorporateWorkProfile"
    ANDROID_FULLY_MANAGED = "androidFullyManaged"
    ANDROID_DEDICATED = "androidDedicated"


class IdentifierError(ValueError):
    """One identifier or its details break a rule; the message says which, for the admin."""


class CsvRejected(ValueError):
    """The whole file is refused (CID-05, CID-06, not UTF-8, not CSV); nothing of it is imported."""


Key = tuple[IdentityType, str]


@dataclass(frozen=True, slots=True)
class IdentityInput:
    """One identity an admin asks to import, before validation."""

    identity_type: str
    identifier: str
    details: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class ValidIdentity:
    identity_type: IdentityType
    identifier: str  # normalised
    details: str | None
    platform: IdentityPlatform

    @property
    def key(self) -> Key:
        return self.identity_type, self.identifier


# Enum lookups by value through dicts: an import validates up to 50,000 items, and Enum(value) is slow.
_TYPES = {kind.value: kind for kind in IdentityType}
_PLATFORMS = {platform.value: platform for platform in IdentityPlatform}


def identity_type(value: str) -> IdentityType:
    kind = _TYPES.get(value)
    if kind is None:
        raise IdentifierError(f"importedDeviceIdentityType must be one of {', '.join(IdentityType)}")
    return kind


def normalise(kind: IdentityType, raw: str) -> str:
    """The stored form of an identifier, or IdentifierError saying what is wrong with it."""
    if kind is IdentityType.IMEI:
        return _imei(raw)
    if kind is IdentityType.SERIAL_NUMBER:
        return _serial(raw, "serial number")
    parts = raw.split(",")
    if len(parts) != 3:
        raise IdentifierError("a manufacturerModelSerial identifier is 'manufacturer,model,serial number'")
    manufacturer, model, serial = parts
    return ",".join((_part(manufacturer, "manufacturer"), _part(model, "model"), _serial(serial, "serial number")))


def _imei(raw: str) -> str:
    """CID-03: 14 digits; A-06: 15 digits accepted when the last is the Luhn check digit of the first 14."""
    digits = raw.strip().replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit() or len(digits) not in (IMEI_DIGITS, IMEI_DIGITS + 1):
        raise IdentifierError("an IMEI is 14 digits (or 15 with its check digit)")
    if len(digits) == IMEI_DIGITS + 1 and luhn_check_digit(digits[:IMEI_DIGITS]) != digits[-1]:
        raise IdentifierError("the 15th digit of the IMEI is not its check digit")
    return digits[:IMEI_DIGITS]


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit of an IMEI's first 14 digits (3GPP TS 23.003 annex B)."""
    total = 0
    for position, digit in enumerate(int(d) for d in digits):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return str(-total % 10)


def _serial(raw: str, what: str) -> str:
    """CID-06 (003_729e51c15a5a5608.txt:1063): no dots. Upper-cased: serials compare without case."""
    value = _part(raw, what)
    if "." in value:
        raise IdentifierError(f"a {what} cannot contain '.'")
    return value.upper()


def _part(raw: str, what: str) -> str:
    value = raw.strip()
    if not value:
        raise IdentifierError(f"the {what} is empty")
    if len(value) > MAX_PART_LENGTH:
        raise IdentifierError(f"the {what} is longer than {MAX_PART_LENGTH} characters")
    if not value.isprintable() or "," in value:
        raise IdentifierError(f"the {what} contains a comma or a character that cannot be printed")
    return value.upper()


def checked_details(details: str | None) -> str | None:
    """CID-04: at most 128 characters; longer details reject the row rather than being cut (nothing silently lost)."""
    if details is None or not details.strip():
        return None
    if len(details) > MAX_DETAILS_LENGTH:
        raise IdentifierError(f"details are longer than {MAX_DETAILS_LENGTH} characters")
    if not details.replace("\t", " ").isprintable():
        raise IdentifierError("details contain a character that cannot be printed")
    return details.strip()


def validated(item: IdentityInput) -> ValidIdentity:
    kind = identity_type(item.identity_type)
    platform = _PLATFORMS.get(item.platform or IdentityPlatform.UNKNOWN)
    if platform is None:
        raise IdentifierError(f"platform must be one of {', '.join(IdentityPlatform)}")
    return ValidIdentity(kind, normalise(kind, item.identifier), checked_details(item.details), platform)


# -- the CSV file (CID-01, CID-02, CID-05, CID-06) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    item: IdentityInput
    error: str | None = None  # a row that cannot be read as an identity: reported, never imported


def parse_csv(data: bytes, kind: IdentityType) -> list[CsvRow]:
    """The rows of an identifier file of one type (CID-01): no header, `identifier,details` (CID-02); for
    manufacturerModelSerial `manufacturer,model,serial[,details]`. Blank lines are skipped.

    Refuses the whole file (CsvRejected) when it is over 5 MB or 5,000 rows (CID-05), not UTF-8, not CSV, or a
    serial-number file holds a serial with a dot (CID-06: "the upload fails"). Rows are validated later, one by one,
    so one bad row does not lose the good ones."""
    if len(data) > MAX_CSV_BYTES:
        raise CsvRejected(f"the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvRejected(f"the file is not UTF-8 text (byte {error.start} cannot be read); save it as UTF-8") from None
    rows = list(csv_rows(text, kind))
    if kind is IdentityType.SERIAL_NUMBER:
        dotted = next((row for row in rows if "." in row.item.identifier), None)
        if dotted is not None:
            raise CsvRejected(f"line {dotted.line}: serial numbers cannot contain '.'; nothing was imported")
    return rows


def csv_rows(text: str, kind: IdentityType, max_rows: int | None = MAX_CSV_ROWS) -> Iterator[CsvRow]:
    """The rows of an identifier file's text, one at a time (the CLI reads files of any size with no limit and
    sends them through the bulk API)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    count = 0
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            count += 1
            if max_rows is not None and count > max_rows:
                raise CsvRejected(f"the file has more than {max_rows} rows")
            yield _row(reader.line_num, fields, kind)
    except csv.Error as error:
        raise CsvRejected(f"line {reader.line_num}: not a valid CSV file ({error})") from None


def _row(line: int, fields: Sequence[str], kind: IdentityType) -> CsvRow:
    identifier_columns = 3 if kind is IdentityType.MANUFACTURER_MODEL_SERIAL else 1
    details = fields[identifier_columns] if len(fields) > identifier_columns else None
    item = IdentityInput(kind, ",".join(fields[:identifier_columns]), details)
    if len(fields) > identifier_columns + 1:
        return CsvRow(line, item, f"line {line}: more than {identifier_columns + 1} columns")
    if len(fields) < identifier_columns:
        return CsvRow(line, item, f"line {line}: {kind} needs {identifier_columns} identifier columns")
    return CsvRow(line, item)


# -- matching at enrollment (CID-12..16, OWN-01e) ------------------------------------------------------------------


def identity_keys(
    platform: DevicePlatform | str,
    serial: str | None,
    imei: str | None,
    manufacturer: str | None,
    model: str | None,
    *,
    os_version: str | None = None,
) -> list[Key]:
    """The imported identities that may mark this enrolling device corporate-owned (CID-14), in the order to try.

    Only what the device itself reports counts (CID-12, CID-16), and only where the CID-15 matrix allows it
    (003_729e51c15a5a5608.txt:1026-1040): iOS/iPadOS serial and IMEI; macOS serial; Windows manufacturer, model and
    serial (Intune's Windows corporate identifiers, anchors I5; the older seed matrix says "neither"); Android device
    administrator before Android 10 and personally-owned work profile before Android 12 serial and IMEI; every
    other Android mode neither. Values that are not valid identifiers give no key.
    """
    kinds = _matchable(DevicePlatform(platform), _major(os_version))
    keys: list[Key] = []
    if IdentityType.SERIAL_NUMBER in kinds and serial:
        keys += _key(IdentityType.SERIAL_NUMBER, serial)
    if IdentityType.IMEI in kinds and imei:
        keys += _key(IdentityType.IMEI, imei)
    if IdentityType.MANUFACTURER_MODEL_SERIAL in kinds and serial and manufacturer and model:
        keys += _key(IdentityType.MANUFACTURER_MODEL_SERIAL, f"{manufacturer},{model},{serial}")
    return keys


_SERIAL_AND_IMEI = frozenset({IdentityType.SERIAL_NUMBER, IdentityType.IMEI})
_ANDROID_LAST_MATCHING = {
    DevicePlatform.ANDROID_DEVICE_ADMINISTRATOR: 9,
    DevicePlatform.ANDROID_PERSONAL_WORK_PROFILE: 11,
}


def _matchable(platform: DevicePlatform, major: int | None) -> frozenset[IdentityType]:
    if platform in (DevicePlatform.IOS, DevicePlatform.IPADOS):
        return _SERIAL_AND_IMEI
    if platform is DevicePlatform.MACOS:
        return frozenset({IdentityType.SERIAL_NUMBER})
    if platform is DevicePlatform.WINDOWS:
        return frozenset({IdentityType.MANUFACTURER_MODEL_SERIAL})
    last = _ANDROID_LAST_MATCHING.get(platform)
    if last is not None and major is not None and major <= last:
        return _SERIAL_AND_IMEI
    return frozenset()  # later Android versions and corporate Android modes: never (an unknown version: never)


def _major(os_version: str | None) -> int | None:
    head = (os_version or "").strip().split(".")[0]
    return int(head) if head.isascii() and head.isdigit() and len(head) < 4 else None


def _key(kind: IdentityType, raw: str) -> list[Key]:
    try:
        return [(kind, normalise(kind, raw))]
    except IdentifierError:
        return []
