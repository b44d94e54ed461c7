import base64
import contextlib
import functools
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.pki.certs import certificate_pem, generate_rsa_key, private_key_pem, self_signed_certificate
from muster.protocols.apple import dep_token
from muster.protocols.apple.dep_token import DepCredentials, OAuthRejected
from muster.protocols.cms_envelope import envelope
from muster.protocols.errors import ParseError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREDENTIALS = DepCredentials(
    consumer_key="CK_3a5f0c1e9b8d7a6f5e4d3c2b1a09f8e7d6c5b4a3",
    consumer_secret="CS_0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
    access_token="AT_O1234567890123456O9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    access_secret="AS_1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    access_token_expiry=datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
)
SESSION_URL = "https://mdmenrollment.apple.com/session"


@functools.cache
def server_identity(name: str = "muster dep") -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = generate_rsa_key()
    return self_signed_certificate(key, name, days=365), key


def parse(token: bytes, now: datetime = NOW) -> DepCredentials:
    certificate, key = server_identity()
    return dep_token.parse_server_token(token, certificate=certificate, key=key, now=now)


def token_for(credentials: DepCredentials = CREDENTIALS, cipher: str = "aes128") -> bytes:
    return dep_token.build_server_token(credentials, recipient_certificate=server_identity()[0], cipher=cipher)


# --- server token -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cipher", ["aes128", "des3"])
def test_server_token_round_trip(cipher: str) -> None:
    assert parse(token_for(cipher=cipher)) == CREDENTIALS


def test_token_saved_with_windows_line_endings() -> None:
    assert parse(token_for().replace(b"\n", b"\r\n")) == CREDENTIALS


def test_built_token_has_abm_shape() -> None:
    headers, _, body = token_for().decode().partition("\n\n")
    lines = body.strip().split("\n")
    enveloped = base64.b64decode("".join(lines))

    assert 'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data' in headers
    assert "Content-Transfer-Encoding: base64" in headers
    assert all(len(line) == 76 for line in lines[:-1]) and 0 < len(lines[-1]) <= 76
    assert enveloped[:2] == b"\x30\x80"  # BER, indefinite length, as ABM streams it
    assert body.startswith("MIAGCSqGSIb3DQEHA6CA")  # the prefix every real ABM token has


def test_credentials_json_round_trip() -> None:
    assert DepCredentials.from_json(CREDENTIALS.to_json()) == CREDENTIALS
    assert DepCredentials.from_json(json.dumps(CREDENTIALS.to_json()).encode()) == CREDENTIALS
    with pytest.raises(ParseError, match="missing access_secret"):
        DepCredentials.from_json({**CREDENTIALS.to_json(), "access_secret": ""})


def test_credentials_repr_hides_secrets() -> None:
    text = repr(CREDENTIALS)

    assert CREDENTIALS.consumer_key in text
    assert CREDENTIALS.consumer_secret not in text and CREDENTIALS.access_secret not in text


def inner_message(payload: str, *, newline: str = "\r\n", width: int = 64) -> bytes:
    wrapped = newline.join(payload[i : i + width] for i in range(0, len(payload), width))
    return (
        f"Content-Type: text/plain;charset=UTF-8{newline}Content-Transfer-Encoding: 7bit{newline}{newline}"
        f"-----BEGIN MESSAGE-----{newline}{wrapped}{newline}-----END MESSAGE-----{newline}"
    ).encode()


PAYLOAD = json.dumps(CREDENTIALS.to_json())


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_bare_der_envelope_with_hard_wrapped_json(newline: str) -> None:
    der = envelope(inner_message(PAYLOAD, newline=newline, width=17), server_identity()[0], cipher="aes128")

    assert parse(der) == CREDENTIALS


