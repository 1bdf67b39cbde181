"""Fixtures of the pipeline tests: one small world, generated once; every test on both stores."""

from __future__ import annotations

from typing import Any

import pytest

from leadsync.sandbox.world import generate_world
from tests.integration.pipeline import harness
from tests.stores import STORES, new_store_url
from tests.worlds import private_copy

CONTACTS = 150
SEED = 5


@pytest.fixture(scope="session")
def pipeline_world() -> Any:
    return generate_world(CONTACTS, SEED)


@pytest.fixture
def world(pipeline_world: Any) -> Any:
    """A private copy: sandboxes change their world (clock advances, writes)."""
    return private_copy(pipeline_world)


@pytest.fixture(
    autouse=True, params=[pytest.param(kind, marks=getattr(pytest.mark, kind)) for kind in STORES]
)
def pipeline_store(request: Any, postgres_session: Any) -> Any:
    """Every pipeline test runs once per store: ``Leadsync.create`` makes a fresh store of this kind
    (tests/stores.py). The PostgreSQL param skips, saying why, where no server is available."""
    kind = request.param
    if kind == "postgresql" and isinstance(postgres_session, str):
        pytest.skip(f"PostgreSQL: {postgres_session}")
    harness.STORE["new"] = lambda folder: new_store_url(kind, folder, postgres_session)
    yield kind
    harness.STORE["new"] = lambda folder: new_store_url("sqlite", folder, postgres_session)
