"""Fixtures of the pipeline tests: one small world, generated once."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from leadsync.sandbox.world import generate_world

CONTACTS = 150
SEED = 5


@pytest.fixture(scope="session")
def pipeline_world() -> Any:
    return generate_world(CONTACTS, SEED)


@pytest.fixture
def world(pipeline_world: Any) -> Any:
    """A private copy: sandboxes change their world (clock advances, writes)."""
    return copy.deepcopy(pipeline_world)
