from __future__ import annotations

import pytest

from leadsync.connectors.errors import AuthError
from leadsync.connectors.hubspot.connector import HubSpotConnector
from tests.integration.hubspot.conftest import settings_for


def test_given_the_sandbox_token_when_checking_then_the_portal_is_reachable(hubspot_server):
    result = HubSpotConnector(settings_for(hubspot_server.base_url("hubspot"))).check()
    assert result.ok
    assert result.account == "6748263"


def test_given_a_wrong_token_when_checking_then_auth_error_names_source_and_variable_not_value(
    hubspot_server,
):
    secret = "pat-na1-wrong-secret-value"
    with pytest.raises(AuthError) as info:
        HubSpotConnector(settings_for(hubspot_server.base_url("hubspot"), token=secret)).check()
    message = str(info.value)
    assert "hs-main" in message and "LEADSYNC_HUBSPOT_TOKEN" in message
    assert secret not in message and secret not in repr(info.value)
    assert info.value.status == 401
