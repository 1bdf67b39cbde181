"""The sandbox counts writes as the platform would: HubSpot's POST search and batch read are reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.mailchimp.emulator import MailchimpEmulator


@pytest.mark.parametrize(
    ("emulator", "method", "path", "write"),
    [
        (HubSpotEmulator, "POST", "/crm/v3/objects/contacts/search", False),
        (HubSpotEmulator, "POST", "/crm/v3/objects/contacts/batch/read", False),
        (HubSpotEmulator, "POST", "/crm/v3/objects/contacts/batch/update", True),
        (HubSpotEmulator, "GET", "/crm/v3/objects/contacts", False),
        (MailchimpEmulator, "POST", "/3.0/lists/abc", True),
        (MailchimpEmulator, "GET", "/3.0/lists/abc/members", False),
    ],
)
def test_a_request_counts_as_a_write_only_when_it_changes_platform_state(emulator, method, path, write):
    request = SimpleNamespace(method=method, path=path)
    assert emulator.is_write(object.__new__(emulator), request) is write