def test_pem_envelope_and_unwrapped_json_are_accepted() -> None:
    der = envelope(PAYLOAD.encode(), server_identity()[0], cipher="aes256")
    pem = b"-----BEGIN PKCS7-----\n" + base64.encodebytes(der) + b"-----END PKCS7-----\n"

    assert parse(pem) == CREDENTIALS


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("cipher", ["-aes128", "-des3"])
def test_token_streamed_by_openssl_smime(tmp_path: Path, cipher: str) -> None:
    """`openssl smime -stream` writes what ABM sends: MIME headers, BER with indefinite lengths."""
    certificate, _ = server_identity()
    (tmp_path / "server.pem").write_bytes(certificate_pem(certificate))
    (tmp_path / "inner.txt").write_bytes(inner_message(PAYLOAD))
    command = ["openssl", "smime", "-encrypt", "-binary", "-stream", cipher, "-in", str(tmp_path / "inner.txt")]
    token = subprocess.run([*command, str(tmp_path / "server.pem")], check=True, capture_output=True).stdout

    assert b"smime.p7m" in token
    assert parse(token) == CREDENTIALS


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_decrypts_our_token(tmp_path: Path) -> None:
    certificate, key = server_identity()
    (tmp_path / "server.pem").write_bytes(certificate_pem(certificate))
    (tmp_path / "server.key").write_bytes(private_key_pem(key))
    command = ["openssl", "smime", "-decrypt", "-recip", str(tmp_path / "server.pem")]
    result = subprocess.run([*command, "-inkey", str(tmp_path / "server.key")], input=token_for(), capture_output=True)

    assert result.returncode == 0, result.stderr
    assert b"-----BEGIN MESSAGE-----" in result.stdout
    assert b"Content-Transfer-Encoding: 7bit" in result.stdout


def test_token_for_another_server_is_refused_clearly() -> None:
    other_certificate, _ = server_identity("another mdm server")
    token = dep_token.build_server_token(CREDENTIALS, recipient_certificate=other_certificate)

    with pytest.raises(ParseError, match="not issued for this server's public key"):
        parse(token)


def test_expired_token_is_refused() -> None:
    with pytest.raises(ParseError, match="expired"):
        parse(token_for(), now=CREDENTIALS.access_token_expiry + timedelta(seconds=1))


@pytest.mark.parametrize("missing", ["consumer_key", "consumer_secret", "access_token", "access_secret"])
def test_token_without_a_credential_is_refused(missing: str) -> None:
    payload = {name: value for name, value in CREDENTIALS.to_json().items() if name != missing}
    der = envelope(inner_message(json.dumps(payload)), server_identity()[0])

    with pytest.raises(ParseError, match=f"missing {missing}"):
        parse(der)


def test_token_with_a_bad_expiry_is_refused() -> None:
    payload = {**CREDENTIALS.to_json(), "access_token_expiry": "next year"}

    with pytest.raises(ParseError, match="access_token_expiry"):
        parse(envelope(inner_message(json.dumps(payload)), server_identity()[0]))


@given(st.binary(max_size=2000))
def test_garbage_token_raises_only_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(data)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_token_raises_only_parse_error(data: st.DataObject) -> None:
    token = bytearray(token_for())
    for _ in range(data.draw(st.integers(1, 4))):
        token[data.draw(st.integers(0, len(token) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ParseError):
        assert parse(bytes(token)) == CREDENTIALS  # a flip inside a MIME header may change nothing


CREDENTIAL_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)


@settings(deadline=None, max_examples=30)
@given(CREDENTIAL_TEXT, CREDENTIAL_TEXT, CREDENTIAL_TEXT, CREDENTIAL_TEXT, st.sampled_from(["aes128", "des3"]))
def test_any_credentials_round_trip(key: str, secret: str, token: str, token_secret: str, cipher: str) -> None:
    credentials = DepCredentials(key, secret, token, token_secret, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))

    assert parse(token_for(credentials, cipher)) == credentials


# --- OAuth --------------------------------------------------------------------------------------------


def test_oauth_signature_matches_rfc_5849_example() -> None:
    params = {
        "oauth_consumer_key": "dpf43f3p2l4k3l03",
        "oauth_token": "nnch734d00sl2jdk",
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": "137131202",
        "oauth_nonce": "chapoH",
    }
    url = "http://photos.example.net/photos?file=vacation.jpg&size=original"

    assert dep_token.oauth_signature("GET", url, params, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00") == (
        "MdpQcU8iPSUjWoN/UDMsK2sui9I="
    )


def test_authorization_header_has_apples_shape() -> None:
    header = dep_token.oauth_authorization_header(
        CREDENTIALS, method="GET", url=SESSION_URL, nonce="abc", timestamp=1700
    )
    names = [item.split("=")[0] for item in header.removeprefix("OAuth ").split(", ")]

    assert "\n" not in header
    assert header.startswith('OAuth realm="ADM", oauth_consumer_key="CK_')
    assert names == [
        "realm",
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature_method",
        "oauth_signature",
        "oauth_timestamp",
        "oauth_nonce",
        "oauth_version",
    ]
    assert 'oauth_signature_method="HMAC-SHA1"' in header and 'oauth_version="1.0"' in header


