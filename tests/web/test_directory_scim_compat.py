"""The rewrites of Entra ID's and Okta's off-RFC SCIM requests into RFC 7644 shapes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from muster.web.scim_compat import rewrite_group_body


def _rewritten(method: str, document: object) -> object:
    return json.loads(rewrite_group_body(method, json.dumps(document).encode()))


def test_entra_member_removal_by_value_becomes_one_filtered_remove_per_member() -> None:
    body = {"Operations": [{"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": 'b"c'}]}]}
    assert _rewritten("PATCH", body) == {
        "Operations": [
            {"op": "remove", "path": 'members[value eq "a"]'},
            {"op": "remove", "path": 'members[value eq "b\\"c"]'},
        ]
    }


def test_okta_rename_loses_the_read_only_id() -> None:
    body = {"Operations": [{"op": "replace", "value": {"id": "g1", "displayName": "Platform"}}]}
    assert _rewritten("PATCH", body) == {"Operations": [{"op": "replace", "value": {"displayName": "Platform"}}]}


def test_member_display_is_dropped_everywhere() -> None:
    member = {"value": "u1", "display": "Ada"}
    assert _rewritten("POST", {"displayName": "G", "members": [member]}) == {
        "displayName": "G",
        "members": [{"value": "u1"}],
    }
    patched = _rewritten("PATCH", {"Operations": [{"op": "add", "path": "members", "value": [member]}]})
    assert patched == {"Operations": [{"op": "add", "path": "members", "value": [{"value": "u1"}]}]}


def test_rfc_requests_pass_unchanged() -> None:
    body = {"Operations": [{"op": "remove", "path": 'members[value eq "a"]'}, {"op": "replace", "path": "x"}]}
    assert _rewritten("PATCH", body) == body


@given(
    st.binary(max_size=200)
    | st.recursive(st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)).map(
        lambda d: json.dumps(d).encode()
    )
)
def test_anything_else_passes_without_error(body: bytes) -> None:
    for method in ("POST", "PUT", "PATCH"):
        rewrite_group_body(method, body)
