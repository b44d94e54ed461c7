"""Reading a device's identity certificate from a request (apple-protocols.md §3.1–3.2).

`Mdm-Signature`: a detached CMS signature over the body, verified here. A forwarded client certificate is
trusted only from the header the operator configured for their TLS-terminating proxy, in RFC 9440 form
(`:<base64 DER>:`) or URL-escaped PEM (nginx `$ssl_client_escaped_cert`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import unquote

from cryptography import x509

from muster.protocols.cms import verify_detached
from muster.protocols.errors import ParseError

MAX_SIGNATURE_HEADER = 16 * 1024


def certificate_from_headers(
    headers: Mapping[str, str], body: bytes, proxy_header: str | None
) -> x509.Certificate | None:
    """The certificate the request proves it holds, or None when it presents none. Raises ParseError when one is
    presented but does not verify (forged signature, garbage header)."""
    get = headers.get
    signature = get("mdm-signature")
    if signature:
        if len(signature) > MAX_SIGNATURE_HEADER:
            raise ParseError("Mdm-Signature header too large")
        try:
            der = base64.b64decode(signature, validate=False)
        except (binascii.Error, ValueError):
            raise ParseError("Mdm-Signature is not base64") from None
        return verify_detached(der, body)
    if proxy_header:
        forwarded = get(proxy_header.lower())
        if forwarded:
            return _forwarded_certificate(forwarded)
    return None


def _forwarded_certificate(value: str) -> x509.Certificate:
    try:
        if value.startswith(":") and value.endswith(":"):
            return x509.load_der_x509_certificate(base64.b64decode(value[1:-1], validate=True))
        return x509.load_pem_x509_certificate(unquote(value).encode())
    except (ValueError, binascii.Error):
        raise ParseError("forwarded client certificate is not readable") from None
