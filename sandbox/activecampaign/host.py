"""What the ActiveCampaign routes need from the emulator that serves them.

The routes take this protocol instead of ``ActiveCampaignEmulator`` itself, so the emulator imports
its routes and nothing imports back (no import cycle).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from leadsync.sandbox.activecampaign.shapes import Renderer
    from leadsync.sandbox.activecampaign.state import AccountState, CustomField
    from leadsync.sandbox.clock import SandboxClock
    from leadsync.sandbox.platform import EmulatorOptions
    from leadsync.sandbox.world import World


class AccountHost(Protocol):
    world: World
    clock: SandboxClock
    options: EmulatorOptions
    state: AccountState
    render: Renderer
    tz: tzinfo
    random: random.Random
    monotonic: Callable[[], float]
    ignored_params: frozenset[str]
    import_polls: int
    import_seconds: float
    import_seconds_per_contact: float
    value_change_bumps_udate: bool

    def stored_value(self, custom: CustomField, value: Any) -> str: ...
