"""The registry of platform emulators the sandbox serves."""

from __future__ import annotations

from leadsync.sandbox.activecampaign.emulator import ActiveCampaignEmulator
from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.mailchimp.emulator import MailchimpEmulator
from leadsync.sandbox.platform import PlatformEmulator

__all__ = ["ALL_EMULATORS", "emulator_class"]

ALL_EMULATORS: tuple[type[PlatformEmulator], ...] = (
    HubSpotEmulator,
    MailchimpEmulator,
    ActiveCampaignEmulator,
)


def emulator_class(platform: str) -> type[PlatformEmulator]:
    for cls in ALL_EMULATORS:
        if cls.name == platform:
            return cls
    raise KeyError(platform)
