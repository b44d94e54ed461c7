"""SCEP PKI messages: request -> CertRep round trips with our own client side, and garbage handling."""

from __future__ import annotations

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AttributeOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.pki.ca import CertificateAuthority
from muster.pki.certs import generate_rsa_key, self_signed_certificate
from muster.protocols import cms, cms_envelope, scep
from muster.protocols.errors import ParseError

CA = CertificateAuthority.generate("SCEP Test CA", organization="Muster Tests")
assert isinstance(CA.key, rsa.RSAPrivateKey)
CA_KEY: rsa.RSAPrivateKey = CA.key
DEVICE_KEY = generate_rsa_key()
DEVICE_SELF_SIGNED = self_signed_certificate(DEVICE_KEY, "device")


def make_csr(
    key: rsa.RSAPrivateKey,
    common_name: str = "iPhone 15",
    challenge: str | None = "one-time-secret",
    string_type: _ASN1Type = _ASN1Type.UTF8String,
) -> x509.CertificateSigningRequest:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if challenge is not None:
        encoded = challenge.encode("utf-16-be" if string_type is _ASN1Type.BMPString else "utf-8")
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, encoded, _tag=string_type)
    return builder.sign(key, hashes.SHA256())


def pkcs_req(
    csr: x509.CertificateSigningRequest,
    *,
    signer: tuple[x509.Certificate, rsa.RSAPrivateKey] = (DEVICE_SELF_SIGNED, DEVICE_KEY),
    message_type: scep.MessageType = scep.MessageType.PKCS_REQ,
    cipher: str = "aes256",
) -> tuple[bytes, bytes]:
    return scep.build_pkcs_req(
        csr,
        signer_certificate=signer[0],
        signer_key=signer[1],
        recipient_certificate=CA.certificate,
        transaction_id=scep.transaction_id_for(csr.public_key()),
        message_type=message_type,
        cipher=cipher,
    )


def parse(der: bytes) -> scep.PkiRequest:
    return scep.parse_pki_message(der, ca_certificate=CA.certificate, ca_key=CA_KEY)


REQUEST_DER, REQUEST_NONCE = pkcs_req(make_csr(DEVICE_KEY))
REQUEST_CSR_DER = make_csr(DEVICE_KEY).public_bytes(Encoding.DER)


def test_ca_caps_list_one_capability_per_line() -> None:
    lines = scep.encode_ca_caps().decode().split("\n")
    assert {"POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal"} <= set(lines)


def test_transaction_id_is_stable_per_key_and_printable() -> None:
    first = scep.transaction_id_for(DEVICE_KEY.public_key())
    assert first == scep.transaction_id_for(DEVICE_KEY.public_key())
    assert first != scep.transaction_id_for(generate_rsa_key().public_key())
    assert len(first) == 64 and first.isalnum()


@pytest.mark.parametrize("cipher", ["aes128", "aes256", "des3"])
def test_pkcs_req_to_cert_rep_round_trip(cipher: str) -> None:
    csr = make_csr(DEVICE_KEY)
    der, nonce = pkcs_req(csr, cipher=cipher)

    request = parse(der)
    assert request.message_type is scep.MessageType.PKCS_REQ
    assert request.transaction_id == scep.transaction_id_for(DEVICE_KEY.public_key())
    assert request.sender_nonce == nonce and len(nonce) == 16
    assert request.signer_certificate == DEVICE_SELF_SIGNED
    assert request.csr == csr
    assert request.challenge_password == "one-time-secret"
    assert request.digest_algorithm == "sha256"
    assert request.content_cipher == cipher

    issued = CA.issue_device_certificate(request.csr)
    reply = scep.build_cert_rep_success(request, issued, ca_certificate=CA.certificate, ca_key=CA_KEY)
    assert cms_envelope.envelope_cipher(cms.verify_attached(reply, max_size=scep.MAX_PKI_MESSAGE_SIZE)[0]) == cipher

    rep = scep.parse_cert_rep(
        reply,
        requester_certificate=DEVICE_SELF_SIGNED,
        requester_key=DEVICE_KEY,
        ca_certificate=CA.certificate,
    )
    assert rep.status is scep.PkiStatus.SUCCESS and rep.fail_info is None
    assert rep.recipient_nonce == nonce
    assert rep.transaction_id == request.transaction_id
    assert rep.certificate == issued
    assert rep.certificate.public_key() == DEVICE_KEY.public_key()


