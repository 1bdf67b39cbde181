"""``connectors.__all__`` is sorted, importable, and exports every public name of the core modules."""

from __future__ import annotations

import importlib

import pytest

from leadsync import connectors

CORE_MODULES = [
    "leadsync.connectors.auth",
    "leadsync.connectors.errors",
    "leadsync.connectors.http",
    "leadsync.connectors.pagination",
    "leadsync.connectors.ratelimit",
    "leadsync.connectors.records",
    "leadsync.connectors.redaction",
    "leadsync.connectors.retry",
    "leadsync.connectors.streams",
]


def test_all_is_sorted_and_has_no_duplicates() -> None:
    assert connectors.__all__ == sorted(set(connectors.__all__))


def test_every_exported_name_exists() -> None:
    for name in connectors.__all__:
        assert getattr(connectors, name) is not None, name


@pytest.mark.parametrize("module_name", CORE_MODULES)
def test_the_package_exports_every_public_name_of_each_core_module(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == sorted(module.__all__), f"{module_name}.__all__ is not sorted"
    missing = set(module.__all__) - set(connectors.__all__)
    assert not missing, f"{module_name} exports {sorted(missing)} but connectors does not"
    for name in module.__all__:
        assert getattr(connectors, name) is getattr(module, name)


def test_nothing_is_exported_that_no_core_module_declares() -> None:
    declared = {name for module in CORE_MODULES for name in importlib.import_module(module).__all__}
    assert set(connectors.__all__) == declared
