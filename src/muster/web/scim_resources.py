"""What Muster's SCIM service publishes (RFC 7643 schemas, resource types, service provider configuration) and how
a SCIM User or Group maps to the directory's rows.

Users keep the identity provider's whole document (`scim_profile`), so every attribute it sends (phone numbers,
addresses, manager...) reads back as sent. The attributes Muster itself uses are copied into columns, and the
columns win when a user is read, because the admin API and CSV import change them too. A password an identity
provider sends is dropped: users sign in at the identity provider (or with a Muster local account), and Muster
keeps no copy of an IdP password. A user's read-only `groups` come from the memberships.
"""

from __future__ import annotations

import hashlib
from typing import Any

from scim2_models import Schema, ScimProvider, ServiceProviderConfig
from scim2_server.utils import load_default_resource_types, load_json_resource

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAX_RESULTS = 200
MAX_BODY_BYTES = 256 * 1024
MAX_FILTER_LENGTH = 2048

_SERVER_MANAGED = ("id", "meta", "password", "groups")
# column -> (maximum length) for SCIM values copied into the users table
_LIMITS = {
    "user_principal_name": 320,
    "display_name": 256,
    "given_name": 128,
    "surname": 128,
    "mail": 320,
    "external_id": 256,
    "department": 128,
    "job_title": 128,
}


def _schemas() -> list[Schema]:
    documents = load_json_resource("default-schemas.json")
    for document in documents:
        if document["id"] == GROUP_SCHEMA:
            for attribute in document["attributes"]:
                if attribute["name"] == "members":  # a member is its id and type; its name is on the member
                    attribute["subAttributes"] = [s for s in attribute["subAttributes"] if s["name"] != "display"]
    return [Schema.model_validate(document) for document in documents]


def _config() -> ServiceProviderConfig:
    return ServiceProviderConfig.model_validate(
        {
            "documentationUri": "https://github.com/muster-mdm/muster/blob/main/docs/directory.md",
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "Provisioning token",
                    "description": "A bearer secret created with POST /graph/beta/directory/provisioningTokens",
                    "primary": True,
                }
            ],
        }
    )


def scim_provider() -> ScimProvider:
    return ScimProvider.from_discovery(_schemas(), load_default_resource_types().values(), _config())


def version(row: dict[str, Any]) -> str:
    stamp = f"{row['id']}:{row['updated_at'].isoformat()}"
    return 'W/"' + hashlib.sha256(stamp.encode()).hexdigest()[:16] + '"'


def _put(document: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        document.pop(name, None)
    else:
        document[name] = value


def _mail_index(emails: list[dict[str, Any]]) -> int | None:
    """The email the `mail` column copies: the primary one, else the first."""
    primary = [n for n, email in enumerate(emails) if email.get("primary")]
    return primary[0] if primary else (0 if emails else None)


def user_document(row: dict[str, Any], groups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A users row, with its groups (each a groups row and `direct`), as a SCIM User document (without `id` and
    `meta`, which the storage adds)."""
    profile = row.get("scim_profile")
    document = dict(profile or {})
    document["userName"] = row["user_principal_name"]
    if profile is None or "active" in profile or not row["account_enabled"]:  # an IdP may leave `active` out
        document["active"] = row["account_enabled"]
    _put(document, "externalId", row["external_id"])
    _put(document, "displayName", row["display_name"])
    _put(document, "title", row["job_title"])
    name = dict(document.get("name") or {})
    _put(name, "givenName", row["given_name"])
    _put(name, "familyName", row["surname"])
    _put(document, "name", name or None)
    emails = [dict(email) for email in document.get("emails") or []]
    index = _mail_index(emails)
    if row["mail"] is None and index is not None:
        emails.pop(index)
    elif row["mail"] is not None and index is None:
        emails = [{"value": row["mail"], "type": "work", "primary": True}]
    elif row["mail"] is not None and index is not None:
        emails[index]["value"] = row["mail"]
    _put(document, "emails", emails or None)
    enterprise = dict(document.get(ENTERPRISE_SCHEMA) or {})
    _put(enterprise, "department", row["department"])
    _put(document, ENTERPRISE_SCHEMA, enterprise or None)
    document["schemas"] = [USER_SCHEMA] + ([ENTERPRISE_SCHEMA] if enterprise else [])
    listed = [
        {
            "value": group["id"],
            "$ref": f"Groups/{group['id']}",
            "display": group["display_name"],
            "type": "direct" if group["direct"] else "indirect",
        }
        for group in groups or []
    ]
    _put(document, "groups", listed or None)
    return document


def user_columns(document: dict[str, Any]) -> dict[str, Any]:
    """The directory columns a SCIM User document sets, with the document kept whole as `scim_profile`.

    Raises ValueError naming the attribute when a value is longer than Muster keeps.
    """
    profile = {name: value for name, value in document.items() if name not in _SERVER_MANAGED}
    name = profile.get("name") or {}
    emails = profile.get("emails") or []
    index = _mail_index(emails)
    columns = {
        "user_principal_name": profile.get("userName"),
        "external_id": profile.get("externalId"),
        "display_name": profile.get("displayName"),
        "given_name": name.get("givenName"),
        "surname": name.get("familyName"),
        "mail": emails[index].get("value") if index is not None else None,
        "account_enabled": profile.get("active") is not False,
        "department": (profile.get(ENTERPRISE_SCHEMA) or {}).get("department"),
        "job_title": profile.get("title"),
        "scim_profile": profile,
    }
    for column, limit in _LIMITS.items():
        value = columns[column]
        if isinstance(value, str) and len(value) > limit:
            raise ValueError(f"{column} is longer than {limit} characters")
    return columns


def group_document(row: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    """A groups row and its user and group members as a SCIM Group document; devices are not SCIM objects."""
    document: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": row["display_name"]}
    _put(document, "externalId", row["external_id"])
    shown = [
        {
            "value": member["id"],
            "$ref": f"{'Users' if member['member_type'] == 'user' else 'Groups'}/{member['id']}",
            "type": "User" if member["member_type"] == "user" else "Group",
        }
        for member in members
        if member["member_type"] in ("user", "group")
    ]
    _put(document, "members", shown or None)
    return document
