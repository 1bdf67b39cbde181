from __future__ import annotations

import pytest

from leadsync.connectors.errors import AuthError
from tests.integration.activecampaign.conftest import TOKEN_VARIABLE


def test_given_the_sandbox_token_when_checking_then_the_user_is_named(connector_for) -> None:
    result = connector_for().check()
    assert result.ok
    assert result.account == "sandbox"


def test_given_a_wrong_token_when_checking_then_auth_error_names_source_and_variable(connector_for) -> None:
    wrong = "not-the-token-0123456789abcdef"
    connector = connector_for(token=wrong)
    with pytest.raises(AuthError) as caught:
        connector.check()
    message = str(caught.value)
    assert "ac-test" in message and TOKEN_VARIABLE in message
    assert wrong not in message and wrong not in repr(caught.value) and wrong not in repr(connector.settings)
    assert caught.value.status == 403
