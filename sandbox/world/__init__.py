"""The sandbox world: the people, campaigns and events the emulators serve, and their generator."""

from leadsync.sandbox.world.generator import (
    DEFAULT_NOW,
    PLATFORM_EVENT_TYPES,
    PersonChange,
    PersonStageChange,
    WorldDelta,
    apply_delta,
    campaigns_between,
    extend_world,
    generate_world,
)
from leadsync.sandbox.world.model import (
    FORMAT_VERSION,
    SENIORITIES,
    Campaign,
    Event,
    Hidden,
    Person,
    Stage,
    StageChange,
    World,
    format_time,
    parse_time,
)

__all__ = [
    "Campaign",
    "DEFAULT_NOW",
    "Event",
    "FORMAT_VERSION",
    "Hidden",
    "PLATFORM_EVENT_TYPES",
    "Person",
    "PersonChange",
    "PersonStageChange",
    "SENIORITIES",
    "Stage",
    "StageChange",
    "World",
    "WorldDelta",
    "apply_delta",
    "campaigns_between",
    "extend_world",
    "format_time",
    "generate_world",
    "parse_time",
]
