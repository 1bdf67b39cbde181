"""Which connector class serves which platform (imported lazily: a source only loads its own)."""

from __future__ import annotations

import importlib

from leadsync.connectors.base import Connector
from leadsync.connectors.records import Platform

__all__ = ["connector_class"]

_CONNECTORS: dict[Platform, str] = {
    Platform.HUBSPOT: "leadsync.connectors.hubspot.connector:HubSpotConnector",
    Platform.MAILCHIMP: "leadsync.connectors.mailchimp.connector:MailchimpConnector",
    Platform.ACTIVECAMPAIGN: "leadsync.connectors.activecampaign.connector:ActiveCampaignConnector",
}


def connector_class(platform: Platform) -> type[Connector]:
    module_name, _, class_name = _CONNECTORS[platform].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
