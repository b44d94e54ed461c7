"""CMS SignedData: round trips, tampering, garbage, and cross-checks with `openssl cms`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.pki.ca import CertificateAuthority
from muster.pki.certs import certificate_pem, generate_rsa_key, private_key_pem, self_signed_certificate
from muster.protocols import cms
from muster.protocols.errors import ParseError

BODY = b'<?xml version="1.0"?><plist version="1.0"><dict><key>MessageType</key></dict></plist>'
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")

RSA_KEY = generate_rsa_key()
RSA_CERT = self_signed_certificate(RSA_KEY, "device-rsa")
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_CERT = self_signed_certificate(EC_KEY, "device-ec")
OTHER_KEY = generate_rsa_key()
OTHER_CERT = self_signed_certificate(OTHER_KEY, "someone-else")
IDENTITIES = [(RSA_KEY, RSA_CERT), (EC_KEY, EC_CERT)]
SIGNATURE = cms.sign_detached(BODY, RSA_CERT, RSA_KEY)


def openssl(command: str, *, cwd: Path, stdin: bytes | None = None) -> bytes:
    """Run `openssl <command>` in `cwd`, where the test wrote its files."""
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *command.split()], cwd=cwd, input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def write_identity(tmp_path: Path, key: cms.PrivateKey, cert: x509.Certificate) -> None:
    """cert.pem and key.pem in `tmp_path`."""
    (tmp_path / "cert.pem").write_bytes(certificate_pem(cert))
    (tmp_path / "key.pem").write_bytes(private_key_pem(key))


def make_csr(key: rsa.RSAPrivateKey, common_name: str) -> x509.CertificateSigningRequest:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# --- signatures: our own round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(("key", "cert"), IDENTITIES, ids=["rsa", "ec"])
def test_detached_round_trip_returns_signer(key: cms.PrivateKey, cert: x509.Certificate) -> None:
    signature = cms.sign_detached(BODY, cert, key)
    assert cms.verify_detached(signature, BODY) == cert


@pytest.mark.parametrize(("key", "cert"), IDENTITIES, ids=["rsa", "ec"])
def test_attached_round_trip_returns_content_and_signer(key: cms.PrivateKey, cert: x509.Certificate) -> None:
    signed = cms.sign_attached(BODY, cert, key, extra_certificates=[OTHER_CERT])
    assert cms.verify_attached(signed) == (BODY, cert)


@pytest.mark.parametrize("digest", ["sha1", "sha224", "sha256", "sha384", "sha512"])
def test_every_supported_digest_verifies(digest: str) -> None:
    signed = cms.build_signed_data(BODY, EC_CERT, EC_KEY, attach=True, digest=digest)
    message = cms.verify_signed(signed)
    assert (message.digest_algorithm, message.content) == (digest, BODY)


def test_tampered_content_is_rejected() -> None:
    with pytest.raises(ParseError, match="messageDigest"):
        cms.verify_detached(SIGNATURE, BODY + b" ")


def test_tampered_signature_is_rejected() -> None:
    signature_value = asn1_cms.ContentInfo.load(SIGNATURE)["content"]["signer_infos"][0]["signature"]
    index = SIGNATURE.index(signature_value.native) + 10
    with pytest.raises(ParseError, match="signature does not verify"):
        cms.verify_detached(flip(SIGNATURE, index), BODY)


def test_signature_with_a_certificate_that_does_not_match_the_key_is_rejected() -> None:
    forged = cms.sign_detached(BODY, RSA_CERT, OTHER_KEY)
    with pytest.raises(ParseError, match="signature does not verify"):
        cms.verify_detached(forged, BODY)


def test_signer_certificate_must_be_in_the_message() -> None:
    info = asn1_cms.ContentInfo.load(SIGNATURE)
    info["content"]["certificates"] = [asn1_cms.CertificateChoices.load(OTHER_CERT.public_bytes(Encoding.DER))]
    with pytest.raises(ParseError, match="signer certificate missing"):
        cms.verify_detached(info.dump(force=True), BODY)


def test_two_signers_are_rejected() -> None:
    info = asn1_cms.ContentInfo.load(SIGNATURE)
    signer = info["content"]["signer_infos"][0]
    info["content"]["signer_infos"] = [signer, signer]
    with pytest.raises(ParseError, match="exactly one signer"):
        cms.verify_detached(info.dump(force=True), BODY)


def test_detached_verification_refuses_attached_messages_and_vice_versa() -> None:
    with pytest.raises(ParseError, match="carries content"):
        cms.verify_detached(cms.sign_attached(BODY, RSA_CERT, RSA_KEY), BODY)
    with pytest.raises(ParseError, match="carries no content"):
        cms.verify_attached(SIGNATURE)


def test_oversized_input_is_rejected_before_parsing() -> None:
    with pytest.raises(ParseError, match="larger than"):
        cms.verify_detached(b"\x30" * (cms.MAX_SIGNED_SIZE + 1), BODY)


def test_custom_signed_attributes_are_returned() -> None:
    signed = cms.build_signed_data(
        BODY, RSA_CERT, RSA_KEY, attach=True, attributes=[("1.2.3.4", core.PrintableString("19"))]
    )
    message = cms.verify_signed(signed)
    assert message.attribute("1.2.3.4") == core.PrintableString("19").dump()
    assert message.attribute("1.2.3.5") is None


@given(st.binary(max_size=2048))
def test_garbage_signature_raises_only_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        cms.verify_detached(data, BODY)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_signature_never_raises_anything_but_parse_error(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(SIGNATURE) - 1))
    byte = data.draw(st.integers(0, 255))
    corrupted = SIGNATURE[:index] + bytes([byte]) + SIGNATURE[index + 1 :]
    try:
        signer = cms.verify_detached(corrupted, BODY)
    except ParseError:
        return
    # Some bytes (a version number, an unused tag bit) are not covered by the signature.
    assert signer.public_key() == RSA_CERT.public_key()


# --- signatures: openssl interop -------------------------------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("with_attributes", [True, False], ids=["attrs", "noattr"])
@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize(("key", "cert"), IDENTITIES, ids=["rsa", "ec"])
def test_verifies_openssl_detached_signatures(
    tmp_path: Path, key: cms.PrivateKey, cert: x509.Certificate, digest: str, with_attributes: bool
) -> None:
    write_identity(tmp_path, key, cert)
    options = "" if with_attributes else "-noattr"
    command = f"cms -sign -binary -outform DER -md {digest} -signer cert.pem -inkey key.pem {options}"
    signature = openssl(command, cwd=tmp_path, stdin=BODY)
    assert cms.verify_detached(signature, BODY) == cert
    with pytest.raises(ParseError):
        cms.verify_detached(signature, BODY[:-1])


@needs_openssl
def test_verifies_openssl_streamed_ber_attached_signature(tmp_path: Path) -> None:
    write_identity(tmp_path, EC_KEY, EC_CERT)
    command = "cms -sign -binary -nodetach -stream -outform DER -signer cert.pem -inkey key.pem"
    signed = openssl(command, cwd=tmp_path, stdin=BODY)
    assert signed[1] == 0x80  # indefinite-length BER, as streaming signers produce
    assert cms.verify_attached(signed) == (BODY, EC_CERT)


@needs_openssl
@pytest.mark.parametrize(("key", "cert"), IDENTITIES, ids=["rsa", "ec"])
def test_openssl_verifies_our_signatures(tmp_path: Path, key: cms.PrivateKey, cert: x509.Certificate) -> None:
    (tmp_path / "body").write_bytes(BODY)
    (tmp_path / "detached.der").write_bytes(cms.sign_detached(BODY, cert, key))
    (tmp_path / "attached.der").write_bytes(cms.sign_attached(BODY, cert, key))
    openssl("cms -verify -binary -inform DER -in detached.der -content body -noverify -out out", cwd=tmp_path)
    attached = openssl("cms -verify -inform DER -in attached.der -noverify", cwd=tmp_path)
    assert attached == BODY


@needs_openssl
def test_openssl_verifies_our_signature_chain_to_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.generate("Test CA")
    key = generate_rsa_key()
    csr = make_csr(key, "signer")
    cert = ca.issue_device_certificate(csr)
    (tmp_path / "ca.pem").write_bytes(certificate_pem(ca.certificate))
    (tmp_path / "signed.der").write_bytes(cms.sign_attached(BODY, cert, key))
    content = openssl("cms -verify -inform DER -in signed.der -CAfile ca.pem -purpose any", cwd=tmp_path)
    assert content == BODY


# --- certificates-only -------------------------------------------------------------------------------------


def test_degenerate_certificates_round_trip() -> None:
    der = cms.degenerate_certificates([RSA_CERT, EC_CERT])
    assert set(cms.load_degenerate_certificates(der)) == {RSA_CERT, EC_CERT}  # a SET OF: order is DER's


@needs_openssl
def test_openssl_reads_degenerate_certificates(tmp_path: Path) -> None:
    (tmp_path / "certs.p7b").write_bytes(cms.degenerate_certificates([RSA_CERT, EC_CERT]))
    printed = openssl("pkcs7 -inform DER -in certs.p7b -print_certs -noout", cwd=tmp_path)
    assert b"CN = device-rsa" in printed and b"CN = device-ec" in printed


@needs_openssl
def test_verifies_signer_named_by_subject_key_identifier(tmp_path: Path) -> None:
    ca = CertificateAuthority.generate("Test CA")
    key = generate_rsa_key()
    cert = ca.issue_device_certificate(make_csr(key, "keyid-signer"))
    write_identity(tmp_path, key, cert)
    command = "cms -sign -binary -keyid -outform DER -signer cert.pem -inkey key.pem"
    signature = openssl(command, cwd=tmp_path, stdin=BODY)
    sid = asn1_cms.ContentInfo.load(signature)["content"]["signer_infos"][0]["sid"]
    assert sid.name == "subject_key_identifier"
    assert cms.verify_detached(signature, BODY) == cert
