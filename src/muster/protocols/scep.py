"""SCEP (RFC 8894) PKI messages: server side (parse requests, build CertRep) and client side (build
requests, read CertRep) for the virtual devices. Spec: apple-protocols.md §5.

A PKIMessage is a CMS SignedData whose signed attributes carry the SCEP fields (§5.2 table) and whose
content is an EnvelopedData (the "pkcsPKIEnvelope") holding a PKCS#10 request or, in a reply, a
certificates-only SignedData.
"""

from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from asn1crypto import core
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from muster.protocols import cms, cms_envelope
from muster.protocols.errors import ParseError

MAX_PKI_MESSAGE_SIZE = 256 * 1024
MAX_TRANSACTION_ID_LENGTH = 128
MAX_NONCE_SIZE = 64
NONCE_SIZE = 16

_SCEP_ARC = "2.16.840.1.113733.1.9"
OID_MESSAGE_TYPE = f"{_SCEP_ARC}.2"
OID_PKI_STATUS = f"{_SCEP_ARC}.3"
OID_FAIL_INFO = f"{_SCEP_ARC}.4"
OID_SENDER_NONCE = f"{_SCEP_ARC}.5"
OID_RECIPIENT_NONCE = f"{_SCEP_ARC}.6"
OID_TRANSACTION_ID = f"{_SCEP_ARC}.7"

# Answer GetCACaps with these (§5.3); DES3 because we decrypt it and older clients only offer it.
CA_CAPABILITIES = ("POSTPKIOperation", "SHA-256", "SHA-512", "AES", "DES3", "SCEPStandard", "Renewal")

_PRINTABLE = frozenset(string.ascii_letters + string.digits + " '()+,-./:=?")
_STRING_TYPES = (core.PrintableString, core.UTF8String, core.IA5String)


class MessageType(IntEnum):
    """SCEP messageType values (RFC 8894 §3.2.1.2)."""

    CERT_REP = 3
    RENEWAL_REQ = 17
    UPDATE_REQ = 18
    PKCS_REQ = 19
    CERT_POLL = 20
    GET_CERT = 21
    GET_CRL = 22


class PkiStatus(IntEnum):
    """SCEP pkiStatus values (RFC 8894 §3.2.1.3)."""

    SUCCESS = 0
    FAILURE = 2
    PENDING = 3


class FailInfo(IntEnum):
    """SCEP failInfo values (RFC 8894 §3.2.1.4)."""

    BAD_ALG = 0
    BAD_MESSAGE_CHECK = 1
    BAD_REQUEST = 2
    BAD_TIME = 3
    BAD_CERT_ID = 4


_CSR_MESSAGES = frozenset({MessageType.PKCS_REQ, MessageType.RENEWAL_REQ, MessageType.UPDATE_REQ})
_Enum = TypeVar("_Enum", MessageType, PkiStatus, FailInfo)


@dataclass(frozen=True)
class PkiRequest:
    """A verified, decrypted PKCSReq / RenewalReq / UpdateReq (RFC 8894 §3.3.1, spec §5.2).

    `content_cipher` is the request's envelope cipher, reused for the reply when it is strong enough.
    """

    message_type: MessageType
    transaction_id: str
    sender_nonce: bytes
    signer_certificate: x509.Certificate
    csr: x509.CertificateSigningRequest
    challenge_password: str | None
    digest_algorithm: str
    content_cipher: str = "aes256"


@dataclass(frozen=True)
class CertRep:
    """A CertRep whose CA signature verified (RFC 8894 §3.3.2)."""

    status: PkiStatus
    fail_info: FailInfo | None
    certificate: x509.Certificate | None
    recipient_nonce: bytes
    transaction_id: str


def encode_ca_caps() -> bytes:
    """The GetCACaps body: one capability per line."""
    return "\n".join(CA_CAPABILITIES).encode("ascii")


