"""The HTML report: one well-formed, self-contained document holding every section (acceptance 3).

Links to a contact's page on its platform (<a href>) are allowed: they load nothing until clicked.
Anything the page would load by itself (src, a stylesheet link, an SVG reference outside the page)
is not.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from leadsync.config.scoring_model import LIFECYCLE_LEVELS
from leadsync.scoring.backtest import backtest
from leadsync.sync.contactlinks import ContactLink
from leadsync.sync.report import CHARTS, SECTIONS, CallRow, ReportData, histogram, render

VOID = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "embed", "source", "track", "wbr"}


class Checker(HTMLParser):
    """Tags must nest and close; records section ids, SVGs per section and any outside reference."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.sections: dict[str, int] = {}
        self.current: str | None = None
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "xlink:href"):
            value = attrs.get(name)
            if value is None or (tag == "a" and name == "href") or value.startswith("#"):
                continue  # a link to follow, or a reference inside the page
            self.external.append(f"{tag} {name}={value}")
        if tag in ("script", "iframe", "object", "link", "img"):
            self.external.append(tag)
        if tag == "section":
            self.current = attrs.get("id")
            self.sections[self.current] = 0
        if tag == "svg" and self.current:
            self.sections[self.current] += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass  # <x/> closes itself

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "section":
            self.current = None


def check(text: str) -> Checker:
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert not checker.problems, checker.problems
    assert checker.stack == [], f"unclosed: {checker.stack}"
    assert not checker.external, f"needs the network or runs code: {checker.external}"
    assert text.startswith("<!DOCTYPE html>")
    return checker


def _data(with_backtest: bool = True) -> ReportData:
    figures = backtest(
        outcome="customer",
        as_of=datetime(2026, 8, 1, tzinfo=UTC),
        horizon=timedelta(days=90),
        y=[1, 0, 0, 1, 0],
        scores={"total": [90, 10, 50, 70, 20], "affinity": [50, 5, 25, 40, 10]},
        grade=["A1", "D4", "B3", "A2", "C4"],
        stage=["decision", "awareness", "investigation", "decision", "awareness"],
        lifecycle=["marketing_qualified_lead", "lead", "lead", "marketing_qualified_lead", "subscriber"],
        mql=[1, 0, 0, 1, 0],
    )
    lead = {
        "email": "ada@example.com",
        "composite": 88.4,
        "affinity": 90,
        "engagement": 81,
        "grade": "A1",
        "stage": "decision",
        "lifecycle": "marketing_qualified_lead",
        "reason": "pricing page <twice> & a demo request",
        "scored_at": datetime(2026, 11, 2, tzinfo=UTC),
    }
    links = [
        ContactLink("hubspot", "HubSpot", "https://app.hubspot.com/contacts/42/record/0-1/101"),
        ContactLink("mailchimp", "Mailchimp", None, "set [sources.options] dc for mailchimp to link members"),
    ]
    return ReportData(
        generated_at=datetime(2026, 11, 2, tzinfo=UTC),
        model_name="default <&>",
        call_first=[CallRow(lead, "Ada Lovelace", "CTO · Analytical Engines", links)],
        lifecycles={"marketing_qualified_lead": 1, "lead": 4},
        affinity=[0, 5, 50, 99, 100],
        engagement=[10, 20, 30, 40, 100],
        stages={"awareness": 3, "decision": 2},
        backtest=figures if with_backtest else None,
        backtest_note="" if with_backtest else "No backtest: the store holds no events",
        runs=[
            {
                "source": "hubspot",
                "step": "pull",
                "started_at": datetime(2026, 11, 2, tzinfo=UTC),
                "finished_at": None,
                "status": "failed",
                "counts": {"records_read": 3, "throttled": 2},
                "error": "HTTP 500 <boom>",
            },
            {
                "source": "hubspot",
                "step": "pull",
                "started_at": datetime(2026, 11, 1, tzinfo=UTC),
                "finished_at": None,
                "status": "ok",
                "counts": {},
                "error": None,
            },
            {
                "source": "mailchimp",
                "step": "push",
                "started_at": datetime(2026, 11, 1, tzinfo=UTC),
                "finished_at": None,
                "status": "ok",
                "counts": {"written": 7},
                "error": None,
            },
        ],
    )


