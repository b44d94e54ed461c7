import base64
import plistlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from muster.pki.push_certificate import (
    PushCertificateError,
    build_vendor_signed_request,
    check_renewal,
    expiry_warning,
    generate_push_csr,
    parse_push_certificate,
)
from muster.simulators.apns import issue_push_certificate

TOPIC = "com.apple.mgmt.External.e3b8ceac-1f18-2c8e-8a63-dd17d99435d9"


@pytest.fixture(scope="module")
def csr_and_key() -> tuple[bytes, bytes]:
    return generate_push_csr(common_name="Muster push", email="admin@example.com", country="fr")


def _self_signed(common_name: str, key: rsa.RSAPrivateKey, subject_uid: str | None = None) -> bytes:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if subject_uid is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.USER_ID, subject_uid))
    name = x509.Name(attributes)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key(csr_and_key: tuple[bytes, bytes]) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(csr_and_key[1], password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def test_csr_has_keychain_style_subject_and_rsa_2048(csr_and_key: tuple[bytes, bytes]) -> None:
    csr = x509.load_pem_x509_csr(csr_and_key[0])

    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "C=FR,CN=Muster push,1.2.840.113549.1.9.1=admin@example.com"
    assert _key(csr_and_key).key_size == 2048
    assert csr.public_key() == _key(csr_and_key).public_key()


@pytest.mark.parametrize(("name", "country"), [("  ", None), ("Muster", "FRA"), ("Muster", "1A")])
def test_csr_refuses_bad_subject(name: str, country: str | None) -> None:
    with pytest.raises(PushCertificateError):
        generate_push_csr(common_name=name, country=country)


def test_issued_certificate_parses_with_topic_and_expiry(csr_and_key: tuple[bytes, bytes]) -> None:
    certificate_pem = issue_push_certificate(csr_and_key[0], topic=TOPIC)

    info = parse_push_certificate(certificate_pem, csr_and_key[1])

    certificate = x509.load_pem_x509_certificate(certificate_pem)
    assert info.topic == TOPIC
    assert info.not_after == certificate.not_valid_after_utc
    assert timedelta(days=364) < info.not_after - datetime.now(UTC) <= timedelta(days=365)
    assert info.fingerprint_sha256 == certificate.fingerprint(hashes.SHA256()).hex()
    assert info.serial_number == format(certificate.serial_number, "x")
    assert f"UID={TOPIC}" in info.subject


def test_default_topic_is_external_mgmt_uuid(csr_and_key: tuple[bytes, bytes]) -> None:
    info = parse_push_certificate(issue_push_certificate(csr_and_key[0]), csr_and_key[1])

    assert info.topic.startswith("com.apple.mgmt.External.")
    assert len(info.topic) == len("com.apple.mgmt.External.") + 36


def test_mismatched_key_refused(csr_and_key: tuple[bytes, bytes]) -> None:
    certificate_pem = issue_push_certificate(csr_and_key[0], topic=TOPIC)
    _, other_key_pem = generate_push_csr(common_name="someone else")

    with pytest.raises(PushCertificateError, match="not issued for this private key"):
        parse_push_certificate(certificate_pem, other_key_pem)


def test_non_mgmt_topic_refused(csr_and_key: tuple[bytes, bytes]) -> None:
    certificate_pem = issue_push_certificate(csr_and_key[0], topic="com.example.app")

    with pytest.raises(PushCertificateError, match="not an MDM push certificate"):
        parse_push_certificate(certificate_pem, csr_and_key[1])


def test_certificate_without_uid_refused(csr_and_key: tuple[bytes, bytes]) -> None:
    certificate_pem = _self_signed("no uid", _key(csr_and_key))

    with pytest.raises(PushCertificateError, match="no UID"):
        parse_push_certificate(certificate_pem, csr_and_key[1])


def test_expired_certificate_refused(csr_and_key: tuple[bytes, bytes]) -> None:
    certificate_pem = issue_push_certificate(csr_and_key[0], topic=TOPIC, days=10)
    later = datetime.now(UTC) + timedelta(days=11)

    with pytest.raises(PushCertificateError, match="expired"):
        parse_push_certificate(certificate_pem, csr_and_key[1], now=later)


@pytest.mark.parametrize(
    ("certificate", "key", "message"),
    [
        (b"garbage", None, "push certificate is not a readable PEM"),
        (None, b"garbage", "not a readable, unencrypted PEM private key"),
    ],
)
def test_unreadable_input_refused(
    csr_and_key: tuple[bytes, bytes], certificate: bytes | None, key: bytes | None, message: str
) -> None:
    certificate_pem = certificate or issue_push_certificate(csr_and_key[0], topic=TOPIC)

    with pytest.raises(PushCertificateError, match=message):
        parse_push_certificate(certificate_pem, key or csr_and_key[1])


def test_renewal_with_same_topic_accepted(csr_and_key: tuple[bytes, bytes]) -> None:
    renewal = parse_push_certificate(issue_push_certificate(csr_and_key[0], topic=TOPIC), csr_and_key[1])

    check_renewal(TOPIC, renewal)


def test_renewal_with_other_topic_refused_with_explanation(csr_and_key: tuple[bytes, bytes]) -> None:
    renewal = parse_push_certificate(issue_push_certificate(csr_and_key[0]), csr_and_key[1])

    with pytest.raises(PushCertificateError) as raised:
        check_renewal(TOPIC, renewal)

    message = str(raised.value)
    assert "re-enroll" in message
    assert '"Renew"' in message
    assert "same Apple Account" in message
    assert "Push Certificates Portal" in message


def test_expiry_warning_from_30_days(csr_and_key: tuple[bytes, bytes]) -> None:
    info = parse_push_certificate(issue_push_certificate(csr_and_key[0], topic=TOPIC), csr_and_key[1])

    assert expiry_warning(info.topic, info.not_after, info.not_after - timedelta(days=31)) is None
    at_30_days = expiry_warning(info.topic, info.not_after, info.not_after - timedelta(days=30))
    assert at_30_days is not None
    assert "30 days left" in at_30_days
    expired = expiry_warning(info.topic, info.not_after, info.not_after + timedelta(seconds=1))
    assert expired is not None
    assert "within 30 days" in expired
    beyond_grace = expiry_warning(info.topic, info.not_after, info.not_after + timedelta(days=30))
    assert beyond_grace is not None and "can no longer be renewed" in beyond_grace


def test_vendor_signed_request_verifies_and_has_documented_keys(csr_and_key: tuple[bytes, bytes]) -> None:
    vendor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    vendor_pem = _self_signed("MDM Vendor: Muster Test", vendor_key)
    chain = [_self_signed(name, vendor_key) for name in ("WWDR G3", "Apple Root")]
    vendor_key_pem = vendor_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    signed = build_vendor_signed_request(
        csr_and_key[0], vendor_certificate_pem=vendor_pem, vendor_key_pem=vendor_key_pem, chain_pems=chain
    )

    request = plistlib.loads(base64.b64decode(signed, validate=True))
    assert set(request) == {"PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature"}
    csr_der = base64.b64decode(request["PushCertRequestCSR"])
    assert csr_der == x509.load_pem_x509_csr(csr_and_key[0]).public_bytes(serialization.Encoding.DER)
    signature = base64.b64decode(request["PushCertSignature"])
    vendor_key.public_key().verify(signature, csr_der, padding.PKCS1v15(), hashes.SHA256())
    certificates = x509.load_pem_x509_certificates(request["PushCertCertificateChain"].encode())
    assert [c.subject.rfc4514_string() for c in certificates] == [
        "CN=MDM Vendor: Muster Test",
        "CN=WWDR G3",
        "CN=Apple Root",
    ]
    base64_lines = [line for line in request["PushCertCertificateChain"].splitlines() if "-----" not in line]
    assert max(len(line) for line in base64_lines) == 64


def test_vendor_key_must_match_vendor_certificate(csr_and_key: tuple[bytes, bytes]) -> None:
    vendor_pem = _self_signed("vendor", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    with pytest.raises(PushCertificateError, match="does not belong"):
        build_vendor_signed_request(
            csr_and_key[0], vendor_certificate_pem=vendor_pem, vendor_key_pem=csr_and_key[1], chain_pems=[]
        )


def test_vendor_key_must_be_rsa(csr_and_key: tuple[bytes, bytes]) -> None:
    ec_key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    vendor_pem = _self_signed("vendor", _key(csr_and_key))

    with pytest.raises(PushCertificateError, match="RSA"):
        build_vendor_signed_request(
            csr_and_key[0], vendor_certificate_pem=vendor_pem, vendor_key_pem=ec_key_pem, chain_pems=[]
        )


def test_vendor_signing_refuses_garbage_csr(csr_and_key: tuple[bytes, bytes]) -> None:
    with pytest.raises(PushCertificateError, match="signing request"):
        build_vendor_signed_request(
            b"not a csr", vendor_certificate_pem=b"", vendor_key_pem=csr_and_key[1], chain_pems=[]
        )
