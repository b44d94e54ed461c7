import base64
import functools
import json
import plistlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from muster.pki.certs import generate_rsa_key, self_signed_certificate
from muster.protocols.apple import machine_info
from muster.protocols.apple.machine_info import MachineInfo
from muster.protocols.cms import sign_attached
from muster.protocols.errors import ParseError

MACHINE_INFO = MachineInfo(
    udid="00008030-001A2B3C4D5E802E",
    serial="C8TJ500QF1MN",
    product="iPhone16,1",
    version="21F90",
    os_version="17.5.1",
    imei="35 123456 789012 3",
    language="en",
    mdm_can_request_software_update=True,
    software_update_device_id="iPhone16,1",
)


@functools.cache
def device_identity() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = generate_rsa_key()
    return self_signed_certificate(key, "device identity", days=365), key


def test_machine_info_round_trip() -> None:
    certificate, key = device_identity()

    info, signer = machine_info.decode_machine_info(
        machine_info.encode_machine_info(MACHINE_INFO, certificate=certificate, key=key)
    )

    assert info == MACHINE_INFO
    assert signer == certificate
    assert info.raw["SERIAL"] == "C8TJ500QF1MN"


def test_machine_info_as_binary_plist_in_the_web_view_header() -> None:
    certificate, key = device_identity()
    content = plistlib.dumps(
        {"UDID": "U1", "SERIAL": "S1", "PRODUCT": "Mac14,2", "VERSION": "23F79", "NEW_KEY": 1},
        fmt=plistlib.FMT_BINARY,
    )
    header = base64.b64encode(sign_attached(content, certificate, key)).decode()

    info, _ = machine_info.decode_machine_info_header(header)

    assert (info.serial, info.os_version, info.mdm_can_request_software_update) == ("S1", None, False)
    assert info.raw["NEW_KEY"] == 1


@pytest.mark.parametrize("missing", ["UDID", "SERIAL", "PRODUCT", "VERSION"])
def test_machine_info_without_required_key_is_refused(missing: str) -> None:
    certificate, key = device_identity()
    values = {"UDID": "U1", "SERIAL": "S1", "PRODUCT": "iPhone16,1", "VERSION": "21F90"}
    del values[missing]

    with pytest.raises(ParseError, match=missing):
        machine_info.decode_machine_info(sign_attached(plistlib.dumps(values), certificate, key))


def test_tampered_machine_info_is_refused() -> None:
    certificate, key = device_identity()
    signed = machine_info.encode_machine_info(MACHINE_INFO, certificate=certificate, key=key)
    tampered = signed.replace(b"C8TJ500QF1MN", b"C8TJ500QF1MX")

    with pytest.raises(ParseError):
        machine_info.decode_machine_info(tampered)


@given(st.binary(max_size=500))
def test_garbage_machine_info_raises_only_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        machine_info.decode_machine_info(data)


def test_software_update_required_body() -> None:
    body = json.loads(
        machine_info.software_update_required(
            "17.5", "21F79", "Update first", beta_program=("iOS 18 beta", "SEED-TOKEN")
        )
    )

    assert body == {
        "code": "com.apple.softwareupdate.required",
        "message": "Update first",
        "details": {
            "OSVersion": "17.5",
            "BuildVersion": "21F79",
            "RequireBetaProgram": {"Description": "iOS 18 beta", "Token": "SEED-TOKEN"},
        },
    }
    assert json.loads(machine_info.software_update_required("17.1"))["details"] == {"OSVersion": "17.1"}
