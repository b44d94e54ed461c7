"""The ABM/ASM server token and the OAuth 1.0a signing of `GET /session` for Apple's ADE ("DEP") API.

Spec: apple-protocols.md §7.1 (server token) and §7.2 (session, OAuth 1.0a per RFC 5849). The token is
decrypted with the MDM server's key; its credentials sign the session request, whose answer is decoded here
too. Decoders raise `ParseError`, and only that, on malformed input; secrets never appear in a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from asn1crypto import parser
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from muster.protocols.apple.dep import encode_json, format_time, json_object, parse_time, required_string
from muster.protocols.cms_envelope import decrypt_envelope, envelope
from muster.protocols.errors import ParseError

MAX_TOKEN_BYTES = 64 * 1024
MAX_OAUTH_HEADER_CHARS = 4096
WRONG_KEY = "this token was not issued for this server's public key"


# --- Server token (§7.1) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepCredentials:
    """The OAuth 1.0a credentials inside an ABM server token (§7.1); secrets stay out of repr."""

    consumer_key: str
    consumer_secret: str = field(repr=False)
    access_token: str
    access_secret: str = field(repr=False)
    access_token_expiry: datetime

    def expired(self, now: datetime) -> bool:
        return self.access_token_expiry <= now

    def to_json(self) -> dict[str, str]:
        return {
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "access_token": self.access_token,
            "access_secret": self.access_secret,
            "access_token_expiry": format_time(self.access_token_expiry),
        }

    @classmethod
    def from_json(cls, data: bytes | Mapping[str, Any]) -> DepCredentials:
        """The inverse of `to_json`: the token's JSON, or credentials stored as it. Expiry is not checked."""
        obj = json_object(data, "server token")
        return cls(
            consumer_key=required_string(obj, "consumer_key"),
            consumer_secret=required_string(obj, "consumer_secret"),
            access_token=required_string(obj, "access_token"),
            access_secret=required_string(obj, "access_secret"),
            access_token_expiry=parse_time(required_string(obj, "access_token_expiry"), "access_token_expiry"),
        )


_MESSAGE_MARKERS = ("-----BEGIN MESSAGE-----", "-----END MESSAGE-----")
_HEADER_LINE = re.compile(r"[A-Za-z0-9-]+:")
_MAX_BER_DEPTH = 32


def parse_server_token(
    data: bytes, *, certificate: x509.Certificate, key: rsa.RSAPrivateKey, now: datetime | None = None
) -> DepCredentials:
    """Decrypt an ABM/ASM server token: the `.p7m` download (S/MIME headers + base64), or the bare
    EnvelopedData as DER/BER or PEM, encrypted to `certificate` with AES-CBC or 3DES."""
    if len(data) > MAX_TOKEN_BYTES:
        raise ParseError(f"server token larger than {MAX_TOKEN_BYTES} bytes")
    enveloped = _definite_lengths(_token_envelope(data))
    try:
        content = decrypt_envelope(enveloped, key, certificate)
    except ParseError as error:
        if "not addressed" in error.reason or "could not be decrypted" in error.reason:
            raise ParseError(WRONG_KEY) from None
        raise ParseError(f"not an ABM server token: {error.reason}") from None
    credentials = DepCredentials.from_json(_unwrap_message(content).encode())
    moment = now or datetime.now(UTC)
    if credentials.expired(moment):
        expiry = format_time(credentials.access_token_expiry)
        raise ParseError(f"this token expired at {expiry}; download a new one from Apple Business Manager")
    return credentials


def _token_envelope(data: bytes) -> bytes:
    if data[:1] == b"\x30":
        return data  # DER or BER as it is
    try:
        text = data.decode("ascii").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise ParseError("server token is neither S/MIME, PEM nor DER") from None
    if "-----BEGIN " in text:
        body = text.split("-----BEGIN ", 1)[1].split("\n", 1)[-1].split("-----END ", 1)[0]
    else:
        body = _mime_body(text)
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error:
        raise ParseError("server token is not valid base64") from None