@pytest.fixture(scope="module")
def page() -> str:
    """One rendering shared by the tests that only read it (matplotlib takes about a second)."""
    return render(_data())


def test_report_is_well_formed_offline_and_has_a_chart_in_every_chart_section(page):
    checker = check(page)
    assert list(checker.sections) == list(SECTIONS)
    for section in CHARTS:
        assert checker.sections[section] >= 1, section


def test_report_shows_figures_and_escapes_text(page):
    text = page
    assert "default &lt;&amp;&gt;" in text and "HTTP 500 &lt;boom&gt;" in text
    assert "A1: 100.0%" in text and "1 of 1" in text  # heatmap cell A1: 1 of 1 converted
    assert "failed" in text and "mailchimp" in text
    assert "pricing page &lt;twice&gt; &amp; a demo request" in text


def test_report_opens_with_whom_to_call_linked_to_their_platforms(page):
    text = page
    assert text.index('id="call"') < text.index('id="distributions"')
    assert '<a href="https://app.hubspot.com/contacts/42/record/0-1/101" rel="noreferrer">HubSpot</a>' in text
    assert "Mailchimp (no link)" in text and "set [sources.options] dc for mailchimp" in text
    assert "Ada Lovelace" in text and "ada<wbr>@example.com" in text  # may wrap before the @ only


def test_report_names_lifecycles_in_the_one_vocabulary(page):
    text = page
    for level in LIFECYCLE_LEVELS:
        assert f'<td class="l">{level}</td>' in text, level
    assert "At marketing_qualified_lead or above" in text
    assert "MQL" not in text


def test_chart_ids_are_unique_across_the_page(page):
    text = page
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    for reference in set(re.findall(r'(?:href="|url\()#([^")]+)', text)):
        assert reference in ids, reference


def test_report_without_a_backtest_still_has_every_section_and_says_why():
    text = render(_data(with_backtest=False))
    checker = check(text)
    assert list(checker.sections) == list(SECTIONS)
    assert "No backtest: the store holds no events" in text


def test_report_of_an_empty_store_says_what_to_do():
    empty = ReportData(generated_at=datetime(2026, 11, 2, tzinfo=UTC), model_name="default")
    text = render(empty)
    checker = check(text)
    assert list(checker.sections) == list(SECTIONS)
    assert "No scored persons yet" in text and "No sync runs recorded yet" in text


@pytest.mark.parametrize(
    ("values", "expected"), [([0, 9.9, 10, 100], [2, 1] + [0] * 7 + [1]), ([], [0] * 10)]
)
def test_histogram_puts_100_in_the_last_bin(values, expected):
    assert histogram(values) == expected


def test_emails_and_lifecycle_names_wrap_only_at_their_separators_and_stay_escaped():
    from leadsync.sync.report import _breakable

    assert str(_breakable("a_b@<x>")) == "a_<wbr>b<wbr>@&lt;x&gt;"


def test_sync_health_marks_each_outcome_and_counts_429s(page):
    assert "ok (2)" in page and "failed (1)" in page  # the runs' legend, one mark per run
    assert "429 answers per run" in page
    # the per-source table: hubspot's two pulls read 3 records and met 2 429s
    assert re.search(
        r"<td class=\"l\">hubspot</td><td>2</td>.*?<td>3</td><td>0</td><td>0</td><td>2</td>", page
    )


@pytest.mark.parametrize(
    ("run", "step", "records"),
    [
        ({"step": "push", "command": "sync", "counts": {"written": 4}}, "push", 4),
        ({"step": "score", "command": "score", "counts": {"persons_scored": 9}}, "score", 9),
        ({"step": "pull", "command": "pull", "counts": {"records_read": 12}}, "pull", 12),
        # rows recorded before run history had steps: the step in `command`, records per stream
        ({"step": "pull", "command": "push", "counts": {"written": 3}}, "push", 3),
        (
            {
                "step": "pull",
                "command": "pull",
                "counts": {"streams": {"a": {"records": 5}, "b": {"records": 2}}},
            },
            "pull",
            7,
        ),
    ],
)
def test_run_records_read_both_current_and_older_run_rows(run, step, records):
    from leadsync.sync.reportcharts import run_records, run_step

    assert (run_step(run), run_records(run)) == (step, records)
