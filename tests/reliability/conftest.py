"""Fixtures of the reliability suite: a small world, and the per-test figures handed to the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leadsync.sandbox.world import generate_world
from tests.reliability.figures import KEY, Figures
from tests.worlds import private_copy

CONTACTS = 40
SEED = 23


@pytest.fixture(scope="session")
def reliability_world() -> Any:
    return generate_world(CONTACTS, SEED)


@pytest.fixture
def world(reliability_world: Any) -> Any:
    return private_copy(reliability_world)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    counted = Figures()
    yield counted
    request.node.user_properties.append((KEY, dict(counted.counts)))
