"""CMS (RFC 5652 §6) EnvelopedData: encrypt to one RSA recipient, decrypt what devices and SCEP clients send.

Spec: apple-protocols.md §4.6 (profile encryption), §5.2 (SCEP envelopes), §11 (asn1crypto parses and builds
the structures; `cryptography` does every primitive). Every function that reads untrusted bytes raises
`ParseError` and nothing else on bad input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from asn1crypto import cms, parser
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes

from muster.protocols.cms import hash_named, identifies, issuer_and_serial, load_content_info, to_asn1, untrusted
from muster.protocols.errors import ParseError

MAX_ENVELOPE_SIZE = 1024 * 1024

# cipher name -> (asn1crypto algorithm name, key bytes)
_CIPHERS: dict[str, tuple[str, int]] = {
    "aes128": ("aes128_cbc", 16),
    "aes192": ("aes192_cbc", 24),
    "aes256": ("aes256_cbc", 32),
    "des3": ("tripledes_3key", 24),
    "des": ("des", 8),
}
_CIPHER_NAMES = {algorithm: name for name, (algorithm, _) in _CIPHERS.items()}
# Single DES is accepted for decryption only: micromdm's scepclient still sends it by default.
ENVELOPE_CIPHERS = ("aes128", "aes192", "aes256", "des3")
_UNDECRYPTABLE = "EnvelopedData could not be decrypted"
_UNIVERSAL, _CONTEXT, _OCTET_STRING = 0, 2, 4


def envelope(content: bytes, recipient: x509.Certificate, *, cipher: str = "aes256") -> bytes:
    """EnvelopedData of `content` for one RSA recipient (key transport PKCS#1 v1.5, CBC content)."""
    if cipher not in ENVELOPE_CIPHERS:
        raise ValueError(f"unsupported cipher {cipher}; choose one of {ENVELOPE_CIPHERS}")
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("envelope recipients must have an RSA key")
    algorithm_name, key_size = _CIPHERS[cipher]
    content_key = os.urandom(key_size)
    block_cipher = _block_cipher(algorithm_name, content_key)
    iv = os.urandom(block_cipher.block_size // 8)
    recipient_info = cms.KeyTransRecipientInfo(
        {
            "version": "v0",
            "rid": cms.RecipientIdentifier({"issuer_and_serial_number": issuer_and_serial(recipient)}),
            "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
            "encrypted_key": public_key.encrypt(content_key, padding.PKCS1v15()),
        }
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [cms.RecipientInfo({"ktri": recipient_info})],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": algorithm_name, "parameters": iv},
                "encrypted_content": _cbc_encrypt(block_cipher, iv, content),
            },
        }
    )
    return bytes(cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump())


def decrypt_envelope(
    der: bytes,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate | None = None,
    *,
    max_size: int = MAX_ENVELOPE_SIZE,
) -> bytes:
    """Content of an EnvelopedData addressed to `key` (RSA PKCS#1 v1.5 or OAEP key transport;
    AES-CBC, DES-EDE3-CBC or DES-CBC content). `certificate` selects the recipient among several."""
    with untrusted("CMS EnvelopedData", der, max_size):
        enveloped = load_content_info(der, "enveloped_data")
        recipient = _select_recipient(enveloped["recipient_infos"], certificate)
        content_key = _decrypt_content_key(recipient, key)
        return _decrypt_content(enveloped["encrypted_content_info"], content_key)


