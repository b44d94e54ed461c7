"""Request shapes that Entra ID and Okta send and RFC 7644 does not allow, rewritten into their RFC equivalents
before scim2-server (which follows the RFC strictly) reads them:

- Entra ID removes group members with a value instead of a path filter:
  `{"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}` -> one
  `{"op": "remove", "path": "members[value eq \"<id>\"]"}` per member.
- Okta renames a group with a path-less replace that repeats the group's id, which is read-only:
  `{"op": "replace", "value": {"id": "<id>", "displayName": "..."}}` -> the same without `id`.
- Both send a member's `display`; Muster's Group schema has no `display` (a member's name lives on the member),
  so it is dropped from members in POST, PUT and PATCH bodies.

Anything else, including bodies that are not JSON, passes through untouched for scim2-server to judge.
"""

from __future__ import annotations

import json
from typing import Any


def rewrite_group_body(method: str, body: bytes) -> bytes:
    """The body of a request on /Groups or /Groups/{id}, in the RFC's shape."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict):
        return body
    if method == "PATCH":
        operations = document.get("Operations")
        if not isinstance(operations, list):
            return body
        document["Operations"] = [rewritten for op in operations for rewritten in _operation(op)]
    else:
        _drop_display(document.get("members"))
    return json.dumps(document).encode()


def _operation(operation: Any) -> list[Any]:
    if not isinstance(operation, dict):
        return [operation]
    op, path, value = str(operation.get("op", "")).lower(), operation.get("path"), operation.get("value")
    if op == "remove" and isinstance(path, str) and path.lower() == "members" and isinstance(value, list):
        ids = [member.get("value") for member in value if isinstance(member, dict)]
        if ids and all(isinstance(member_id, str) for member_id in ids):
            return [{"op": "remove", "path": f"members[value eq {json.dumps(member_id)}]"} for member_id in ids]
    if op in ("add", "replace") and path is None and isinstance(value, dict):
        value = {name: item for name, item in value.items() if name != "id"}
        _drop_display(value.get("members"))
        return [{**operation, "value": value}]
    if op in ("add", "replace") and isinstance(path, str) and path.lower() == "members":
        _drop_display(value)
    return [operation]


def _drop_display(members: Any) -> None:
    for member in members if isinstance(members, list) else []:
        if isinstance(member, dict):
            member.pop("display", None)
