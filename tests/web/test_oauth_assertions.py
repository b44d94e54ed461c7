"""Client credentials with a certificate (RFC 7523 `private_key_jwt`): `addKey` checks, signed assertions,
replayed jti, wrong audience, too-long lifetime, unknown key."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.harness import running_muster
from tests.web.test_oauth import claims_of

TOKEN = "/oauth2/v2.0/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def certificate(key: PrivateKey, *, days: int = 30, start_days_ago: int = 1) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "automation")])
    start = datetime.now(UTC) - timedelta(days=start_days_ago)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def assertion(
    key: PrivateKey, cert: x509.Certificate, client_id: str, audience: str, *, alg: str | None = None, **claims: Any
) -> str:
    now = int(datetime.now(UTC).timestamp())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        **claims,
    }
    x5t = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).decode().rstrip("=")
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    jwk = RSAKey.import_key(private_pem) if is_rsa else ECKey.import_key(private_pem)
    alg = alg or ("RS256" if is_rsa else "ES256")
    return jwt.encode({"alg": alg, "typ": "JWT", "x5t": x5t}, body, jwk, algorithms=[alg])


async def test_certificate_credentials(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_cert, ec_cert = certificate(rsa_key), certificate(ec_key)
    async with running_muster(tmp_path) as muster:
        async with muster.admin() as admin:
            application = (await admin.post("/graph/beta/applications", json={"displayName": "signer"})).json()
            actions = f"/graph/beta/applications/{application['id']}"

            async def add_key(key: str) -> Any:
                body = {"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": key}}
                return await admin.post(f"{actions}/addKey", json=body)

            small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
            private_pem = rsa_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            refusals = {
                "expired": pem(certificate(rsa_key, days=1, start_days_ago=3)),
                "private key": private_pem,
                "weak RSA": pem(certificate(small)),
                "other curve": pem(certificate(ec.generate_private_key(ec.SECP384R1()))),
                "not a certificate": "hello",
            }
            for reason, key in refusals.items():
                answer = await add_key(key)
                assert answer.status_code == 400, (reason, answer.text)
                assert "PRIVATE" not in answer.text
            added = await add_key(pem(rsa_cert))
            assert added.status_code == 200, added.text
            assert added.json()["customKeyIdentifier"] == rsa_cert.fingerprint(hashes.SHA1()).hex().upper()
            assert added.json()["endDateTime"].startswith(rsa_cert.not_valid_after_utc.date().isoformat())
            der = base64.b64encode(ec_cert.public_bytes(serialization.Encoding.DER)).decode()
            assert (await add_key(der)).status_code == 200  # Graph's form: base64 of the DER
            assert (await add_key(pem(rsa_cert))).status_code == 400  # already registered
            listed = (await admin.get(actions)).json()["keyCredentials"]
            assert {k["type"] for k in listed} == {"AsymmetricX509Cert"} and len(listed) == 2

        app_id, audience = application["appId"], muster.base_url + TOKEN
        async with muster.device_client() as http:

            async def token(client_assertion: str, **extra: str) -> Any:
                data = {
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": client_assertion,
                    **extra,
                }
                return await http.post(muster.base_url + TOKEN, data=data)

            signed = assertion(rsa_key, rsa_cert, app_id, audience)
            first = await token(signed, client_id=app_id)
            assert first.status_code == 200, first.text
            assert claims_of(first.json()["access_token"])[1]["sub"] == application["id"]
            replayed = await token(signed)
            assert replayed.status_code == 401 and "already used" in replayed.json()["error_description"]
            assert (await token(assertion(ec_key, ec_cert, app_id, audience))).status_code == 200
            assert (await token(assertion(rsa_key, rsa_cert, app_id, audience, alg="PS256"))).status_code == 200

            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged_with_known_x5t = assertion(stranger, rsa_cert, app_id, audience)
            bad = {
                "wrong audience": assertion(rsa_key, rsa_cert, app_id, "https://login.example.com/token"),
                "lives too long": assertion(
                    rsa_key, rsa_cert, app_id, audience, exp=int(datetime.now(UTC).timestamp()) + 3600
                ),
                "expired": assertion(rsa_key, rsa_cert, app_id, audience, exp=int(datetime.now(UTC).timestamp()) - 600),
                "no jti": assertion(rsa_key, rsa_cert, app_id, audience, jti=None),
                "jti too long": assertion(rsa_key, rsa_cert, app_id, audience, jti="j" * 300),
                "exp not a number": assertion(rsa_key, rsa_cert, app_id, audience, exp=float("nan")),
                "iss differs": assertion(rsa_key, rsa_cert, app_id, audience, iss="someone"),
                "unregistered certificate": assertion(stranger, certificate(stranger), app_id, audience),
                "forged signature": forged_with_known_x5t,
                "not a JWT": "abc.def",
            }
            for reason, value in bad.items():
                answer = await token(value)
                assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), (reason, answer.text)
            mismatch = await token(assertion(rsa_key, rsa_cert, app_id, audience), client_id="another")
            assert mismatch.status_code == 401
            wrong_type = await token(signed, client_assertion_type="urn:example")
            assert wrong_type.json()["error"] == "invalid_request"

        # A client whose certificate is removed can no longer sign in with it (a fresh client: the one above
        # has used up its failed attempts for this minute).
        async with muster.admin() as admin:
            rotated = (await admin.post("/graph/beta/applications", json={"displayName": "rotated"})).json()
            body = {"keyCredential": {"key": pem(ec_cert)}}
            key_id = (await admin.post(f"/graph/beta/applications/{rotated['id']}/addKey", json=body)).json()["keyId"]
        async with muster.device_client() as http:
            data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
            signed_in = await http.post(
                muster.base_url + TOKEN,
                data={**data, "client_assertion": assertion(ec_key, ec_cert, rotated["appId"], audience)},
            )
            assert signed_in.status_code == 200, signed_in.text
            async with muster.admin() as admin:
                remove = f"/graph/beta/applications/{rotated['id']}/removeKey"
                assert (await admin.post(remove, json={"keyId": key_id})).status_code == 204
                assert (await admin.post(remove, json={"keyId": key_id})).status_code == 404
            refused = await http.post(
                muster.base_url + TOKEN,
                data={**data, "client_assertion": assertion(ec_key, ec_cert, rotated["appId"], audience)},
            )
            assert refused.status_code == 401, refused.text
