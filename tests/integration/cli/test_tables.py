"""Tables fit 80 columns and stay readable: an email, a grade or an id is never broken across
lines (long text wraps inside its own cell), the less important columns are left out and named
under the table, and ``--wide`` shows every column, one line per row (issue 24)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from leadsync.connectors.errors import BadRecord
from leadsync.sync.cli.tables import Column, fitted_table
from tests.integration.cli.helpers import EMAILS, ingest, leadsync, scored_store

ENV = {"CLI_TEST_HUBSPOT_TOKEN": "pat-na1-cli-test"}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    config = scored_store(tmp_path_factory.mktemp("tables"))
    bad = [
        BadRecord(
            f"contact {n}: email {'x' * 30}@@broken is not an address; kept in quarantine",
            record={"id": n},
            remote_id=f"10000000{n}",
        )
        for n in range(3)
    ]
    ingest(config, [], [], bad)
    return config


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "whole"),
    [
        (["leads"], EMAILS),
        (["quarantine"], [f"10000000{n}" for n in range(3)]),
        (["check", "--offline"], ["(scoring model)", "hubspot", "(store)"]),
    ],
)
def test_at_80_columns_each_value_stays_whole_on_one_line(config, args, whole):
    done = leadsync(config, *args, columns=80, env=ENV)
    assert done.returncode in (0, 1), done.stderr
    lines = _lines(done.stdout)
    assert max(len(line) for line in lines) <= 80, done.stdout
    for value in whole:
        assert any(value in line for line in lines), f"{value!r} is broken up:\n{done.stdout}"


def test_leads_at_80_columns_keeps_the_reason_and_names_the_columns_left_out(config):
    text = leadsync(config, "leads", columns=80).stdout
    header = next(line for line in _lines(text) if "email" in line)
    assert "reason" in header and "grade" in header
    assert "not shown at this width" in text and "--wide" in text


def test_leads_wide_shows_every_column_one_line_per_row(config):
    rows = json.loads(leadsync(config, "leads", "--json").stdout)
    text = leadsync(config, "leads", "--wide", columns=80).stdout
    header = next(line for line in _lines(text) if "email" in line)
    for column in ("#", "email", "grade", "affinity", "engagement", "stage", "lifecycle", "reason"):
        assert column in header
    for row in rows:
        (line,) = [line for line in _lines(text) if row["email"] in line]
        assert row["lifecycle"] in line and row["stage"] in line and row["reason"] in line


CASES = [
    ("everything fits", 120, False, ["a", "b", "c", "note"], []),
    ("the highest drop goes first", 60, False, ["a", "b", "note"], ["c"]),
    ("then the next", 45, False, ["a", "note"], ["b", "c"]),
    ("columns that may not go stay, however narrow", 20, False, ["a", "note"], ["b", "c"]),
    ("wide keeps every column", 20, True, ["a", "b", "c", "note"], []),
]


@pytest.mark.parametrize(("name", "width", "wide", "shown", "hidden"), CASES, ids=[c[0] for c in CASES])
def test_fitted_table_drops_columns_by_priority(name, width, wide, shown, hidden):
    columns = [Column("a"), Column("b", drop=1), Column("c", drop=2), Column("note", fold=True)]
    rows = [["a" * 10, "b" * 12, "c" * 14, "a long note " * 10]]
    table, print_width = fitted_table(columns, rows, width=width, wide=wide)
    assert [str(c.header) for c in table.columns] == shown
    caption = str(table.caption or "")
    for header in hidden:
        assert header in caption
    console = Console(width=print_width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    lines = console.export_text().splitlines()
    if wide:
        assert print_width > width and sum("a long note" in line for line in lines) == 1
    else:
        assert max(len(line) for line in lines) <= max(width, 20)