def envelope_cipher(der: bytes, *, max_size: int = MAX_ENVELOPE_SIZE) -> str:
    """The content cipher of an EnvelopedData ("aes256", "des3", ...), to answer in kind."""
    with untrusted("CMS EnvelopedData", der, max_size):
        enveloped = load_content_info(der, "enveloped_data")
        algorithm = enveloped["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native
        if algorithm not in _CIPHER_NAMES:
            raise ParseError(f"unsupported content encryption {algorithm}")
        return _CIPHER_NAMES[algorithm]


def _select_recipient(recipient_infos: Any, certificate: x509.Certificate | None) -> Any:
    transports = [info.chosen for info in recipient_infos if info.name == "ktri"]
    if certificate is None:
        if len(transports) != 1:
            raise ParseError("EnvelopedData must have exactly one key-transport recipient")
        return transports[0]
    wanted = to_asn1(certificate)
    for recipient in transports:
        if identifies(recipient["rid"], wanted):
            return recipient
    raise ParseError("EnvelopedData is not addressed to this certificate")


def _decrypt_content_key(recipient: Any, key: rsa.RSAPrivateKey) -> bytes:
    algorithm = recipient["key_encryption_algorithm"]
    encrypted_key = recipient["encrypted_key"].native
    name = algorithm["algorithm"].native
    scheme: padding.AsymmetricPadding
    if name == "rsaes_pkcs1v15":
        scheme = padding.PKCS1v15()
    elif name == "rsaes_oaep":
        scheme = _oaep_padding(algorithm["parameters"])
    else:
        raise ParseError(f"unsupported key transport {name}")
    try:
        return key.decrypt(encrypted_key, scheme)
    except ValueError:
        raise ParseError(_UNDECRYPTABLE) from None


def _oaep_padding(parameters: Any) -> padding.OAEP:
    if parameters["mask_gen_algorithm"]["algorithm"].native != "mgf1":
        raise ParseError("unsupported OAEP mask generation function")
    label = parameters["p_source_algorithm"]["parameters"].native
    return padding.OAEP(
        mgf=padding.MGF1(hash_named(parameters["mask_gen_algorithm"]["parameters"]["algorithm"].native)),
        algorithm=hash_named(parameters["hash_algorithm"]["algorithm"].native),
        label=label or None,
    )


def _decrypt_content(info: Any, content_key: bytes) -> bytes:
    algorithm = info["content_encryption_algorithm"]
    name = algorithm["algorithm"].native
    if name not in _CIPHER_NAMES:
        raise ParseError(f"unsupported content encryption {name}")
    iv = algorithm["parameters"].native
    ciphertext = _encrypted_content(info)
    block_bytes = 16 if name.startswith("aes") else 8
    if not isinstance(iv, bytes) or len(iv) != block_bytes:
        raise ParseError("bad content-encryption IV")
    if not ciphertext or len(ciphertext) % block_bytes:
        raise ParseError("encrypted content is not a whole number of blocks")
    # One message for a wrong key and for bad padding, so replies are no decryption oracle.
    if len(content_key) != _CIPHERS[_CIPHER_NAMES[name]][1]:
        raise ParseError(_UNDECRYPTABLE)
    block_cipher = _block_cipher(name, content_key)
    decryptor = Cipher(block_cipher, modes.CBC(iv)).decryptor()
    unpadder = symmetric_padding.PKCS7(block_cipher.block_size).unpadder()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ParseError(_UNDECRYPTABLE) from None


def _encrypted_content(info: Any) -> bytes:
    """encryptedContent ([0] IMPLICIT OCTET STRING), primitive or in constructed BER form: Go's pkcs7
    (micromdm's scepclient) and streaming encoders send the latter, which asn1crypto refuses."""
    for class_, constructed, tag, contents in list(_elements(info.contents))[2:]:
        if (class_, tag) == (_CONTEXT, 0):
            return b"".join(_octet_chunks(contents)) if constructed else contents
    raise ParseError("EnvelopedData has no encrypted content")


def _octet_chunks(data: bytes) -> Iterator[bytes]:
    for class_, constructed, tag, contents in _elements(data):
        if (class_, constructed, tag) != (_UNIVERSAL, False, _OCTET_STRING):
            raise ParseError("malformed encrypted content")
        yield contents


def _elements(data: bytes) -> Iterator[tuple[int, bool, int, bytes]]:
    """(class, constructed, tag, contents) of each TLV in `data`."""
    pointer = 0
    while pointer < len(data):
        length = parser.peek(data[pointer:])
        class_, method, tag, _, contents, _ = parser.parse(data[pointer : pointer + length], strict=True)
        yield class_, method == 1, tag, contents
        pointer += length


def _block_cipher(algorithm_name: str, key: bytes) -> BlockCipherAlgorithm:
    if algorithm_name.startswith("aes"):
        return algorithms.AES(key)
    # Single DES is triple DES with one key repeated (cryptography no longer takes 8-byte keys).
    return TripleDES(key * 3 if len(key) == 8 else key)


def _cbc_encrypt(block_cipher: BlockCipherAlgorithm, iv: bytes, content: bytes) -> bytes:
    padder = symmetric_padding.PKCS7(block_cipher.block_size).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(block_cipher, modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()