def _mime_body(text: str) -> str:
    lines = text.strip().split("\n")
    if not _HEADER_LINE.match(lines[0]):
        return text  # bare base64
    headers, _, body = text.strip().partition("\n\n")
    named = dict(_header(line) for line in headers.split("\n") if line and not line[0].isspace())
    if "base64" not in named.get("content-transfer-encoding", "base64").lower():
        raise ParseError("server token body must be base64")
    if "pkcs7" not in named.get("content-type", "pkcs7").lower():
        raise ParseError("server token is not an S/MIME enveloped message")
    return body


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def _definite_lengths(ber: bytes, depth: int = 0) -> bytes:
    """Re-encode BER with indefinite lengths (ABM streams its tokens) in definite form, which
    asn1crypto parses everywhere; constructed strings stay constructed."""
    if depth > _MAX_BER_DEPTH:
        raise ParseError("server token nested too deeply")
    out = bytearray()
    pointer = 0
    try:
        while pointer < len(ber):
            length = parser.peek(ber[pointer:])
            class_, method, tag, _, contents, _ = parser.parse(ber[pointer : pointer + length])
            nested = _definite_lengths(contents, depth + 1) if method == 1 else contents
            out += parser.emit(class_, method, tag, nested)
            pointer += length
    except (ValueError, TypeError, RecursionError):
        raise ParseError("server token is not a CMS message") from None
    return bytes(out)


def _unwrap_message(content: bytes) -> str:
    """The JSON inside the decrypted MIME part: skip its headers, drop the MESSAGE markers and join
    the hard-wrapped lines (NanoDEP does the same)."""
    try:
        lines = content.decode("utf-8").replace("\r\n", "\n").split("\n")
    except UnicodeDecodeError:
        raise ParseError("decrypted server token is not UTF-8") from None
    if lines and _HEADER_LINE.match(lines[0]):
        lines = lines[lines.index("") + 1 :] if "" in lines else []
    return "".join(line for line in lines if line.strip() not in _MESSAGE_MARKERS)


def build_server_token(
    credentials: DepCredentials, *, recipient_certificate: x509.Certificate, cipher: str = "aes128"
) -> bytes:
    """A `.p7m` shaped like ABM's: S/MIME headers, then 76-column base64 of a BER (indefinite-length)
    EnvelopedData whose content is a MIME text part with the JSON between MESSAGE markers."""
    payload = json.dumps(credentials.to_json(), separators=(",", ":"))
    wrapped = "\r\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    inner = (
        "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        f"{_MESSAGE_MARKERS[0]}\r\n{wrapped}\r\n{_MESSAGE_MARKERS[1]}\r\n"
    )
    enveloped = _indefinite_lengths(envelope(inner.encode(), recipient_certificate, cipher=cipher))
    encoded = base64.b64encode(enveloped).decode()
    lines = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    headers = (
        'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\n'
        "Content-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="smime.p7m"\n'
        "Content-Description: S/MIME Encrypted Message\n"
    )
    return f"{headers}\n{lines}\n".encode()


def _indefinite_lengths(der: bytes) -> bytes:
    out = bytearray()
    pointer = 0
    while pointer < len(der):
        length = parser.peek(der[pointer:])
        class_, method, tag, _, contents, _ = parser.parse(der[pointer : pointer + length], strict=True)
        if method == 1:
            identifier = parser.emit(class_, method, tag, b"")[:-1]
            out += identifier + b"\x80" + _indefinite_lengths(contents) + b"\x00\x00"
        else:
            out += der[pointer : pointer + length]
        pointer += length
    return bytes(out)


# --- OAuth 1.0a for GET /session (§7.2, RFC 5849) -------------------------------------------------------


class OAuthRejected(ParseError):
    """A well-formed OAuth header that does not authenticate: unknown key or token, bad signature (401)."""


_OAUTH_PARAM = re.compile(r'([A-Za-z0-9_]+)="([^"]*)"')
_OAUTH_REQUIRED = (
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
)
_OAUTH_ALLOWED = frozenset({*_OAUTH_REQUIRED, "oauth_version", "realm"})
_OAUTH_HEADER_ORDER = (*_OAUTH_REQUIRED, "oauth_version")  # the order §7.2 shows


def _percent(value: str) -> str:
    return quote(value, safe="")  # RFC 3986 unreserved characters only (RFC 5849 §3.6)


