"""Encryption of secrets at rest (CA and push keys, bootstrap tokens, unlock tokens, API secrets).

AES-256-GCM with a random 96-bit nonce; the `purpose` is bound as associated data so that a ciphertext copied
into another column does not decrypt there.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
KEY_BYTES = 32


class SecretDecryptionError(Exception):
    """A stored secret could not be decrypted: wrong master key or tampered data."""


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError(f"the master key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(master_key)

    @staticmethod
    def generate_key() -> bytes:
        return AESGCM.generate_key(bit_length=KEY_BYTES * 8)

    @staticmethod
    def decode_key(text: str) -> bytes:
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the master key must be base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"the master key must decode to {KEY_BYTES} bytes, not {len(key)}")
        return key

    def encrypt(self, plaintext: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())

    def decrypt(self, ciphertext: bytes, *, purpose: str) -> bytes:
        if len(ciphertext) < 29 or ciphertext[:1] != _VERSION:
            raise SecretDecryptionError(f"stored secret for {purpose!r} is malformed")
        try:
            return self._aead.decrypt(ciphertext[1:13], ciphertext[13:], purpose.encode())
        except InvalidTag:
            raise SecretDecryptionError(
                f"stored secret for {purpose!r} does not decrypt: wrong master key or tampered data"
            ) from None
