"""The local CA: device identities, the TLS server and profile-signing certificates, PEM round trips."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from muster.pki.ca import CertificateAuthority
from muster.pki.certs import (
    certificate_pem,
    fingerprint_sha256,
    generate_rsa_key,
    key_usage,
    load_pem_certificate,
    load_pem_private_key,
    private_key_pem,
    self_signed_certificate,
)
from muster.protocols import cms

CA = CertificateAuthority.generate("Muster Device CA", organization="Example Org")
DEVICE_KEY = generate_rsa_key()


def csr_for(key: CertificateIssuerPrivateKeyTypes, cn: str = "device") -> x509.CertificateSigningRequest:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Devices")]
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, algorithm)


def test_generated_ca_is_a_constrained_root() -> None:
    cert = CA.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Muster Device CA"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Org"
    assert cert.issuer == cert.subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and usage.digital_signature and usage.key_encipherment
    assert isinstance(CA.key, rsa.RSAPrivateKey) and CA.key.key_size == 2048
    assert x509.load_der_x509_certificate(CA.certificate_der) == cert


def test_device_certificate_profile() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    csr = csr_for(DEVICE_KEY, "iPad")
    cert = CA.issue_device_certificate(csr, validity_days=30, now=now)

    assert cert.subject == csr.subject
    assert cert.issuer == CA.certificate.subject
    assert cert.public_key() == DEVICE_KEY.public_key()
    assert 0 < cert.serial_number < 2**159
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc == now + dt.timedelta(days=30)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(DEVICE_KEY.public_key())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = CA.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    cert.verify_directly_issued_by(CA.certificate)


def test_device_certificate_never_outlives_the_ca() -> None:
    cert = CA.issue_device_certificate(csr_for(DEVICE_KEY), validity_days=100 * 365)
    assert cert.not_valid_after_utc == CA.certificate.not_valid_after_utc


def test_serial_numbers_differ() -> None:
    csr = csr_for(DEVICE_KEY)
    serials = {CA.issue_device_certificate(csr).serial_number for _ in range(5)}
    assert len(serials) == 5


def test_ec_device_keys_are_accepted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    assert CA.issue_device_certificate(csr_for(key)).public_key() == key.public_key()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (rsa.generate_private_key(65537, 1024), "at least 2048 bits"),
        (ed25519.Ed25519PrivateKey.generate(), "only RSA and EC"),
    ],
    ids=["rsa1024", "ed25519"],
)
def test_weak_or_unsupported_keys_are_refused(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CA.issue_device_certificate(csr_for(key))


def test_issued_recognises_own_valid_certificates_only() -> None:
    cert = CA.issue_device_certificate(csr_for(DEVICE_KEY))
    assert CA.issued(cert)
    assert not CA.issued(cert, now=cert.not_valid_after_utc + dt.timedelta(seconds=1))
    assert not CertificateAuthority.generate("Muster Device CA", organization="Example Org").issued(cert)
    assert not CA.issued(self_signed_certificate(DEVICE_KEY, "Muster Device CA"))


def test_tls_server_certificate_verifies_as_a_server_chain() -> None:
    cert, key = CA.issue_tls_server_certificate(["mdm.example.test", "127.0.0.1"])
    assert cert.public_key() == key.public_key()
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mdm.example.test"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=825, minutes=5)

    store = verification.Store([CA.certificate])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(x509.DNSName("mdm.example.test"))
    chain = verifier.verify(cert, [])
    assert chain[-1] == CA.certificate


def test_tls_server_certificate_needs_a_hostname() -> None:
    with pytest.raises(ValueError, match="hostname"):
        CA.issue_tls_server_certificate([])


def test_signing_certificate_profile() -> None:
    cert, key = CA.issue_signing_certificate("Example Org Profile Signing")
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert cert.public_key() == key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Example Org Profile Signing"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value == key_usage(digital_signature=True)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=825, minutes=5)
    assert CA.issued(cert)


def test_signing_certificate_never_outlives_the_ca() -> None:
    short_lived = CertificateAuthority.generate("Short CA", validity_days=10)
    cert, _ = short_lived.issue_signing_certificate("Signer", validity_days=825)
    assert cert.not_valid_after_utc == short_lived.certificate.not_valid_after_utc


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
def test_openssl_accepts_profiles_signed_by_the_signing_certificate(tmp_path: Path) -> None:
    cert, key = CA.issue_signing_certificate("Profile Signing")
    (tmp_path / "ca.pem").write_bytes(certificate_pem(CA.certificate))
    (tmp_path / "profile.der").write_bytes(cms.sign_attached(b"<plist/>", cert, key))
    # No -purpose: OpenSSL's default for CMS is S/MIME signing, which needs emailProtection.
    done = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", "profile.der", "-CAfile", "ca.pem"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"<plist/>"
    server, _ = CA.issue_tls_server_certificate(["mdm.example.test"])
    (tmp_path / "signer.pem").write_bytes(certificate_pem(cert))
    (tmp_path / "server.pem").write_bytes(certificate_pem(server))
    for name, accepted in [("signer.pem", False), ("server.pem", True)]:
        done = subprocess.run(
            ["openssl", "verify", "-CAfile", "ca.pem", "-purpose", "sslserver", name],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        assert (done.returncode == 0) is accepted, done.stderr


@pytest.mark.parametrize("password", [None, b"correct horse"])
def test_pem_round_trip(password: bytes | None) -> None:
    key_pem = private_key_pem(CA.key, password)
    loaded = CertificateAuthority.from_pem(certificate_pem(CA.certificate), key_pem, password)
    assert loaded.certificate == CA.certificate
    assert loaded.key.public_key() == CA.key.public_key()
    assert loaded.issued(loaded.issue_device_certificate(csr_for(DEVICE_KEY)))
    assert CA.issued(loaded.issue_device_certificate(csr_for(DEVICE_KEY)))


def test_from_pem_refuses_a_key_that_does_not_match() -> None:
    with pytest.raises(ValueError, match="does not match"):
        CertificateAuthority.from_pem(certificate_pem(CA.certificate), private_key_pem(DEVICE_KEY))


def test_from_pem_refuses_a_wrong_password() -> None:
    key_pem = private_key_pem(CA.key, b"right")
    with pytest.raises(ValueError):
        CertificateAuthority.from_pem(certificate_pem(CA.certificate), key_pem, b"wrong")


def test_load_pem_private_key_refuses_unsupported_key_types() -> None:
    with pytest.raises(ValueError, match="RSA and EC"):
        load_pem_private_key(private_key_pem(ed25519.Ed25519PrivateKey.generate()))  # type: ignore[arg-type]


def test_certificate_helpers() -> None:
    cert = self_signed_certificate(DEVICE_KEY, "scep-temp", days=2)
    assert load_pem_certificate(certificate_pem(cert)) == cert
    assert fingerprint_sha256(cert) == cert.fingerprint(hashes.SHA256()).hex()
    assert fingerprint_sha256(cert).islower() and len(fingerprint_sha256(cert)) == 64
    assert cert.subject == cert.issuer
    assert dt.timedelta(days=2) <= cert.not_valid_after_utc - cert.not_valid_before_utc


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
def test_openssl_verifies_issued_certificates(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(certificate_pem(CA.certificate))
    device = CA.issue_device_certificate(csr_for(DEVICE_KEY))
    server, _ = CA.issue_tls_server_certificate(["mdm.example.test"])
    (tmp_path / "device.pem").write_bytes(certificate_pem(device))
    (tmp_path / "server.pem").write_bytes(certificate_pem(server))
    for name, purpose in [("device.pem", "sslclient"), ("server.pem", "sslserver")]:
        done = subprocess.run(
            ["openssl", "verify", "-CAfile", tmp_path / "ca.pem", "-purpose", purpose, tmp_path / name],
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
