from __future__ import annotations

import pytest

from leadsync.connectors.errors import AuthError, ConfigError
from leadsync.connectors.mailchimp.connector import MailchimpConnector
from leadsync.sandbox.server import SandboxServer
from tests.integration.mailchimp.conftest import settings_for


def test_given_valid_key_when_check_then_ok(empty_server: SandboxServer) -> None:
    with MailchimpConnector(settings_for(empty_server.base_url("mailchimp"))) as connector:
        result = connector.check()
    assert result.ok
    assert "Chimpy" in result.detail


def test_given_wrong_key_when_check_then_auth_error_names_source_and_variable(
    empty_server: SandboxServer,
) -> None:
    wrong = "ffffffffffffffffffffffffffffffff-us6"
    with MailchimpConnector(settings_for(empty_server.base_url("mailchimp"), api_key=wrong)) as connector:
        with pytest.raises(AuthError) as info:
            connector.check()
    message = str(info.value)
    assert "mc-main" in message and "LEADSYNC_MAILCHIMP_KEY" in message
    assert wrong not in message and wrong not in repr(info.value)
    assert info.value.status == 401


def test_given_host_with_server_substring_when_built_then_config_error() -> None:
    # mailchimp.md §2: the SDK rewrites every "server" in the URL to the data centre.
    with pytest.raises(ConfigError, match="server"):
        MailchimpConnector(settings_for("http://mockserver:8080"))
