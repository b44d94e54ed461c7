"""Corporate identifier rules: normalisation, the CSV format and limits, and the platform matching matrix.

Seeds cited per test: seed-catalog-A §2.4 (003_729e51c15a5a5608.txt:1024-1090), seed-catalog-C §1.14 (003:7041-7055).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.corporate_identifiers import (
    MAX_CSV_BYTES,
    MAX_CSV_ROWS,
    CsvRejected,
    DevicePlatform,
    IdentifierError,
    IdentityInput,
    IdentityType,
    identity_keys,
    luhn_check_digit,
    normalise,
    parse_csv,
    validated,
)

IMEI, SERIAL, MMS = IdentityType.IMEI, IdentityType.SERIAL_NUMBER, IdentityType.MANUFACTURER_MODEL_SERIAL


def test_imei_is_14_digits_003_1024() -> None:
    """CID-03 (003_729e51c15a5a5608.txt:1024): 14 digits; other lengths and letters are refused."""
    assert normalise(IMEI, "01234567890123") == "01234567890123"
    assert normalise(IMEI, " 01 234567 890123 ") == "01234567890123"  # as iOS shows it, with spaces
    for bad in ("0123456789012", "0123456789012X", "", "０１２３４５６７８９０１２３", "0123456789012345"):
        with pytest.raises(IdentifierError):
            normalise(IMEI, bad)


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_a_15_digit_imei_with_its_check_digit_is_its_14_digits_a06(digits: str) -> None:
    """A-06 (seed-catalog-A ambiguity on 003_729e51c15a5a5608.txt:1024/1095): 14 digits + Luhn check digit accepted,
    stored as the 14 digits so both spellings match; a wrong check digit is refused."""
    check = luhn_check_digit(digits)
    assert normalise(IMEI, digits + check) == digits
    wrong = str((int(check) + 1) % 10)
    with pytest.raises(IdentifierError, match="check digit"):
        normalise(IMEI, digits + wrong)


def test_luhn_check_digit_of_a_known_imei() -> None:
    """3GPP TS 23.003 annex B example: IMEI 49015420323751 has check digit 8."""
    assert luhn_check_digit("49015420323751") == "8"


@given(
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and "." not in s and "," not in s and s.isprintable())
)
def test_serials_compare_without_case_and_surrounding_space(serial: str) -> None:
    """Decision (docs/corporate-identifiers.md): serials are stored trimmed and upper-cased."""
    assert normalise(SERIAL, serial) == normalise(SERIAL, f"  {serial.lower()} ") == serial.strip().upper()


def test_a_serial_with_a_dot_is_refused_003_1063() -> None:
    """CID-06 (003_729e51c15a5a5608.txt:1063)."""
    with pytest.raises(IdentifierError, match=r"'\.'"):
        normalise(SERIAL, "C02.X1")


def test_manufacturer_model_serial_has_three_parts_i5() -> None:
    """anchors.md I5: Windows identifiers are manufacturer, model and serial."""
    assert (
        normalise(MMS, "Microsoft Corporation, Surface Pro 9 ,0F33ab") == "MICROSOFT CORPORATION,SURFACE PRO 9,0F33AB"
    )
    for bad in ("Microsoft,Surface", "Microsoft,,123", "a,b,c,d", "Dell,XPS,12.3"):
        with pytest.raises(IdentifierError):
            normalise(MMS, bad)


def test_details_are_at_most_128_characters_003_1048() -> None:
    """CID-04 (003_729e51c15a5a5608.txt:1048): longer details reject the item (they are not cut)."""
    assert validated(IdentityInput("serialNumber", "ABC", "x" * 128)).details == "x" * 128
    with pytest.raises(IdentifierError, match="128"):
        validated(IdentityInput("serialNumber", "ABC", "x" * 129))
    with pytest.raises(IdentifierError):
        validated(IdentityInput("serialNumber", "ABC", "bell\x07"))


def test_unknown_type_or_platform_is_refused() -> None:
    with pytest.raises(IdentifierError, match="importedDeviceIdentityType"):
        validated(IdentityInput("udid", "ABC"))
    with pytest.raises(IdentifierError, match="platform"):
        validated(IdentityInput("serialNumber", "ABC", platform="symbian"))


# -- the CSV file ---------------------------------------------------------------------------------------------------


def test_csv_has_no_header_and_two_columns_003_1048() -> None:
    """CID-01/CID-02 (003_729e51c15a5a5608.txt:1048, 1052-1057): one type per file, `identifier,details`."""
    rows = parse_csv(b"01234567890123,device details\r\n\r\n98765432109876\n", IMEI)
    assert [(row.line, row.item.identifier, row.item.details, row.error) for row in rows] == [
        (1, "01234567890123", "device details", None),
        (3, "98765432109876", None, None),
    ]
    assert parse_csv("\ufeffABC,détails\n".encode(), SERIAL)[0].item.details == "détails"  # BOM, UTF-8


def test_csv_row_with_too_many_columns_is_a_row_error() -> None:
    rows = parse_csv(b"ABC,one,two\nDEF,fine\n", SERIAL)
    assert rows[0].error is not None and "columns" in rows[0].error and rows[1].error is None


def test_csv_of_manufacturer_model_serial_has_three_columns_and_optional_details() -> None:
    rows = parse_csv(b"Microsoft,Surface Pro,123\nDell,XPS,456,front desk\nHP,only\n", MMS)
    assert [row.item.identifier for row in rows[:2]] == ["Microsoft,Surface Pro,123", "Dell,XPS,456"]
    assert rows[1].item.details == "front desk" and rows[2].error is not None


def test_csv_of_exactly_5000_rows_is_read_and_5001_refused_003_1048() -> None:
    """CID-05 (003_729e51c15a5a5608.txt:1048, 1050)."""
    body = b"".join(b"%014d,row\n" % i for i in range(MAX_CSV_ROWS))
    assert len(parse_csv(body, IMEI)) == MAX_CSV_ROWS
    with pytest.raises(CsvRejected, match="5000 rows"):
        parse_csv(body + b"99999999999999\n", IMEI)


def test_csv_over_5_mb_is_refused_003_1050() -> None:
    """CID-05 (003_729e51c15a5a5608.txt:1050)."""
    with pytest.raises(CsvRejected, match="5 MB"):
        parse_csv(b"A" * (MAX_CSV_BYTES + 1), SERIAL)


def test_a_dot_in_any_serial_fails_the_whole_upload_003_1063() -> None:
    """CID-06 (003_729e51c15a5a5608.txt:1063): "the upload fails", not only the row."""
    with pytest.raises(CsvRejected, match="line 2"):
        parse_csv(b"GOOD1\nBAD.1\nGOOD2\n", SERIAL)


def test_non_utf8_and_broken_csv_are_refused_clearly() -> None:
    with pytest.raises(CsvRejected, match="UTF-8"):
        parse_csv("SÉRIE,détails\n".encode("latin-1"), SERIAL)
    with pytest.raises(CsvRejected, match="not a valid CSV"):
        parse_csv(b'"ABC,unterminated\n', SERIAL)


@given(st.binary(max_size=2000), st.sampled_from(list(IdentityType)))
def test_garbage_in_only_a_clean_error_out(data: bytes, kind: IdentityType) -> None:
    """Whatever the bytes: rows, or CsvRejected; each row then validates or gives IdentifierError."""
    try:
        rows = parse_csv(data, kind)
    except CsvRejected as error:
        assert str(error)
        return
    for row in rows:
        try:
            validated(row.item)
        except IdentifierError as error:
            assert str(error)


@given(st.text(max_size=300), st.sampled_from(list(IdentityType)))
def test_text_garbage_in_only_a_clean_error_out(text: str, kind: IdentityType) -> None:
    try:
        rows = parse_csv(text.encode("utf-8", "surrogatepass"), kind)
    except CsvRejected:
        return
    assert len(rows) <= MAX_CSV_ROWS


# -- matching at enrollment (CID-12..16) ----------------------------------------------------------------------------


def test_ios_matches_serial_then_imei_003_1026() -> None:
    """CID-14/CID-15 (003_729e51c15a5a5608.txt:1013, 1026-1040; 003:7041-7044): iOS/iPadOS serial and IMEI."""
    keys = identity_keys("iOS", "f2lx1234", "35 925406 864620 7", "Apple", "iPhone15,2")
    assert keys == [(SERIAL, "F2LX1234"), (IMEI, "35925406864620")]
    assert identity_keys(DevicePlatform.IPADOS, None, "35925406864620", None, None) == [(IMEI, "35925406864620")]


def test_macos_matches_serial_only_003_7052() -> None:
    """CID-15 (003_729e51c15a5a5608.txt:1026-1040), seed-catalog-C §1.14 (003:7052-7055): macOS serial only."""
    assert identity_keys("macOS", "C02ABC", "35925406864620", "Apple", "Mac15,3") == [(SERIAL, "C02ABC")]


def test_windows_matches_manufacturer_model_serial_only_i5() -> None:
    """anchors.md I5 (Windows: manufacturer+model+serial); supersedes CID-15's "Windows: neither" (documented)."""
    keys = identity_keys("windows", "0F33", "35925406864620", "Microsoft Corporation", "Surface Pro 9")
    assert keys == [(MMS, "MICROSOFT CORPORATION,SURFACE PRO 9,0F33")]
    assert identity_keys("windows", "0F33", None, None, "Surface") == []


