"""API clients over HTTP: Graph `applications`, the client credentials grant with a secret, and the access
tokens it yields (claims, JWKS, refusal of expired, altered, unsigned and foreign tokens)."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from muster.domain.clock import FixedClock
from muster.pki.secretbox import SecretBox
from muster.services.access_tokens import AccessTokens
from muster.store.oauth import SqlSigningKeyStore, SqlTokenSubjects
from muster.store.tables import DEFAULT_ORG_ID
from tests.harness import DM, RunningMuster, running_muster

TOKEN = "/oauth2/v2.0/token"


async def new_client(muster: RunningMuster, name: str = "inventory script") -> tuple[dict[str, Any], str]:
    """A registered application and one secret of it."""
    async with muster.admin() as admin:
        created = await admin.post("/graph/beta/applications", json={"displayName": name})
        assert created.status_code == 201, created.text
        application = created.json()
        added = await admin.post(
            f"/graph/beta/applications/{application['id']}/addPassword",
            json={"passwordCredential": {"displayName": "ci"}},
        )
        assert added.status_code == 200, added.text
    return application, added.json()["secretText"]


async def grant_role(muster: RunningMuster, member_id: str, role_name: str) -> None:
    async with muster.admin() as admin:
        roles = (await admin.get(f"{DM}/roleDefinitions")).json()["value"]
        role_id = next(r["id"] for r in roles if r["displayName"] == role_name)
        answer = await admin.post(
            f"{DM}/roleAssignments",
            json={
                "displayName": f"{role_name} for {member_id}",
                "members": [member_id],
                "roleDefinitionId": role_id,
                "allScopeTags": True,
            },
        )
        assert answer.status_code == 201, answer.text


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in token.split(".")[:2])
    return header, payload


async def test_client_secret_yields_a_token_that_reaches_the_admin_api(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster:
        application, secret = await new_client(muster)
        await grant_role(muster, application["id"], "Read Only Operator")
        async with muster.device_client() as http:
            post = await http.post(
                muster.base_url + TOKEN,
                data={
                    "grant_type": "client_credentials",
                    "client_id": application["appId"],
                    "client_secret": secret,
                    "scope": "https://graph.microsoft.com/.default",
                },
            )
            basic = base64.b64encode(f"{application['appId']}:{secret}".encode()).decode()
            via_basic = await http.post(
                muster.base_url + TOKEN,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic}"},
            )
            jwks = (await http.get(muster.base_url + "/.well-known/jwks.json")).json()
            discovery = (await http.get(muster.base_url + "/.well-known/openid-configuration")).json()
        for answer in (post, via_basic):
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            assert answer.json()["token_type"] == "Bearer"
            assert answer.json()["expires_in"] == 3600
        token = post.json()["access_token"]
        header, claims = claims_of(token)
        assert header["alg"] == "ES256"
        assert header["kid"] in {key["kid"] for key in jwks["keys"]}
        assert all("d" not in key for key in jwks["keys"])  # public halves only
        assert claims["iss"] == muster.base_url == discovery["issuer"]
        assert discovery["token_endpoint"] == muster.base_url + TOKEN
        assert claims["aud"] == "muster"
        assert claims["sub"] == claims["oid"] == application["id"]
        assert claims["tid"] == DEFAULT_ORG_ID
        assert claims["idtyp"] == "app"
        assert claims["name"] == "inventory script"
        assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
        assert claims["jti"] != claims_of(via_basic.json()["access_token"])[1]["jti"]
        jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])  # verifiable with the published keys

        async with muster.admin(token) as client:
            assert (await client.get("/graph/beta/applications")).status_code == 200
            refused = await client.post("/graph/beta/applications", json={"displayName": "escalation"})
            assert refused.status_code == 403  # a Read Only Operator

            async with muster.admin() as admin:
                listed = (await admin.get("/graph/beta/applications")).json()["value"]
                assert [a["displayName"] for a in listed] == ["inventory script"]
                credential = listed[0]["passwordCredentials"][0]
                assert credential["hint"] == secret[:3] and credential["secretText"] is None
                assert secret not in json.dumps(listed)
                assert (await admin.delete(f"/graph/beta/applications/{application['id']}")).status_code == 204
            assert await muster.container.access_tokens.verify(token) is None  # a deleted client's token is dead


async def test_token_endpoint_errors_follow_rfc_6749(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster:
        application, secret = await new_client(muster)
        app_id = application["appId"]
        async with muster.device_client() as http:

            async def token(data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
                answer = await http.post(muster.base_url + TOKEN, data=data, **kwargs)
                assert answer.headers["cache-control"] == "no-store"
                return answer

            cases: list[tuple[httpx.Response, int, str]] = [
                (
                    await token({"grant_type": "client_credentials", "client_id": app_id, "client_secret": "x"}),
                    401,
                    "invalid_client",
                ),
                (
                    await token({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": secret}),
                    401,
                    "invalid_client",
                ),
                (await token({"client_id": app_id, "client_secret": secret}), 400, "invalid_request"),
                (
                    await token({"grant_type": "password", "username": "a", "password": "b"}),
                    400,
                    "unsupported_grant_type",
                ),
                (await token({"grant_type": "client_credentials"}), 400, "invalid_request"),
                (
                    await token(
                        content=b"grant_type=client_credentials&grant_type=client_credentials",
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    ),
                    400,
                    "invalid_request",
                ),
                (await token(json={"grant_type": "client_credentials"}), 400, "invalid_request"),
                (
                    await token(content=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}),
                    400,
                    "invalid_request",
                ),
                (
                    await token(
                        content=b"a=" + b"x" * 40_000, headers={"Content-Type": "application/x-www-form-urlencoded"}
                    ),
                    400,
                    "invalid_request",
                ),
                (
                    await token(
                        {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret},
                        headers={"Authorization": "Basic " + base64.b64encode(f"{app_id}:{secret}".encode()).decode()},
                    ),
                    400,
                    "invalid_request",
                ),  # two authentication methods
                (
                    await token({"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!"}),
                    401,
                    "invalid_client",
                ),
            ]
            for answer, status, error in cases:
                assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
                assert answer.json()["error_description"]
            assert cases[0][0].json() == cases[1][0].json()  # unknown client and wrong secret look the same
            assert cases[0][0].headers["www-authenticate"].startswith("Basic")

            for _ in range(9):  # 10 failures in a minute (one above): the client is refused for a while
                await token({"grant_type": "client_credentials", "client_id": app_id, "client_secret": "guess"})
            blocked = await token({"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret})
            assert blocked.status_code == 429 and blocked.json()["error"] == "invalid_client"
            assert int(blocked.headers["retry-after"]) > 0


async def test_expired_altered_unsigned_and_foreign_tokens_are_refused(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster:
        application, secret = await new_client(muster)
        await grant_role(muster, application["id"], "Read Only Operator")
        async with muster.device_client() as http:
            answer = await http.post(
                muster.base_url + TOKEN,
                data={"grant_type": "client_credentials", "client_id": application["appId"], "client_secret": secret},
            )
        good = answer.json()["access_token"]
        header, claims = claims_of(good)
        secrets = SecretBox(base64.b64decode(muster.settings.master_key or ""))
        engine = muster.container.engine
        [(kid, encrypted)] = await SqlSigningKeyStore(engine).all(DEFAULT_ORG_ID)
        server_key = ECKey.import_key(secrets.decrypt(encrypted, purpose="oauthSigningKey"), {"kid": kid})

        def signed(changes: dict[str, Any], key: ECKey = server_key, alg: str = "ES256") -> str:
            return jwt.encode({"alg": alg, "kid": key.kid}, {**claims, **changes}, key, algorithms=[alg])

        def b64(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

        past = FixedClock(datetime.now(UTC) - timedelta(hours=2))
        old_tokens = AccessTokens(
            keys=SqlSigningKeyStore(engine),
            subjects=SqlTokenSubjects(engine),
            secrets=secrets,
            clock=past,
            org_id=DEFAULT_ORG_ID,
            issuer=muster.base_url,
            lifetime_seconds=3600,
        )
        await old_tokens.load()
        subject = await muster.container.access_tokens.verify(good)
        assert subject is not None and subject.kind == "client"
        stranger = ECKey.generate_key("P-256", auto_kid=True)
        refused = {
            "expired": old_tokens.issue(subject, authorized_party=application["appId"]).access_token,
            "not yet valid": signed({"nbf": claims["nbf"] + 3600, "exp": claims["exp"] + 3600}),
            "wrong audience": signed({"aud": "https://graph.microsoft.com"}),
            "wrong issuer": signed({"iss": "https://login.example.com"}),
            "no expiry": signed({"exp": None}),
            "altered claims": f"{good.split('.')[0]}.{b64({**claims, 'sub': 'someone-else'})}.{good.split('.')[2]}",
            "alg none": f"{b64({'alg': 'none', 'kid': header['kid']})}.{b64(claims)}.",
            "foreign key, same kid": signed({}, ECKey.generate_key("P-256", parameters={"kid": header["kid"]})),
            "foreign key": signed({}, stranger),
            "HS256": f"{b64({'alg': 'HS256', 'kid': kid})}.{b64(claims)}.c2ln",
            "garbage": "not.a.token",
            "huge": "a." * 10_000 + "b",
        }
        assert (await muster.container.access_tokens.verify(signed({}))) is not None  # the forger's tool works
        async with muster.admin(good) as client:
            assert (await client.get("/graph/beta/applications")).status_code == 200
        for reason, token in refused.items():
            assert await muster.container.access_tokens.verify(token) is None, reason
            async with muster.admin(token) as client:
                assert (await client.get("/graph/beta/applications")).status_code == 401, reason


async def test_client_secrets_never_reach_logs_responses_or_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_muster(tmp_path) as muster:
        application, secret = await new_client(muster)
        async with muster.device_client() as http:
            for attempt in (secret, secret + "x"):
                await http.post(
                    muster.base_url + TOKEN,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": application["appId"],
                        "client_secret": attempt,
                    },
                )
        async with muster.admin() as admin:
            shown = (await admin.get(f"/graph/beta/applications/{application['id']}")).text
            audit = (await admin.get(f"{DM}/auditEvents")).text
        await muster.container.engine.dispose()
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("muster.db*"))
    assert secret not in shown and secret not in audit
    assert secret not in caplog.text
    assert secret.encode() not in stored
    assert application["appId"].encode() in stored  # the check can see the client's row


async def test_applications_list_follows_odata(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        for name in ("backup", "billing", "audit"):
            assert (await admin.post("/graph/beta/applications", json={"displayName": name})).status_code == 201
        params = {
            "$filter": "startswith(displayName,'b')",
            "$orderby": "displayName desc",
            "$top": "1",
            "$count": "true",
            "$select": "displayName,appId",
        }
        first = (await admin.get("/graph/beta/applications", params=params)).json()
        assert first["@odata.count"] == 2
        assert first["value"] == [{"displayName": "billing", "appId": first["value"][0]["appId"]}]
        second = (await admin.get(first["@odata.nextLink"])).json()
        assert [a["displayName"] for a in second["value"]] == ["backup"] and "@odata.nextLink" not in second
        for bad in ({"$filter": "secretText eq 'x'"}, {"$select": "secretText"}, {"$top": "-1"}):
            answer = await admin.get("/graph/beta/applications", params=bad)
            assert answer.status_code == 400, (bad, answer.text)
