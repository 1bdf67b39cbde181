"""The report's links to a contact on its platform, built from the config (sync/contactlinks.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadsync.config.settings import SourceConfig
from leadsync.sync.contactlinks import LinkMaker


def source(platform: str, base_url: str | None = None, **options: object) -> SourceConfig:
    return SourceConfig(name=platform, platform=platform, base_url=base_url, options=options)


def test_hubspot_links_to_the_contact_record_under_the_hub_id():
    maker = LinkMaker([source("hubspot", portal_id=6748263)])
    link = maker.link("hubspot", "hubspot", "101", {})
    assert link.url == "https://app.hubspot.com/contacts/6748263/record/0-1/101"
    assert link.platform == "HubSpot"


def test_hubspot_without_a_hub_id_names_the_option_to_set():
    link = LinkMaker([source("hubspot")]).link("hubspot", "hubspot", "101", {})
    assert link.url is None and "portal_id" in link.hint


def test_mailchimp_links_to_the_member_by_web_id_on_the_accounts_data_centre():
    maker = LinkMaker([source("mailchimp", "https://us6.api.mailchimp.com/3.0")])
    link = maker.link("mailchimp", "mailchimp", "list1:abc", {"web_id": 123456})
    assert link.url == "https://us6.admin.mailchimp.com/lists/members/view?id=123456"
    assert LinkMaker([source("mailchimp", dc="us21")]).link(
        "mailchimp", "mailchimp", "l:a", {"web_id": 7}
    ).url == ("https://us21.admin.mailchimp.com/lists/members/view?id=7")


def test_mailchimp_without_a_web_id_or_data_centre_has_no_link_and_says_why():
    with_dc = LinkMaker([source("mailchimp", dc="us6")])
    assert "web_id" in with_dc.link("mailchimp", "mailchimp", "l:a", {}).hint
    no_dc = LinkMaker([source("mailchimp", "https://mailchimp.example.com/3.0")])
    assert "dc" in no_dc.link("mailchimp", "mailchimp", "l:a", {"web_id": 1}).hint


@pytest.mark.parametrize(
    "base_url", ["https://acme.api-us1.com/api/3", "https://acme.activehosted.com/api/3"]
)
def test_activecampaign_links_to_the_contact_in_the_hosted_app(base_url):
    link = LinkMaker([source("activecampaign", base_url)]).link(
        "activecampaign", "activecampaign", "42", None
    )
    assert link.url == "https://acme.activehosted.com/app/contacts/42"


def test_activecampaign_account_option_wins_over_the_base_url():
    maker = LinkMaker([source("activecampaign", "http://127.0.0.1:9/api/3", account="sandbox")])
    assert maker.link("activecampaign", "activecampaign", "7", None).url == (
        "https://sandbox.activehosted.com/app/contacts/7"
    )


def test_a_source_gone_from_the_config_gets_no_link():
    link = LinkMaker([]).link("old", "hubspot", "1", {})
    assert link.url is None and link.platform == "HubSpot"


@pytest.mark.parametrize(
    ("platform", "options"),
    [("hubspot", {"portal_id": 0}), ("mailchimp", {"dc": "US6/x"}), ("activecampaign", {"account": "a.b"})],
)
def test_link_options_are_validated(platform, options):
    with pytest.raises(ValidationError):
        source(platform, **options)