def _base_string_uri(url: str) -> str:
    parts = urlsplit(url)
    scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    host = f"[{host}]" if ":" in host else host
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def oauth_signature(method: str, url: str, params: Mapping[str, str], consumer_secret: str, token_secret: str) -> str:
    """HMAC-SHA1 signature (RFC 5849 §3.4) over the method, URL and protocol + query parameters."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    pairs = sorted((_percent(name), _percent(value)) for name, value in [*params.items(), *query])
    normalized = "&".join(f"{name}={value}" for name, value in pairs)
    base = "&".join((method.upper(), _percent(_base_string_uri(url)), _percent(normalized)))
    signing_key = f"{_percent(consumer_secret)}&{_percent(token_secret)}"
    digest = hmac.new(signing_key.encode(), base.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def oauth_authorization_header(
    credentials: DepCredentials, *, method: str, url: str, nonce: str, timestamp: int
) -> str:
    """The single-line `Authorization` header for `GET /session`, realm "ADM" (§7.2)."""
    params = {
        "oauth_consumer_key": credentials.consumer_key,
        "oauth_token": credentials.access_token,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(timestamp),
        "oauth_nonce": nonce,
        "oauth_version": "1.0",
    }
    params["oauth_signature"] = oauth_signature(
        method, url, params, credentials.consumer_secret, credentials.access_secret
    )
    return 'OAuth realm="ADM", ' + ", ".join(f'{name}="{_percent(params[name])}"' for name in _OAUTH_HEADER_ORDER)


def parse_oauth_header(header: str) -> dict[str, str]:
    """The parameters of an OAuth `Authorization` header; ParseError where Apple answers 400
    (missing, duplicated or unsupported parameters, a signature method other than HMAC-SHA1)."""
    if len(header) > MAX_OAUTH_HEADER_CHARS:
        raise ParseError("Authorization header too long")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise ParseError("Authorization is not an OAuth header")
    params: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        match = _OAUTH_PARAM.fullmatch(item)
        if match is None:
            raise ParseError("malformed OAuth parameter")
        name, value = match.group(1), unquote(match.group(2))
        if name in params:
            raise ParseError(f"duplicated OAuth parameter {name}")
        if name not in _OAUTH_ALLOWED:
            raise ParseError(f"unsupported OAuth parameter {name}")
        params[name] = value
    missing = [name for name in _OAUTH_REQUIRED if name not in params]
    if missing:
        raise ParseError(f"missing OAuth parameter {missing[0]}")
    if params["oauth_signature_method"] != "HMAC-SHA1":
        raise ParseError("unsupported signature method")
    if params.get("oauth_version", "1.0") != "1.0" or not params["oauth_timestamp"].isdigit():
        raise ParseError("bad oauth_version or oauth_timestamp")
    return params


def verify_oauth_header(
    header: str, *, method: str, url: str, lookup_secrets: Callable[[str, str], tuple[str, str] | None]
) -> tuple[str, str]:
    """Check an OAuth header signed with `oauth_authorization_header`; (consumer_key, access_token).

    `lookup_secrets(consumer_key, access_token)` gives (consumer_secret, access_secret) or None.
    Raises `OAuthRejected` (Apple's 401) or another `ParseError` (Apple's 400). Nonces are the
    caller's to track.
    """
    params = parse_oauth_header(header)
    consumer_key, token = params["oauth_consumer_key"], params["oauth_token"]
    secrets = lookup_secrets(consumer_key, token)
    if secrets is None:
        raise OAuthRejected("unknown consumer key or access token")
    signed = {name: value for name, value in params.items() if name not in ("oauth_signature", "realm")}
    expected = oauth_signature(method, url, signed, *secrets)
    if not hmac.compare_digest(expected.encode(), params["oauth_signature"].encode()):
        raise OAuthRejected("invalid signature")
    return consumer_key, token


def decode_session(body: bytes) -> str:
    """The `auth_session_token` of a `GET /session` answer (§7.2)."""
    return required_string(json_object(body, "session"), "auth_session_token")


def encode_session(token: str) -> bytes:
    return encode_json({"auth_session_token": token})
