"""`muster terms`: terms and conditions (Graph `termsAndConditions`), their assignments and acceptance report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from muster.cli.api import DM, call, collection, patch, present, read_source, show, show_one

terms = typer.Typer(help="Terms and conditions users accept before enrolling.", no_args_is_help=True)
TERMS = f"{DM}/termsAndConditions"
_TEXT_HELP = "The full terms: a file, or - for standard input."


def register(app: typer.Typer) -> None:
    app.add_typer(terms, name="terms")


def _body(
    name: str | None, description: str | None, title: str | None, summary: str | None, text: Path | None
) -> dict[str, Any]:
    return present(
        displayName=name,
        description=description,
        title=title,
        acceptanceStatement=summary,
        bodyText=None if text is None else read_source(text),
    )


@terms.command("list")
def list_terms(as_json: bool = typer.Option(False, "--json")) -> None:
    """Terms and conditions you can see."""
    show(collection(TERMS), as_json, ["id", "displayName", "title", "version", "roleScopeTagIds"])


@terms.command("show")
def show_terms(terms_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One policy, with its assignments."""
    policy = call("GET", f"{TERMS}/{terms_id}").json()
    policy["assignments"] = [a["target"] for a in collection(f"{TERMS}/{terms_id}/assignments")]
    show_one(policy, as_json)


@terms.command("create")
def create_terms(
    name: str = typer.Argument(..., help="For admins only: users never see it."),
    title: str = typer.Option(..., help="Shown to users, in bold."),
    text: Path = typer.Option(..., help=_TEXT_HELP),
    summary: str = typer.Option(None, help="Shown under the title."),
    description: str = typer.Option(None, help="For admins only."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="A scope tag id (none: the Default tag, or your own)."),
) -> None:
    """Create a policy (version 1); assign it with `muster terms assign`."""
    body = _body(name, description, title, summary, text) | ({"roleScopeTagIds": tag} if tag else {})
    typer.echo(call("POST", TERMS, json=body).json()["id"])


@terms.command("update")
def update_terms(
    terms_id: str,
    name: str = typer.Option(None, "--name"),
    title: str = typer.Option(None),
    text: Path = typer.Option(None, help=_TEXT_HELP),
    summary: str = typer.Option(None),
    description: str = typer.Option(None),
    reaccept: bool = typer.Option(
        False, "--require-reaccept", help="Increment the version: every assigned user must accept again."
    ),
) -> None:
    """Change a policy; without --require-reaccept earlier acceptances stay valid."""
    body = _body(name, description, title, summary, text)
    if reaccept:
        body["version"] = call("GET", f"{TERMS}/{terms_id}").json()["version"] + 1
    updated = patch(f"{TERMS}/{terms_id}", body).json()
    typer.echo(f"updated terms {terms_id} (version {updated['version']})")


@terms.command("delete")
def delete_terms(terms_id: str) -> None:
    """Delete a policy and its acceptance history."""
    call("DELETE", f"{TERMS}/{terms_id}")
    typer.echo(f"deleted terms {terms_id}")


@terms.command("assign")
def assign_terms(
    terms_id: str,
    all_users: bool = typer.Option(False, "--all-users", help="Assign to every user."),
    group: list[str] = typer.Option([], "--group", "-g", help="A group id to include."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", help="A group id to exclude."),
) -> None:
    """Replace the policy's assignments (none given: assigned to nobody)."""
    targets: list[dict[str, Any]] = [{"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}] * all_users
    targets += [{"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": g} for g in group]
    targets += [{"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": g} for g in exclude]
    body = {"termsAndConditionsAssignments": [{"target": target} for target in targets]}
    assigned = call("POST", f"{TERMS}/{terms_id}/assign", json=body).json()["value"]
    typer.echo(f"terms {terms_id} assigned to {len(assigned)} target(s)")


@terms.command("acceptances")
def acceptances(
    terms_id: str,
    as_csv: bool = typer.Option(False, "--csv", help="The exported report: every acceptance, as CSV."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Who accepted which version, when, and whether it is the current one."""
    if as_csv:
        typer.echo(call("GET", f"{TERMS}/{terms_id}/acceptanceStatuses/export").text, nl=False)
        return
    columns = ["userDisplayName", "userPrincipalName", "acceptedVersion", "acceptedDateTime", "acceptedLatest"]
    show(collection(f"{TERMS}/{terms_id}/acceptanceStatuses"), as_json, columns)