def test_reply_uses_a_fresh_sender_nonce() -> None:
    request = parse(REQUEST_DER)
    reply = scep.build_cert_rep_failure(
        request, scep.FailInfo.BAD_REQUEST, ca_certificate=CA.certificate, ca_key=CA_KEY
    )
    message = cms.verify_signed(reply)
    sender_nonce = core.load(message.attribute(scep.OID_SENDER_NONCE) or b"").native
    assert len(sender_nonce) == 16 and sender_nonce != REQUEST_NONCE


def test_failure_reply_carries_fail_info_and_no_certificate() -> None:
    request = parse(REQUEST_DER)
    reply = scep.build_cert_rep_failure(
        request, scep.FailInfo.BAD_REQUEST, ca_certificate=CA.certificate, ca_key=CA_KEY
    )
    assert not cms.verify_signed(reply).encapsulated
    rep = scep.parse_cert_rep(
        reply,
        requester_certificate=DEVICE_SELF_SIGNED,
        requester_key=DEVICE_KEY,
        ca_certificate=CA.certificate,
    )
    assert (rep.status, rep.fail_info, rep.certificate) == (
        scep.PkiStatus.FAILURE,
        scep.FailInfo.BAD_REQUEST,
        None,
    )
    assert rep.recipient_nonce == REQUEST_NONCE


def test_cert_rep_from_another_ca_is_rejected() -> None:
    request = parse(REQUEST_DER)
    impostor = CertificateAuthority.generate("Impostor")
    reply = scep.build_cert_rep_failure(
        request, scep.FailInfo.BAD_REQUEST, ca_certificate=impostor.certificate, ca_key=impostor.key
    )
    with pytest.raises(ParseError, match="not signed by the CA"):
        scep.parse_cert_rep(
            reply,
            requester_certificate=DEVICE_SELF_SIGNED,
            requester_key=DEVICE_KEY,
            ca_certificate=CA.certificate,
        )


def test_renewal_request_is_signed_by_the_current_certificate() -> None:
    current = CA.issue_device_certificate(make_csr(DEVICE_KEY, challenge=None))
    new_key = generate_rsa_key()
    csr = make_csr(new_key, common_name="renamed", challenge=None)
    der, _ = pkcs_req(csr, signer=(current, DEVICE_KEY), message_type=scep.MessageType.RENEWAL_REQ)

    request = parse(der)
    assert request.message_type is scep.MessageType.RENEWAL_REQ
    assert request.signer_certificate == current
    assert request.challenge_password is None

    issued = CA.issue_device_certificate(request.csr)
    reply = scep.build_cert_rep_success(request, issued, ca_certificate=CA.certificate, ca_key=CA_KEY)
    rep = scep.parse_cert_rep(
        reply, requester_certificate=current, requester_key=DEVICE_KEY, ca_certificate=CA.certificate
    )
    assert rep.certificate is not None and rep.certificate.public_key() == new_key.public_key()


@pytest.mark.parametrize(
    ("string_type", "challenge"),
    [
        (_ASN1Type.PrintableString, "abc123"),
        (_ASN1Type.UTF8String, "pässwörd"),
        (_ASN1Type.BMPString, "pässwörd"),
        (_ASN1Type.IA5String, "ia5-secret"),
    ],
)
def test_challenge_password_string_types(string_type: _ASN1Type, challenge: str) -> None:
    der, _ = pkcs_req(make_csr(DEVICE_KEY, challenge=challenge, string_type=string_type))
    assert parse(der).challenge_password == challenge


