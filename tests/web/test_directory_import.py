"""CSV import of users through `POST /graph/beta/users/importCsv`: upsert by UPN, all rows or none."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muster.domain.errors import InvalidInput
from muster.services.directory_import import parse_user_csv
from tests.harness import running_muster

GRAPH = "/graph/beta"
CSV = {"Content-Type": "text/csv"}

FILE = """userPrincipalName,displayName,givenName,surname,mail,department,jobTitle,accountEnabled,groups
ada@example.com,Ada Lovelace,Ada,Lovelace,ada@example.com,Research,Analyst,true,Staff;Engineers
grace@example.com,Grace Hopper,Grace,Hopper,,Navy,,yes,Staff
"linus@example.com","Torvalds, Linus",,,,,,false,
"""


async def _import(admin: httpx.AsyncClient, text: str) -> httpx.Response:
    return await admin.post(f"{GRAPH}/users/importCsv", content=text.encode(), headers=CSV)


async def test_import_creates_then_is_idempotent_then_updates(tmp_path: Path, database_url: str) -> None:
    async with running_muster(tmp_path, database_url=database_url) as muster, muster.admin() as admin:
        for name in ("Staff", "Engineers"):
            assert (await admin.post(f"{GRAPH}/groups", json={"displayName": name})).status_code == 201
        dynamic = {"displayName": "Navy", "groupTypes": ["DynamicMembership"]}
        navy = (
            await admin.post(f"{GRAPH}/groups", json={**dynamic, "membershipRule": 'user.department -eq "navy"'})
        ).json()

        first = await _import(admin, FILE)
        assert first.status_code == 200, first.text
        assert first.json() == {
            "rowCount": 3,
            "createdCount": 3,
            "updatedCount": 0,
            "unchangedCount": 0,
            "membershipsAddedCount": 3,
        }
        linus = (await admin.get(f"{GRAPH}/users/linus@example.com")).json()
        assert (linus["displayName"], linus["accountEnabled"]) == ("Torvalds, Linus", False)
        ada = (await admin.get(f"{GRAPH}/users/ada@example.com")).json()
        groups = (await admin.get(f"{GRAPH}/users/{ada['id']}/memberOf")).json()["value"]
        assert sorted(g["displayName"] for g in groups) == ["Engineers", "Staff"]
        navy_members = (await admin.get(f"{GRAPH}/groups/{navy['id']}/members")).json()["value"]
        assert [m["userPrincipalName"] for m in navy_members] == ["grace@example.com"]

        again = (await _import(admin, FILE)).json()
        assert (again["createdCount"], again["updatedCount"], again["unchangedCount"]) == (0, 0, 3)
        assert again["membershipsAddedCount"] == 0

        changed = await _import(admin, "userPrincipalName,department\nADA@example.com,Navy\n")
        assert changed.json()["updatedCount"] == 1
        ada = (await admin.get(f"{GRAPH}/users/ada@example.com")).json()
        assert (ada["department"], ada["jobTitle"]) == ("Navy", "Analyst")  # empty or absent cells keep values
        navy_members = (await admin.get(f"{GRAPH}/groups/{navy['id']}/members")).json()["value"]
        assert sorted(m["userPrincipalName"] for m in navy_members) == ["ada@example.com", "grace@example.com"]


async def test_one_bad_row_imports_nothing_and_every_error_names_its_row(tmp_path: Path) -> None:
    async with running_muster(tmp_path) as muster, muster.admin() as admin:
        await admin.post(f"{GRAPH}/groups", json={"displayName": "Staff"})
        text = (
            "userPrincipalName,accountEnabled,groups\n"
            "ok@example.com,true,Staff\n"
            "bad-upn,true,\n"
            "x@example.com,maybe,\n"
            "y@example.com,true,Nowhere\n"
            "OK@example.com,,\n"
        )
        response = await _import(admin, text)
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        for expected in ("row 3: userPrincipalName", "row 4: accountEnabled", "row 6: userPrincipalName repeats row 2"):
            assert expected in message
        assert (await admin.get(f"{GRAPH}/users")).json()["value"] == []
        fixed = text.replace("bad-upn", "b@example.com").replace("maybe", "no").replace("OK@", "z@")
        response = await _import(admin, fixed)
        assert response.status_code == 400 and "row 5: cannot add to group 'Nowhere': no such group" in response.text
        assert (await admin.get(f"{GRAPH}/users")).json()["value"] == []

        assert (await admin.post(f"{GRAPH}/users/importCsv", json={"a": 1})).status_code == 400
        too_big = "userPrincipalName\n" + "a@example.com\n" * 400_000
        assert (await _import(admin, too_big)).status_code == 400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "header"),
        ("displayName\nAda\n", "header"),
        ("userPrincipalName,password\na@b.c,x\n", "unknown: password"),
        ("userPrincipalName,userPrincipalName\na@b.c,a@b.c\n", "header"),
        ('userPrincipalName\n"a@b.c\n', "not valid CSV"),
        ("userPrincipalName,mail\na@b.c\n", "1 cells where the header names 2"),
        ("userPrincipalName,surname\na@b.c," + "x" * 200 + "\n", "surname is longer"),
    ],
)
def test_malformed_files_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_user_csv(text.encode())


def test_non_utf8_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not UTF-8"):
        parse_user_csv("userPrincipalName\nzoë@example.com\n".encode("latin-1"))


@settings(max_examples=200)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: ("userPrincipalName,groups\n" + t).encode()))
def test_garbage_raises_only_invalid_input(data: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        for number, row in parse_user_csv(data):
            assert number >= 2 and "@" in row["user_principal_name"]
