"""Session hooks shared by the whole suite: the reliability figures (tests/reliability/figures.py)."""

from tests.reliability.figures import pytest_runtest_logreport, pytest_terminal_summary

__all__ = ["pytest_runtest_logreport", "pytest_terminal_summary"]