def test_request_encrypted_to_another_ca_is_rejected() -> None:
    other = CertificateAuthority.generate("Other CA")
    der, _ = scep.build_pkcs_req(
        make_csr(DEVICE_KEY),
        signer_certificate=DEVICE_SELF_SIGNED,
        signer_key=DEVICE_KEY,
        recipient_certificate=other.certificate,
        transaction_id="T1",
    )
    with pytest.raises(ParseError, match="not addressed"):
        parse(der)


def test_csr_with_a_bad_self_signature_is_rejected() -> None:
    csr_der = bytearray(make_csr(DEVICE_KEY).public_bytes(Encoding.DER))
    csr_der[-5] ^= 0xFF  # inside the signature BIT STRING
    tampered = x509.load_der_x509_csr(bytes(csr_der))
    der, _ = pkcs_req(tampered)
    with pytest.raises(ParseError, match="self-signature"):
        parse(der)


def test_unsupported_message_type_is_rejected() -> None:
    der, _ = pkcs_req(make_csr(DEVICE_KEY), message_type=scep.MessageType.GET_CRL)
    with pytest.raises(ParseError, match="unsupported SCEP messageType"):
        parse(der)


def test_request_without_scep_attributes_is_rejected() -> None:
    plain = cms.sign_attached(cms_envelope.envelope(b"x", CA.certificate), DEVICE_SELF_SIGNED, DEVICE_KEY)
    with pytest.raises(ParseError, match="missing"):
        parse(plain)


def test_non_printable_transaction_id_is_rejected() -> None:
    der, _ = scep.build_pkcs_req(
        make_csr(DEVICE_KEY),
        signer_certificate=DEVICE_SELF_SIGNED,
        signer_key=DEVICE_KEY,
        recipient_certificate=CA.certificate,
        transaction_id="tab\there",
    )
    with pytest.raises(ParseError, match="transactionID"):
        parse(der)


@settings(max_examples=200)
@given(st.binary(max_size=4096))
def test_garbage_pki_message_raises_only_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(data)


@settings(max_examples=300)
@given(st.integers(0, len(REQUEST_DER) - 1), st.integers(0, 255))
def test_corrupted_pki_message_raises_only_parse_error(index: int, byte: int) -> None:
    corrupted = REQUEST_DER[:index] + bytes([byte]) + REQUEST_DER[index + 1 :]
    try:
        request = parse(corrupted)
    except ParseError:
        return
    assert request.sender_nonce == REQUEST_NONCE  # only bytes outside the signature may change


@settings(max_examples=200)
@given(st.binary(max_size=4096))
def test_garbage_cert_rep_raises_only_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        scep.parse_cert_rep(
            data,
            requester_certificate=DEVICE_SELF_SIGNED,
            requester_key=DEVICE_KEY,
            ca_certificate=CA.certificate,
        )


@settings(max_examples=100)
@given(
    st.binary(max_size=512)
    | st.builds(lambda csr, cut: csr[:cut], st.just(REQUEST_CSR_DER), st.integers(0, len(REQUEST_CSR_DER) - 1))
)
def test_garbage_inside_a_valid_envelope_raises_only_parse_error(inner: bytes) -> None:
    attributes = [
        (scep.OID_TRANSACTION_ID, core.PrintableString("T1")),
        (scep.OID_MESSAGE_TYPE, core.PrintableString("19")),
        (scep.OID_SENDER_NONCE, core.OctetString(b"n" * 16)),
    ]
    enveloped = cms_envelope.envelope(inner, CA.certificate)
    der = cms.build_signed_data(enveloped, DEVICE_SELF_SIGNED, DEVICE_KEY, attach=True, attributes=attributes)
    with pytest.raises(ParseError):
        parse(der)
