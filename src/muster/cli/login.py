"""`muster login` / `muster logout`: get an access token for the CLI and keep it per server.

Interactive admins use the device code grant (RFC 8628): the CLI shows a URL and a code, the admin signs in
there. Scripts use client credentials: a secret read from a file, or a certificate and its key (RFC 7523
`private_key_jwt`). Tokens are kept in `~/.config/muster/credentials.json` (mode 0600), keyed by server URL;
for client credentials the CLI also keeps where the secret or key file is (never its content) so it can get a
new token when the old one expires.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from muster.cli.api import server_url, tls_verify

CLI_CLIENT_ID = "muster-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_EXPIRY_MARGIN_SECONDS = 60


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "muster" / "credentials.json"


def _load() -> dict[str, dict[str, Any]]:
    path = credentials_path()
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        typer.secho(f"Ignoring unreadable {path}: run `muster login` again.", err=True, fg="yellow")
        return {}
    return stored if isinstance(stored, dict) else {}


def _save(stored: dict[str, dict[str, Any]]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(stored, file, indent=2)
    os.chmod(temporary, 0o600)  # in case the file existed with wider permissions
    temporary.replace(path)


def stored_token(url: str) -> str | None:
    """The stored access token for `url`, renewed for client-credential logins; None when there is none."""
    entry = _load().get(url)
    if entry is None:
        return None
    if entry.get("expires_at", 0) - _EXPIRY_MARGIN_SECONDS > time.time():
        return str(entry["access_token"])
    if entry.get("method") in ("secret", "certificate"):
        return _client_credentials(url, entry)
    typer.secho("Your sign-in has expired: run `muster login` again.", err=True, fg="red")
    raise typer.Exit(2)


def _http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, verify=tls_verify(url), timeout=30)


def _discover(http: httpx.Client) -> dict[str, Any]:
    answer = _send(http, "GET", "/.well-known/openid-configuration")
    return dict(answer.json())


def _send(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return http.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        typer.secho(f"Cannot reach Muster: {error}", err=True, fg="red")
        raise typer.Exit(1) from None


def _refused(answer: httpx.Response) -> typer.Exit:
    try:
        reason = answer.json().get("error_description") or answer.json()["error"]
    except (ValueError, KeyError, AttributeError):
        reason = answer.text
    typer.secho(f"Sign-in refused ({answer.status_code}): {reason}", err=True, fg="red")
    return typer.Exit(1)


def _remember(url: str, token: dict[str, Any], **method: str) -> str:
    stored = _load()
    stored[url] = {
        "access_token": token["access_token"],
        "expires_at": int(time.time()) + int(token.get("expires_in", 0)),
        **method,
    }
    _save(stored)
    return str(token["access_token"])


def _client_credentials(url: str, entry: dict[str, Any]) -> str:
    with _http(url) as http:
        token_endpoint = _discover(http)["token_endpoint"]
        form = {"grant_type": "client_credentials", "client_id": entry["client_id"]}
        try:
            if entry["method"] == "secret":
                form["client_secret"] = Path(entry["secret_file"]).read_text().strip()
            else:
                form["client_assertion_type"] = JWT_BEARER_ASSERTION
                form["client_assertion"] = client_assertion(
                    entry["client_id"], token_endpoint, Path(entry["certificate_file"]), Path(entry["key_file"])
                )
        except (OSError, ValueError) as error:
            typer.secho(f"Cannot read the client's credential: {error}", err=True, fg="red")
            raise typer.Exit(2) from None
        answer = _send(http, "POST", token_endpoint, data=form)
    if answer.status_code != 200:
        raise _refused(answer)
    method = {k: v for k, v in entry.items() if k not in ("access_token", "expires_at")}
    return _remember(url, answer.json(), **method)


def client_assertion(client_id: str, audience: str, certificate_file: Path, key_file: Path) -> str:
    """A short-lived JWT signed with the client's key, naming its certificate by `x5t` (RFC 7523 §2.2)."""
    certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
    key_pem = key_file.read_bytes()
    private_key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(private_key, rsa.RSAPrivateKey):
        key: RSAKey | ECKey = RSAKey.import_key(key_pem)
        algorithm = "RS256"
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        key, algorithm = ECKey.import_key(key_pem), "ES256"
    else:
        raise ValueError("the key must be RSA or EC P-256")
    x5t = base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA1())).decode().rstrip("=")
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode({"alg": algorithm, "typ": "JWT", "x5t": x5t}, claims, key, algorithms=[algorithm])


def _device_login(url: str) -> None:
    with _http(url) as http:
        configuration = _discover(http)
        started = _send(http, "POST", configuration["device_authorization_endpoint"], data={"client_id": CLI_CLIENT_ID})
        if started.status_code != 200:
            raise _refused(started)
        grant = started.json()
        typer.echo(f"To sign in, open {grant['verification_uri']} and enter the code {grant['user_code']}")
        typer.echo(f"(or open {grant['verification_uri_complete']})")
        interval = int(grant.get("interval", 5))
        deadline = time.monotonic() + int(grant.get("expires_in", 900))
        form = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": CLI_CLIENT_ID}
        while time.monotonic() < deadline:
            time.sleep(interval)
            answer = _send(http, "POST", configuration["token_endpoint"], data=form)
            if answer.status_code == 200:
                token = answer.json()
                break
            error = (
                answer.json().get("error")
                if answer.headers.get("content-type", "").startswith("application/json")
                else None
            )
            if error == "slow_down":
                interval += 5
            elif error != "authorization_pending":
                raise _refused(answer)
        else:
            typer.secho("The code expired before it was approved: run `muster login` again.", err=True, fg="red")
            raise typer.Exit(1)
    _remember(url, token, method="device")


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)


def login(
    client_id: str = typer.Option(None, "--client-id", help="Sign in as an API client (application id)."),
    client_secret_file: Path = typer.Option(None, "--client-secret-file", help="File holding the client secret."),
    certificate: Path = typer.Option(None, "--certificate", help="PEM certificate registered on the client."),
    key: Path = typer.Option(None, "--key", help="PEM private key of --certificate."),
) -> None:
    """Sign in to the server at MUSTER_URL and keep the token for the other commands."""
    url = server_url()
    if client_id is None:
        if client_secret_file or certificate or key:
            raise typer.BadParameter("--client-secret-file, --certificate and --key need --client-id")
        _device_login(url)
    elif client_secret_file is not None and certificate is None and key is None:
        _client_credentials(
            url, {"method": "secret", "client_id": client_id, "secret_file": str(client_secret_file.resolve())}
        )
    elif certificate is not None and key is not None and client_secret_file is None:
        entry = {
            "method": "certificate",
            "client_id": client_id,
            "certificate_file": str(certificate.resolve()),
            "key_file": str(key.resolve()),
        }
        _client_credentials(url, entry)
    else:
        raise typer.BadParameter("with --client-id, give either --client-secret-file, or --certificate and --key")
    typer.echo(f"Signed in to {url}.")


def logout() -> None:
    """Forget the token kept for the server at MUSTER_URL."""
    url = server_url()
    stored = _load()
    if stored.pop(url, None) is None:
        typer.echo(f"Not signed in to {url}.")
        return
    _save(stored)
    typer.echo(f"Signed out of {url}.")