def transaction_id_for(public_key: PublicKeyTypes) -> str:
    """Hex SHA-256 of the SubjectPublicKeyInfo: stable for one key, as RFC 8894 §3.2.1.1 suggests."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


# --- server side ----------------------------------------------------------------------------------------


def parse_pki_message(der: bytes, *, ca_certificate: x509.Certificate, ca_key: rsa.RSAPrivateKey) -> PkiRequest:
    """Verify, decrypt and read a certificate request sent to the CA."""
    message = cms.verify_signed(der, max_size=MAX_PKI_MESSAGE_SIZE)
    message_type = _enum_attribute(message, OID_MESSAGE_TYPE, MessageType)
    if message_type not in _CSR_MESSAGES:
        raise ParseError(f"unsupported SCEP messageType {message_type.name}")
    if not message.encapsulated:
        raise ParseError("SCEP request carries no pkcsPKIEnvelope")
    # The reply is encrypted to the signer certificate, which only RSA key transport allows.
    if not isinstance(message.signer.public_key(), rsa.RSAPublicKey):
        raise ParseError("SCEP requests must be signed with an RSA key")
    csr_der = cms_envelope.decrypt_envelope(message.content, ca_key, ca_certificate, max_size=MAX_PKI_MESSAGE_SIZE)
    return PkiRequest(
        message_type=message_type,
        transaction_id=_transaction_id(message),
        sender_nonce=_nonce(message, OID_SENDER_NONCE),
        signer_certificate=message.signer,
        csr=_load_csr(csr_der),
        challenge_password=_challenge_password(csr_der),
        digest_algorithm=message.digest_algorithm,
        content_cipher=cms_envelope.envelope_cipher(message.content),
    )


def build_cert_rep_success(
    request: PkiRequest, issued: x509.Certificate, *, ca_certificate: x509.Certificate, ca_key: cms.PrivateKey
) -> bytes:
    """CertRep SUCCESS: the issued certificate, certificates-only, enveloped to the requester (§5.2)."""
    cipher = request.content_cipher if request.content_cipher in cms_envelope.ENVELOPE_CIPHERS else "aes256"
    degenerate = cms.degenerate_certificates([issued])
    enveloped = cms_envelope.envelope(degenerate, request.signer_certificate, cipher=cipher)
    attributes = _reply_attributes(request, PkiStatus.SUCCESS)
    # Like micromdm, also list the issued certificate outside the envelope for clients that look there.
    return cms.build_signed_data(
        enveloped, ca_certificate, ca_key, attach=True, attributes=attributes, extra_certificates=[issued]
    )


def build_cert_rep_failure(
    request: PkiRequest, fail_info: FailInfo, *, ca_certificate: x509.Certificate, ca_key: cms.PrivateKey
) -> bytes:
    """CertRep FAILURE: signed attributes only, no pkcsPKIEnvelope (RFC 8894 §3.3.2)."""
    attributes = _reply_attributes(request, PkiStatus.FAILURE)
    attributes.append((OID_FAIL_INFO, core.PrintableString(str(int(fail_info)))))
    return cms.build_signed_data(b"", ca_certificate, ca_key, attach=False, attributes=attributes)


def _reply_attributes(request: PkiRequest, status: PkiStatus) -> list[tuple[str, core.Asn1Value]]:
    return [
        (OID_TRANSACTION_ID, core.PrintableString(request.transaction_id)),
        (OID_MESSAGE_TYPE, core.PrintableString(str(int(MessageType.CERT_REP)))),
        (OID_PKI_STATUS, core.PrintableString(str(int(status)))),
        (OID_SENDER_NONCE, core.OctetString(os.urandom(NONCE_SIZE))),
        (OID_RECIPIENT_NONCE, core.OctetString(request.sender_nonce)),
    ]


def _load_csr(der: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_der_x509_csr(der)
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        raise ParseError("pkcsPKIEnvelope does not hold a valid PKCS#10 request") from None
    if not valid:
        raise ParseError("the certificate request's self-signature does not verify")
    return csr


def _challenge_password(csr_der: bytes) -> str | None:
    """challengePassword (PKCS#9), any DirectoryString flavour; None when absent."""
    try:
        request_info = asn1_csr.CertificationRequest.load(csr_der)["certification_request_info"]
        for attribute in request_info["attributes"]:
            if attribute["type"].native == "challenge_password":
                # Read the raw single value: clients use PrintableString, UTF8String, IA5String, BMPString...
                value = core.load(attribute["values"].contents, strict=True)
                if not isinstance(value, core.AbstractString):
                    raise ParseError("challengePassword must be a string")
                return str(value.native)
    except (ValueError, TypeError, KeyError):
        raise ParseError("malformed challengePassword") from None
    return None


# --- client side (virtual devices, tests) ---------------------------------------------------------------


def build_pkcs_req(
    csr: x509.CertificateSigningRequest,
    *,
    signer_certificate: x509.Certificate,
    signer_key: cms.PrivateKey,
    recipient_certificate: x509.Certificate,
    transaction_id: str,
    message_type: MessageType = MessageType.PKCS_REQ,
    cipher: str = "aes256",
) -> tuple[bytes, bytes]:
    """A PKCSReq (or RenewalReq/UpdateReq) for the CA; returns (DER, senderNonce)."""
    sender_nonce = os.urandom(NONCE_SIZE)
    enveloped = cms_envelope.envelope(
        csr.public_bytes(serialization.Encoding.DER), recipient_certificate, cipher=cipher
    )
    attributes: list[tuple[str, core.Asn1Value]] = [
        (OID_TRANSACTION_ID, core.PrintableString(transaction_id)),
        (OID_MESSAGE_TYPE, core.PrintableString(str(int(message_type)))),
        (OID_SENDER_NONCE, core.OctetString(sender_nonce)),
    ]
    der = cms.build_signed_data(enveloped, signer_certificate, signer_key, attach=True, attributes=attributes)
    return der, sender_nonce


def parse_cert_rep(
    der: bytes,
    *,
    requester_certificate: x509.Certificate,
    requester_key: rsa.RSAPrivateKey,
    ca_certificate: x509.Certificate,
) -> CertRep:
    """Verify a CertRep from `ca_certificate` and, on success, decrypt the issued certificate."""
    message = cms.verify_signed(der, max_size=MAX_PKI_MESSAGE_SIZE)
    if message.signer != ca_certificate:
        raise ParseError("CertRep is not signed by the CA")
    if _enum_attribute(message, OID_MESSAGE_TYPE, MessageType) is not MessageType.CERT_REP:
        raise ParseError("not a CertRep")
    status = _enum_attribute(message, OID_PKI_STATUS, PkiStatus)
    fail_info = _enum_attribute(message, OID_FAIL_INFO, FailInfo) if status is PkiStatus.FAILURE else None
    certificate = None
    if status is PkiStatus.SUCCESS:
        certificate = _issued_certificate(message, requester_certificate, requester_key)
    return CertRep(
        status=status,
        fail_info=fail_info,
        certificate=certificate,
        recipient_nonce=_nonce(message, OID_RECIPIENT_NONCE),
        transaction_id=_transaction_id(message),
    )


def _issued_certificate(
    message: cms.SignedMessage, requester_certificate: x509.Certificate, requester_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    if not message.encapsulated:
        raise ParseError("successful CertRep carries no pkcsPKIEnvelope")
    degenerate = cms_envelope.decrypt_envelope(message.content, requester_key, requester_certificate)
    certificates = cms.load_degenerate_certificates(degenerate)
    if not certificates:
        raise ParseError("CertRep envelope holds no certificate")
    return certificates[0]


# --- signed attributes ----------------------------------------------------------------------------------


def _required_attribute(message: cms.SignedMessage, oid: str) -> core.Asn1Value:
    der = message.attribute(oid)
    if der is None:
        raise ParseError(f"SCEP attribute {oid} missing")
    try:
        return core.load(der)
    except ValueError:
        raise ParseError(f"SCEP attribute {oid} malformed") from None


def _string_attribute(message: cms.SignedMessage, oid: str) -> str:
    value = _required_attribute(message, oid)
    if not isinstance(value, _STRING_TYPES):
        raise ParseError(f"SCEP attribute {oid} must be a PrintableString")
    try:
        return str(value.native)
    except ValueError:
        raise ParseError(f"SCEP attribute {oid} malformed") from None


def _enum_attribute(message: cms.SignedMessage, oid: str, enum: type[_Enum]) -> _Enum:
    text = _string_attribute(message, oid)
    try:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(text)
        return enum(int(text))
    except ValueError:
        raise ParseError(f"SCEP attribute {oid} has an unknown value") from None


def _transaction_id(message: cms.SignedMessage) -> str:
    text = _string_attribute(message, OID_TRANSACTION_ID)
    if not 0 < len(text) <= MAX_TRANSACTION_ID_LENGTH or not _PRINTABLE.issuperset(text):
        raise ParseError("transactionID must be 1-128 PrintableString characters")
    return text


def _nonce(message: cms.SignedMessage, oid: str) -> bytes:
    value = _required_attribute(message, oid)
    if not isinstance(value, core.OctetString) or not 0 < len(value.native) <= MAX_NONCE_SIZE:
        raise ParseError(f"SCEP nonce {oid} must be a short OCTET STRING")
    return bytes(value.native)
