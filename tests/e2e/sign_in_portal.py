"""Shared set-up for the enrollment sign-in tests: Muster, the fake APNs and a simulated OpenID Connect
provider wired together, and a browser that walks the portal's redirects."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from muster.domain.clock import Clock
from muster.simulators.oidc_provider import OidcProvider, OidcUser, serve_oidc_provider
from muster.store.tables import enrollment_failures
from tests.harness import DM, FakeApple, RunningMuster, fake_apple, running_muster

CLIENT_ID = "muster-enrollment"
CLIENT_SECRET = "a-client-secret-from-the-idp"


@dataclass
class Portal:
    muster: RunningMuster
    idp: OidcProvider
    apple: FakeApple

    def browser(self) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=self.muster.tls_ca_file)
        return httpx.AsyncClient(base_url=self.muster.base_url, verify=context, follow_redirects=True, timeout=30)

    async def configure(self, **settings: Any) -> dict[str, Any]:
        async with self.muster.admin() as admin:
            answer = await admin.patch(f"{DM}/identityProviderSettings", json=settings)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def add_user(self, upn: str, *, enabled: bool = True) -> str:
        async with self.muster.admin() as admin:
            answer = await admin.post(
                "/graph/beta/users",
                json={"userPrincipalName": upn, "displayName": upn.split("@")[0].title(), "accountEnabled": enabled},
            )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def set_enabled(self, user_id: str, enabled: bool) -> None:
        async with self.muster.admin() as admin:
            answer = await admin.patch(f"/graph/beta/users/{user_id}", json={"accountEnabled": enabled})
        assert answer.status_code == 204, answer.text

    async def failures(self) -> list[tuple[str, str]]:
        async with self.muster.container.engine.connect() as conn:
            rows = await conn.execute(select(enrollment_failures.c.stage, enrollment_failures.c.reason))
        return [(row.stage, row.reason) for row in rows]


@asynccontextmanager
async def portal(
    tmp_path: Path, *, database_url: str | None = None, user: OidcUser, clock: Clock | None = None
) -> AsyncIterator[Portal]:
    """Muster with a push certificate and its identity provider set to a running simulated provider."""
    async with (
        fake_apple(tmp_path / "apple") as apple,
        running_muster(tmp_path / "muster", database_url=database_url, apple=apple, clock=clock) as muster,
    ):
        await muster.install_push_certificate(apple)
        idp = OidcProvider(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uris=(f"{muster.base_url}/enroll/oidc/callback",),
            user=user,
        )
        async with serve_oidc_provider(idp) as issuer:
            setup = Portal(muster, idp, apple)
            await setup.configure(issuer=issuer, clientId=CLIENT_ID, clientSecret=CLIENT_SECRET)
            yield setup


def csrf_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in_with_idp(browser: httpx.AsyncClient) -> httpx.Response:
    """Click "Sign in with your organisation account" and follow the provider's redirects back."""
    return await browser.get("/enroll/oidc/start")


async def download_profile(browser: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    return await browser.post("/enroll/profile", data={"csrf": csrf_token(page)})