@pytest.mark.parametrize(
    ("platform", "version", "matches"),
    [
        (DevicePlatform.ANDROID_DEVICE_ADMINISTRATOR, "9", True),
        (DevicePlatform.ANDROID_DEVICE_ADMINISTRATOR, "10", False),
        (DevicePlatform.ANDROID_PERSONAL_WORK_PROFILE, "11.0.1", True),
        (DevicePlatform.ANDROID_PERSONAL_WORK_PROFILE, "12", False),
        (DevicePlatform.ANDROID_PERSONAL_WORK_PROFILE, None, False),
        (DevicePlatform.ANDROID_CORPORATE_WORK_PROFILE, "9", False),
        (DevicePlatform.ANDROID_FULLY_MANAGED, "9", False),
        (DevicePlatform.ANDROID_DEDICATED, "9", False),
    ],
)
def test_android_matrix_003_1026(platform: DevicePlatform, version: str | None, matches: bool) -> None:
    """CID-15 (003_729e51c15a5a5608.txt:1026-1040): Android by management mode and version."""
    keys = identity_keys(platform, "R58M1", "35925406864620", "samsung", "SM-G991B", os_version=version)
    assert keys == ([(SERIAL, "R58M1"), (IMEI, "35925406864620")] if matches else [])


def test_only_reported_values_give_keys_003_1061() -> None:
    """CID-12/13/16 (003_729e51c15a5a5608.txt:1061, 1063): only what the device reports; invalid values none."""
    assert identity_keys("iOS", None, None, None, None) == []
    assert identity_keys("iOS", "BAD.SERIAL", "123", None, None) == []


@given(
    st.sampled_from(list(DevicePlatform)),
    st.none() | st.text(max_size=30),
    st.none() | st.text(max_size=30),
    st.none() | st.text(max_size=30),
    st.none() | st.text(max_size=30),
    st.none() | st.text(max_size=10),
)
def test_identity_keys_are_always_valid_identifiers(
    platform: DevicePlatform,
    serial: str | None,
    imei: str | None,
    manufacturer: str | None,
    model: str | None,
    version: str | None,
) -> None:
    for kind, identifier in identity_keys(platform, serial, imei, manufacturer, model, os_version=version):
        assert normalise(kind, identifier) == identifier  # normalised, and stable
