"""`muster audit` and `muster webhooks`: the audit log and webhook subscriptions, over the admin API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from muster.cli.api import DM, call, collection, patch, present, reveal_secret, show, show_one

audit = typer.Typer(help="The audit log (who changed what, and refused requests).", no_args_is_help=True)
webhooks = typer.Typer(help="Signed webhook subscriptions and their deliveries.", no_args_is_help=True)
_AGE = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
SUBSCRIPTIONS = f"{DM}/webhookSubscriptions"
_EVENTS_HELP = "deviceEnrolled, deviceCheckedOut, commandCompleted"
_SECRET_FILE_HELP = "Write the signing secret to this file (mode 0600) instead of showing it."


def register(app: typer.Typer) -> None:
    app.add_typer(audit, name="audit")
    app.add_typer(webhooks, name="webhooks")


def _since(text: str) -> str:
    """`30m`, `12h`, `7d` ago, or an ISO 8601 time; as an OData DateTimeOffset literal."""
    age = _AGE.fullmatch(text)
    if age:
        moment = datetime.now(UTC) - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            typer.secho(f"--since: expected 30m, 12h, 7d or an ISO 8601 time, got {text!r}", err=True, fg="red")
            raise typer.Exit(2) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _flat(event: dict[str, Any]) -> dict[str, Any]:
    actor = event["actor"]
    return {
        **event,
        "actorName": actor.get("userPrincipalName") or actor.get("applicationDisplayName") or actor["auditActorType"],
        "target": ", ".join(r["resourceId"] for r in event["resources"] if r.get("resourceId")),
    }


@audit.command("list")
def list_events(
    since: str = typer.Option(None, help="Only events after this: 30m, 12h, 7d or an ISO 8601 time."),
    actor: str = typer.Option(None, help="Only this actor (user principal name or application name)."),
    category: str = typer.Option(None, help="Only this category, e.g. managedDevices or security."),
    failed: bool = typer.Option(False, "--failed", help="Only failed or refused activities."),
    top: int = typer.Option(50, min=1, max=1000, help="How many events (newest first)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Audit events, newest first."""
    clauses = []
    if since:
        clauses.append(f"activityDateTime ge {_since(since)}")
    if actor:
        clauses.append(f"actor eq {_quoted(actor)}")
    if category:
        clauses.append(f"category eq {_quoted(category)}")
    if failed:
        clauses.append("activityResult eq 'failure'")
    params = {"$top": str(top)}
    if clauses:
        params["$filter"] = " and ".join(clauses)
    events = call("GET", f"{DM}/auditEvents", params=params).json()["value"]
    columns = ["activityDateTime", "actorName", "activity", "category", "activityResult", "target", "correlationId"]
    show(events if as_json else [_flat(e) for e in events], as_json, columns)


@audit.command("show")
def show_event(event_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One audit event: actor, activity, the resources changed with their before/after (secrets redacted)."""
    show_one(call("GET", f"{DM}/auditEvents/{event_id}").json(), as_json)


@webhooks.command("create")
def create_subscription(
    url: str = typer.Argument(..., help="The receiver's https URL."),
    event: list[str] = typer.Option(..., "--event", "-e", help=_EVENTS_HELP),
    description: str = typer.Option(None, help="What the subscription is for."),
    output: Path = typer.Option(None, "-o", "--output", help=_SECRET_FILE_HELP),
) -> None:
    """Subscribe a receiver; prints the signing secret, which is shown only this once."""
    body = {"notificationUrl": url, "events": event, "description": description}
    created = call("POST", SUBSCRIPTIONS, json=body).json()
    typer.echo(f"id:     {created['id']}")
    reveal_secret("webhook signing secret", created["secret"], output)


@webhooks.command("show")
def show_subscription(subscription_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One subscription (its signing secret is never shown again)."""
    show_one(call("GET", f"{SUBSCRIPTIONS}/{subscription_id}").json(), as_json)


@webhooks.command("update")
def update_subscription(
    subscription_id: str,
    url: str = typer.Option(None, "--url", help="A new https receiver URL."),
    event: list[str] = typer.Option([], "--event", "-e", help=f"Replaces the events: {_EVENTS_HELP}"),
    description: str = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change a subscription's receiver, events or description (the signing secret stays)."""
    body = present(notificationUrl=url, events=event or None, description=description)
    show_one(patch(f"{SUBSCRIPTIONS}/{subscription_id}", body).json(), as_json)


@webhooks.command("rotate-secret")
def rotate_secret(
    subscription_id: str, output: Path = typer.Option(None, "-o", "--output", help=_SECRET_FILE_HELP)
) -> None:
    """Replace the signing secret; deliveries are signed with the new one from now on."""
    rotated = call("POST", f"{SUBSCRIPTIONS}/{subscription_id}/rotateSecret").json()
    reveal_secret("webhook signing secret", rotated["secret"], output)


@webhooks.command("list")
def list_subscriptions(as_json: bool = typer.Option(False, "--json")) -> None:
    """Webhook subscriptions."""
    rows = collection(SUBSCRIPTIONS)
    for row in rows:
        row["eventList"] = ",".join(row["events"])
    show(rows, as_json, ["id", "notificationUrl", "eventList", "description", "createdDateTime"])


@webhooks.command("deliveries")
def list_deliveries(subscription_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A subscription's recent deliveries: status, attempts, last error."""
    rows = collection(f"{SUBSCRIPTIONS}/{subscription_id}/deliveries")
    columns = ["eventType", "status", "attempts", "lastStatusCode", "lastError", "createdDateTime"]
    show(rows, as_json, columns)


@webhooks.command("delete")
def delete_subscription(subscription_id: str) -> None:
    """Delete a subscription and its pending deliveries."""
    call("DELETE", f"{SUBSCRIPTIONS}/{subscription_id}")
    typer.echo(f"deleted {subscription_id}")
