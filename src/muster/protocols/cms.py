"""CMS (RFC 5652) SignedData: the subset Apple MDM and SCEP need, plus the helpers `cms_envelope` shares.

Spec: apple-protocols.md §3.2 (`Mdm-Signature`), §4.6 (profile signing), §5.2 (SCEP messages), §11
(asn1crypto parses and builds the structures; `cryptography` does every primitive). EnvelopedData lives in
`muster.protocols.cms_envelope`. Every function that reads untrusted bytes raises `ParseError` and nothing
else on bad input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from muster.protocols.errors import ParseError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

MAX_SIGNED_SIZE = 64 * 1024

OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_RSA_SIGNATURES = frozenset({"rsassa_pkcs1v15", *(f"{name}_rsa" for name in _HASHES)})
# Some signers name the key type (id-ecPublicKey) instead of an ecdsa-with-SHA* algorithm.
_EC_SIGNATURES = frozenset({"ecdsa", "1.2.840.10045.2.1", *(f"{name}_ecdsa" for name in _HASHES)})

# What asn1crypto and cryptography raise on malformed input.
_MALFORMED = (
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    RecursionError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
)


@dataclass(frozen=True)
class SignedMessage:
    """A SignedData whose one signature verified (RFC 5652 §5; apple-protocols.md §3.2).

    `signed_attributes` maps each attribute type (dotted OID) to the DER of its values;
    `encapsulated` tells whether the content travelled inside the message (attached).
    """

    content: bytes
    encapsulated: bool
    content_type: str
    signer: x509.Certificate
    digest_algorithm: str
    signed_attributes: Mapping[str, tuple[bytes, ...]]

    def attribute(self, oid: str) -> bytes | None:
        """DER of the single value of a signed attribute, None when absent."""
        values = self.signed_attributes.get(oid)
        if values is None:
            return None
        if len(values) != 1:
            raise ParseError(f"signed attribute {oid} must have exactly one value")
        return values[0]


@contextmanager
def untrusted(what: str, der: bytes, max_size: int) -> Iterator[None]:
    """Refuse oversized input, and turn the library errors malformed input provokes into ParseError.
    Shared with `cms_envelope`, like the other public helpers below."""
    if len(der) > max_size:
        raise ParseError(f"{what} larger than {max_size} bytes")
    try:
        yield
    except ParseError:
        raise
    except InvalidSignature as exc:
        raise ParseError(f"{what}: signature does not verify") from exc
    except _MALFORMED as exc:
        raise ParseError(f"malformed {what}") from exc


def load_content_info(der: bytes, expected: str) -> Any:
    """The content of a ContentInfo of type `expected` ("signed_data", "enveloped_data")."""
    info = cms.ContentInfo.load(der, strict=True)
    if info["content_type"].native != expected:
        raise ParseError(f"expected CMS {expected}")
    return info["content"]


def hash_named(name: str) -> hashes.HashAlgorithm:
    """The hash for an asn1crypto digest name; ParseError for one we do not support."""
    try:
        return _HASHES[name]()
    except KeyError:
        raise ParseError(f"unsupported digest algorithm {name}") from None


def _digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize()


def to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    """The asn1crypto form of a certificate, to compare names and serials or embed it."""
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _load_certificate(certificate: asn1_x509.Certificate) -> x509.Certificate:
    # cryptography only warns about non-positive serials (RFC 5280 §4.1.2.2); refuse them outright.
    if certificate.serial_number <= 0:
        raise ParseError("certificate serial number must be positive")
    return x509.load_der_x509_certificate(certificate.dump())


def issuer_and_serial(certificate: x509.Certificate) -> cms.IssuerAndSerialNumber:
    """The IssuerAndSerialNumber naming `certificate` as a signer or a recipient."""
    parsed = to_asn1(certificate)
    return cms.IssuerAndSerialNumber({"issuer": parsed.issuer, "serial_number": parsed.serial_number})


def identifies(identifier: Any, certificate: asn1_x509.Certificate) -> bool:
    """True when a SignerIdentifier / RecipientIdentifier names `certificate`."""
    if identifier.name == "issuer_and_serial_number":
        wanted = identifier.chosen
        if certificate.serial_number != wanted["serial_number"].native:
            return False
        # Identical encodings are the common case and cheap to compare; asn1crypto's Name equality runs LDAP
        # string preparation over every attribute, which showed up as the top cost of each device request.
        return bool(certificate.issuer.dump() == wanted["issuer"].dump() or certificate.issuer == wanted["issuer"])
    return certificate.key_identifier is not None and certificate.key_identifier == identifier.chosen.native


# --- SignedData: verification ---------------------------------------------------------------------------


def verify_signed(
    der: bytes, *, detached_content: bytes | None = None, require_content: bool = False, max_size: int = MAX_SIGNED_SIZE
) -> SignedMessage:
    """Verify a SignedData with exactly one signer whose certificate travels in the message.

    Without encapsulated content the signature covers `detached_content`, or the empty string when
    none is given (a SCEP failure reply carries no content) and `require_content` is false.
    """
    with untrusted("CMS SignedData", der, max_size):
        signed_data = load_content_info(der, "signed_data")
        encapsulated_info = signed_data["encap_content_info"]
        content = _signed_content(encapsulated_info, detached_content, require_content)
        return _verify(signed_data, encapsulated_info, content)


def verify_detached(signature_der: bytes, content: bytes) -> x509.Certificate:
    """Check an `Mdm-Signature` (detached SignedData over the body) and return the signer certificate."""
    message = verify_signed(signature_der, detached_content=content)
    return message.signer


def verify_attached(der: bytes, *, max_size: int = MAX_SIGNED_SIZE) -> tuple[bytes, x509.Certificate]:
    """Verify a SignedData that carries its content; return (content, signer certificate)."""
    message = verify_signed(der, require_content=True, max_size=max_size)
    return message.content, message.signer


def _verify(signed_data: Any, encapsulated_info: Any, signed_content: tuple[bool, bytes]) -> SignedMessage:
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise ParseError("CMS SignedData must have exactly one signer")
    signer_info = signer_infos[0]
    content_type = encapsulated_info["content_type"].native
    encapsulated, content = signed_content
    signer = _find_signer(signed_data, signer_info["sid"])
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    hash_algorithm = hash_named(digest_name)
    attributes: dict[str, tuple[bytes, ...]] = {}
    signed_bytes = content
    if not isinstance(signer_info["signed_attrs"], core.Void):
        attributes = _attribute_map(signer_info["signed_attrs"])
        signed_bytes = _signed_attributes_der(signer_info["signed_attrs"])
    message = SignedMessage(content, encapsulated, content_type, signer, digest_name, attributes)
    if attributes:
        _check_attributes(message, hash_algorithm)
    _verify_signature(signer, signer_info, signed_bytes, hash_algorithm)
    return message


def _signed_content(
    encapsulated_info: Any, detached_content: bytes | None, require_content: bool
) -> tuple[bool, bytes]:
    encapsulated = encapsulated_info["content"]
    if isinstance(encapsulated, core.Void):
        if require_content:
            raise ParseError("CMS SignedData carries no content")
        return False, b"" if detached_content is None else detached_content
    if detached_content is not None:
        raise ParseError("expected a detached signature but the SignedData carries content")
    return True, bytes(encapsulated)


def _find_signer(signed_data: Any, identifier: Any) -> x509.Certificate:
    certificates = signed_data["certificates"]
    if not isinstance(certificates, core.Void):
        for choice in certificates:
            if choice.name == "certificate" and identifies(identifier, choice.chosen):
                return _load_certificate(choice.chosen)
    raise ParseError("signer certificate missing from CMS SignedData")


def _attribute_map(signed_attrs: Any) -> dict[str, tuple[bytes, ...]]:
    attributes: dict[str, tuple[bytes, ...]] = {}
    for attribute in signed_attrs:
        oid = attribute["type"].dotted
        values = tuple(value.dump() for value in attribute["values"])
        attributes[oid] = attributes.get(oid, ()) + values
    return attributes


def _signed_attributes_der(signed_attrs: Any) -> bytes:
    # The signature covers the attributes as received, re-tagged from [0] IMPLICIT to SET OF.
    encoded = signed_attrs.dump()
    if encoded[:1] != b"\xa0":
        raise ParseError("malformed signed attributes")
    return b"\x31" + encoded[1:]


def _check_attributes(message: SignedMessage, hash_algorithm: hashes.HashAlgorithm) -> None:
    digest = message.attribute(OID_MESSAGE_DIGEST)
    if digest is None:
        raise ParseError("signed attributes lack messageDigest")
    if core.OctetString.load(digest).native != _digest(message.content, hash_algorithm):
        raise ParseError("messageDigest does not match the content")
    content_type = message.attribute(OID_CONTENT_TYPE)
    if content_type is not None and cms.ContentType.load(content_type).native != message.content_type:
        raise ParseError("contentType attribute does not match the content")


def _verify_signature(
    signer: x509.Certificate, signer_info: Any, data: bytes, hash_algorithm: hashes.HashAlgorithm
) -> None:
    algorithm = signer_info["signature_algorithm"]["algorithm"].native
    signature = signer_info["signature"].native
    public_key = signer.public_key()
    if isinstance(public_key, rsa.RSAPublicKey) and algorithm in _RSA_SIGNATURES:
        public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm in _EC_SIGNATURES:
        public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
    else:
        raise ParseError(f"unsupported signature algorithm {algorithm}")


# --- SignedData: signing ---------------------------------------------------------------------------------


def build_signed_data(
    content: bytes,
    certificate: x509.Certificate,
    key: PrivateKey,
    *,
    attach: bool,
    attributes: Sequence[tuple[str, core.Asn1Value]] = (),
    extra_certificates: Sequence[x509.Certificate] = (),
    digest: str = "sha256",
) -> bytes:
    """DER ContentInfo/SignedData with one signer and signed attributes (contentType, messageDigest
    and `attributes`, each a single value keyed by dotted OID)."""
    hash_algorithm = hash_named(digest)
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [_digest(content, hash_algorithm)]}),
            *(_custom_attribute(oid, value) for oid, value in attributes),
        ]
    )
    # CMSAttributes is a SET OF: asn1crypto sorts it into DER, which is what the signature covers.
    signature = _sign(key, signed_attrs.dump(), hash_algorithm)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": issuer_and_serial(certificate)}),
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": _signature_algorithm(key, digest)},
            "signature": signature,
        }
    )
    encapsulated: dict[str, Any] = {"content_type": "data"}
    if attach:
        encapsulated["content"] = content
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": digest}],
            "encap_content_info": encapsulated,
            "certificates": [to_asn1(cert) for cert in (certificate, *extra_certificates)],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


def _custom_attribute(oid: str, value: core.Asn1Value) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": oid, "values": [core.Any.load(value.dump())]})


def _signature_algorithm(key: PrivateKey, digest: str) -> str:
    return "rsassa_pkcs1v15" if isinstance(key, rsa.RSAPrivateKey) else f"{digest}_ecdsa"


def _sign(key: PrivateKey, data: bytes, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hash_algorithm)
    return key.sign(data, ec.ECDSA(hash_algorithm))


def sign_attached(
    content: bytes, certificate: x509.Certificate, key: PrivateKey, extra_certificates: Sequence[x509.Certificate] = ()
) -> bytes:
    """SignedData carrying `content` (a signed .mobileconfig, §4.6)."""
    return build_signed_data(content, certificate, key, attach=True, extra_certificates=extra_certificates)


def sign_detached(content: bytes, certificate: x509.Certificate, key: PrivateKey) -> bytes:
    """Detached SignedData over `content`, as a device sends in `Mdm-Signature` (§3.1)."""
    return build_signed_data(content, certificate, key, attach=False)


def degenerate_certificates(certs: Sequence[x509.Certificate]) -> bytes:
    """Certificates-only SignedData (RFC 8894 §3.4, GetCACert with several certificates, CertRep)."""
    return pkcs7.serialize_certificates(list(certs), serialization.Encoding.DER)


def load_degenerate_certificates(der: bytes, *, max_size: int = MAX_SIGNED_SIZE) -> list[x509.Certificate]:
    """The certificates of a certificates-only SignedData."""
    with untrusted("CMS certificates", der, max_size):
        certificates = load_content_info(der, "signed_data")["certificates"]
        if isinstance(certificates, core.Void):
            return []
        return [_load_certificate(choice.chosen) for choice in certificates if choice.name == "certificate"]
