"""CMS EnvelopedData: round trips, wrong recipients, garbage, and cross-checks with `openssl cms`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.protocols import cms_envelope
from muster.protocols.errors import ParseError
from tests.protocols.test_cms import (
    BODY,
    EC_CERT,
    OTHER_CERT,
    RSA_CERT,
    RSA_KEY,
    flip,
    needs_openssl,
    openssl,
    write_identity,
)


@pytest.mark.parametrize("cipher", cms_envelope.ENVELOPE_CIPHERS)
def test_envelope_round_trip(cipher: str) -> None:
    enveloped = cms_envelope.envelope(BODY, RSA_CERT, cipher=cipher)
    assert cms_envelope.envelope_cipher(enveloped) == cipher
    assert cms_envelope.decrypt_envelope(enveloped, RSA_KEY, RSA_CERT) == BODY
    assert cms_envelope.decrypt_envelope(enveloped, RSA_KEY) == BODY


def test_envelope_for_another_certificate_is_rejected() -> None:
    enveloped = cms_envelope.envelope(BODY, OTHER_CERT)
    with pytest.raises(ParseError, match="not addressed to this certificate"):
        cms_envelope.decrypt_envelope(enveloped, RSA_KEY, RSA_CERT)
    with pytest.raises(ParseError):
        cms_envelope.decrypt_envelope(enveloped, RSA_KEY)


def test_envelope_refuses_weak_ciphers_and_non_rsa_recipients() -> None:
    with pytest.raises(ValueError, match="unsupported cipher"):
        cms_envelope.envelope(BODY, RSA_CERT, cipher="des")
    with pytest.raises(ValueError, match="RSA"):
        cms_envelope.envelope(BODY, EC_CERT)


def test_tampered_ciphertext_is_rejected_or_garbled() -> None:
    enveloped = cms_envelope.envelope(BODY, RSA_CERT)
    try:
        plaintext = cms_envelope.decrypt_envelope(flip(enveloped, len(enveloped) - 1), RSA_KEY)
    except ParseError:
        return
    assert plaintext != BODY  # CBC has no integrity: a flipped last block mostly breaks the padding


@needs_openssl
@pytest.mark.parametrize(
    "options",
    [
        "-aes-128-cbc",
        "-aes-256-cbc",
        "-des3",
        "-aes-256-cbc -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256",  # -keyopt follows -recip
        "-des-cbc -provider legacy -provider default",
    ],
    ids=["aes128", "aes256", "des3", "oaep", "des"],
)
def test_decrypts_openssl_envelopes(tmp_path: Path, options: str) -> None:
    write_identity(tmp_path, RSA_KEY, RSA_CERT)
    enveloped = openssl(f"cms -encrypt -binary -outform DER -recip cert.pem {options}", cwd=tmp_path, stdin=BODY)
    assert cms_envelope.decrypt_envelope(enveloped, RSA_KEY, RSA_CERT) == BODY


@needs_openssl
def test_decrypts_openssl_streamed_ber_envelope(tmp_path: Path) -> None:
    write_identity(tmp_path, RSA_KEY, RSA_CERT)
    enveloped = openssl("cms -encrypt -binary -stream -outform DER -recip cert.pem", cwd=tmp_path, stdin=BODY * 100)
    assert enveloped[1] == 0x80  # indefinite length, encrypted content in constructed chunks
    assert cms_envelope.decrypt_envelope(enveloped, RSA_KEY, RSA_CERT) == BODY * 100


@needs_openssl
@pytest.mark.parametrize("cipher", cms_envelope.ENVELOPE_CIPHERS)
def test_openssl_decrypts_our_envelopes(tmp_path: Path, cipher: str) -> None:
    write_identity(tmp_path, RSA_KEY, RSA_CERT)
    (tmp_path / "env.der").write_bytes(cms_envelope.envelope(BODY, RSA_CERT, cipher=cipher))
    plaintext = openssl("cms -decrypt -inform DER -in env.der -recip cert.pem -inkey key.pem", cwd=tmp_path)
    assert plaintext == BODY


@settings(max_examples=200)
@given(st.binary(max_size=1024))
def test_garbage_envelope_raises_only_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        cms_envelope.decrypt_envelope(data, RSA_KEY)


def test_oversized_envelope_is_rejected_before_parsing() -> None:
    with pytest.raises(ParseError, match="larger than"):
        cms_envelope.decrypt_envelope(b"\x30" * (cms_envelope.MAX_ENVELOPE_SIZE + 1), RSA_KEY)
    with pytest.raises(ParseError, match="larger than"):
        cms_envelope.envelope_cipher(b"\x30" * 11, max_size=10)