def lookup(consumer_key: str, token: str) -> tuple[str, str] | None:
    if (consumer_key, token) == (CREDENTIALS.consumer_key, CREDENTIALS.access_token):
        return CREDENTIALS.consumer_secret, CREDENTIALS.access_secret
    return None


def signed_header(url: str = SESSION_URL, credentials: DepCredentials = CREDENTIALS) -> str:
    return dep_token.oauth_authorization_header(credentials, method="GET", url=url, nonce="n0nce", timestamp=1700000000)


@pytest.mark.parametrize(
    "verify_url",
    [SESSION_URL, "https://MDMENROLLMENT.apple.com:443/session", "HTTPS://mdmenrollment.apple.com/session"],
)
def test_oauth_header_verifies_against_the_normalised_url(verify_url: str) -> None:
    identity = dep_token.verify_oauth_header(signed_header(), method="GET", url=verify_url, lookup_secrets=lookup)

    assert identity == (CREDENTIALS.consumer_key, CREDENTIALS.access_token)


@pytest.mark.parametrize(
    "header",
    [
        signed_header(url="https://mdmenrollment.apple.com/account"),
        signed_header(credentials=DepCredentials("CK_x", "CS_x", CREDENTIALS.access_token, "AS_x", NOW)),
        signed_header().replace('oauth_nonce="n0nce"', 'oauth_nonce="other"'),
        signed_header().replace('oauth_timestamp="1700000000"', 'oauth_timestamp="1700000001"'),
    ],
    ids=["other-url", "unknown-consumer", "changed-nonce", "changed-timestamp"],
)
def test_oauth_header_that_does_not_authenticate_is_rejected(header: str) -> None:
    with pytest.raises(OAuthRejected):
        dep_token.verify_oauth_header(header, method="GET", url=SESSION_URL, lookup_secrets=lookup)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        signed_header().replace('oauth_signature_method="HMAC-SHA1"', 'oauth_signature_method="PLAINTEXT"'),
        signed_header().replace(', oauth_nonce="n0nce"', ""),
        signed_header() + ', oauth_nonce="again"',
        signed_header() + ', oauth_callback="oob"',
        signed_header().replace('oauth_version="1.0"', 'oauth_version="2.0"'),
        signed_header().replace(", ", ",, x=y, "),
    ],
    ids=["empty", "bearer", "plaintext", "no-nonce", "duplicate", "unsupported", "version", "malformed"],
)
def test_malformed_oauth_header_is_a_bad_request(header: str) -> None:
    with pytest.raises(ParseError) as caught:
        dep_token.verify_oauth_header(header, method="GET", url=SESSION_URL, lookup_secrets=lookup)
    assert not isinstance(caught.value, OAuthRejected)


@given(CREDENTIAL_TEXT, CREDENTIAL_TEXT, CREDENTIAL_TEXT, CREDENTIAL_TEXT, st.text(max_size=30))
def test_oauth_round_trip_with_any_characters(key: str, secret: str, token: str, token_secret: str, nonce: str) -> None:
    credentials = DepCredentials(key, secret, token, token_secret, NOW)
    header = dep_token.oauth_authorization_header(credentials, method="GET", url=SESSION_URL, nonce=nonce, timestamp=5)

    identity = dep_token.verify_oauth_header(
        header, method="GET", url=SESSION_URL, lookup_secrets=lambda *_: (secret, token_secret)
    )

    assert identity == (key, token)
    assert dep_token.parse_oauth_header(header)["oauth_nonce"] == nonce


@given(st.text(max_size=300))
def test_garbage_oauth_header_raises_only_parse_error(header: str) -> None:
    with pytest.raises(ParseError):
        dep_token.verify_oauth_header(header, method="GET", url=SESSION_URL, lookup_secrets=lookup)


# --- session ----------------------------------------------------------------------------------------------


def test_session_round_trip() -> None:
    assert dep_token.decode_session(dep_token.encode_session("87a2f1")) == "87a2f1"


@pytest.mark.parametrize("body", [b"", b"[]", b'{"auth_session_token":""}', b'{"auth_session_token":7}'])
def test_malformed_session_is_refused(body: bytes) -> None:
    with pytest.raises(ParseError):
        dep_token.decode_session(body)


@given(st.binary(max_size=300))
def test_garbage_session_raises_only_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        dep_token.decode_session(body)
