"""Shared iPad commands: the SharedDeviceConfiguration setting, UserList, LogOutUser and DeleteUser, checked against
Apple's device-management YAML."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.protocols.apple import commands, inventory
from muster.protocols.errors import ParseError

from .test_schema import command_problems


def test_shared_device_configuration_keys_and_types_match_the_schema() -> None:
    command = commands.settings_shared_device_configuration(
        resident_users=8, temporary_session_only=True, temporary_session_timeout=600, user_session_timeout=0
    )
    assert command == {
        "RequestType": "Settings",
        "Settings": [
            {
                "Item": "SharedDeviceConfiguration",
                "ResidentUsers": 8,
                "TemporarySessionOnly": True,
                "TemporarySessionTimeout": 600,
                "UserSessionTimeout": 0,
            }
        ],
    }
    assert command_problems(command, "settings.yaml") == []


def test_resident_users_left_to_the_ipad_when_none_or_zero() -> None:
    for count in (None, 0):
        [item] = commands.settings_shared_device_configuration(resident_users=count)["Settings"]
        assert item == {"Item": "SharedDeviceConfiguration", "TemporarySessionOnly": False}


@given(
    resident_users=st.none() | st.integers(0, 32),
    temporary_only=st.booleans(),
    timeouts=st.tuples(*[st.none() | st.just(0) | st.integers(30, 86_400)] * 2),
)
def test_any_valid_configuration_matches_the_schema(
    resident_users: int | None, temporary_only: bool, timeouts: tuple[int | None, int | None]
) -> None:
    command = commands.settings_shared_device_configuration(
        resident_users=resident_users,
        temporary_session_only=temporary_only,
        temporary_session_timeout=timeouts[0],
        user_session_timeout=timeouts[1],
    )
    assert command_problems(command, "settings.yaml") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_session_timeout": 29}, "at least 30"),
        ({"temporary_session_timeout": -1}, "at least 30"),
        ({"user_session_timeout": True}, "at least 30"),
        ({"resident_users": "8"}, "integer"),
        ({"temporary_session_only": 1}, "true or false"),
    ],
)
def test_shared_device_configuration_rejects(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        commands.settings_shared_device_configuration(**kwargs)


def test_user_commands_match_the_schema() -> None:
    assert command_problems(commands.user_list(), "user.list.yaml") == []
    assert command_problems(commands.log_out_user(), "user.logout.yaml") == []
    plain = commands.delete_user("ana@example.com")
    assert plain == {"RequestType": "DeleteUser", "UserName": "ana@example.com"}
    forced = commands.delete_user("ana@example.com", force_deletion=True)
    assert forced["ForceDeletion"] is True
    assert command_problems(plain, "user.delete.yaml") == command_problems(forced, "user.delete.yaml") == []
    with pytest.raises(ValueError, match="user_name"):
        commands.delete_user(" ")


def test_user_list_result_is_read_tolerantly() -> None:
    users = inventory.parse_user_list(
        {
            "Users": [
                {"UserName": "a@x.org", "IsLoggedIn": True, "HasDataToSync": True, "DataQuota": 9, "DataUsed": 4},
                {"UserName": "bo@example.com", "IsLoggedIn": "yes", "DataQuota": True},
                {"IsLoggedIn": True},
                "garbage",
            ]
        }
    )
    assert users == [
        inventory.SharedDeviceUser("a@x.org", is_logged_in=True, has_data_to_sync=True, data_quota=9, data_used=4),
        inventory.SharedDeviceUser("bo@example.com", is_logged_in=False, has_data_to_sync=False),
    ]
    with pytest.raises(ParseError, match="Users"):
        inventory.parse_user_list({"Users": {"UserName": "ana@example.com"}})
