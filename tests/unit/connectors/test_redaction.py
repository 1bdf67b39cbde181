"""Secrets and email addresses stay out of messages and logs."""

from __future__ import annotations

import logging

import httpx
import pytest

from leadsync.connectors.redaction import RedactingFilter, Redactor, redact_headers, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.hubapi.com/contacts/v1/lists?hapikey=abc123&count=5",
         "https://api.hubapi.com/contacts/v1/lists?hapikey=***&count=5"),
        ("https://x.test/p?api_key=k&token=t&Access_Token=a",
         "https://x.test/p?api_key=***&token=***&Access_Token=***"),
        ("https://user:pass@us6.api.mailchimp.com/3.0/", "https://user:***@us6.api.mailchimp.com/3.0/"),
        ("https://api.hubapi.com/crm/v3/objects/contacts?limit=100&after=5",
         "https://api.hubapi.com/crm/v3/objects/contacts?limit=100&after=5"),
        ("/relative/path", "/relative/path"),
    ],
    ids=["hapikey", "several names, any case", "user-info password", "nothing secret", "relative"],
)  # fmt: skip
def test_urls_lose_their_credentials_and_keep_everything_else(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_an_httpx_url_is_accepted() -> None:
    assert redact_url(httpx.URL("https://x.test/?token=s3cr3t")) == "https://x.test/?token=***"


def test_credential_headers_are_masked_and_the_auth_scheme_kept() -> None:
    headers = httpx.Headers(
        {
            "Authorization": "Bearer pat-na1-secret",
            "Api-Token": "ac-secret",
            "Cookie": "session=1",
            "Content-Type": "application/json",
        }
    )
    assert redact_headers(headers) == {
        "authorization": "Bearer ***",
        "api-token": "***",
        "cookie": "***",
        "content-type": "application/json",
    }


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("token pat-na1-abcdef failed", ["pat-na1-abcdef"], "token *** failed"),
        ("key abc-us6 and abc-us6-long", ["abc-us6", "abc-us6-long"], "key *** and ***"),
        ("the short 'ab' stays", ["ab"], "the short 'ab' stays"),
        ("no secrets here", [], "no secrets here"),
        ("Ana.Ruiz+x@acme.io is already a list member", [], "***@acme.io is already a list member"),
    ],
    ids=["known secret", "longest first", "too short to search", "nothing", "email local part"],
)
def test_text_loses_known_secrets_and_email_local_parts(text: str, secrets: list[str], expected: str) -> None:
    assert redact_text(text, secrets) == expected


def test_emails_can_be_kept_when_asked() -> None:
    assert redact_text("ana@acme.io", emails=False) == "ana@acme.io"


def test_a_redactor_learns_new_secrets_as_they_appear() -> None:
    redactor = Redactor(["first-secret"])
    redactor.add("second-secret", None, "")
    assert redactor.text("first-secret second-secret") == "*** ***"
    assert redactor.url("https://x.test/?q=second-secret") == "https://x.test/?q=***"
    assert redactor.headers({"X-Debug": "first-secret"}) == {"X-Debug": "***"}
    assert "first-secret" not in repr(redactor) and "second-secret" not in repr(redactor)


def test_the_logging_filter_redacts_the_rendered_message(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("leadsync.test.redaction")
    logger.addFilter(RedactingFilter(Redactor(["tok-123456"])))
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("sending %s to %s", "tok-123456", "ana@acme.io")
    assert caplog.messages == ["sending *** to ***@acme.io"]
