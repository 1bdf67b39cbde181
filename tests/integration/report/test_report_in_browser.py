"""`leadsync report` of the demo world, opened in headless Chromium (issue 24, acceptance 4).

The demo world is built as `leadsync demo` builds it (the same command, rate limits off for speed);
the report is written by the CLI and opened from its file. From the DOM's boxes: no text box overlaps
another, every label lies inside its chart (SVG text) or its container (HTML text) and the page does
not scroll sideways; the page makes no request beyond its own file; "call these first" is exactly
`leadsync leads -n 25`.

Chromium is the Debian package (`apt-get install chromium fonts-dejavu-core`), launched through
Playwright's ``executable_path`` (Playwright's own browser download is not needed). Without it the
test skips and says why, unless LEADSYNC_REQUIRE_BROWSER=1 (as .ci/run sets), when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import forkcli

ROOT = Path(__file__).resolve().parents[3]
CALL_FIRST = 25
TOLERANCE = 0.5  # px: boxes that share less than this in both directions only touch


def _chromium() -> str:
    """The Chromium to launch, or skip (fail when LEADSYNC_REQUIRE_BROWSER=1) saying why there is none."""
    reason = None
    path = os.environ.get("LEADSYNC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the Python package playwright is not installed (make install installs the dev extras)"
    else:
        if not Path(path).is_file():
            reason = f"no Chromium at {path}: apt-get install chromium fonts-dejavu-core (or set LEADSYNC_CHROMIUM)"
    if reason is None:
        return path
    if os.environ.get("LEADSYNC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; LEADSYNC_REQUIRE_BROWSER=1 requires the browser check")
    pytest.skip(reason)


def leadsync(*args: str) -> subprocess.CompletedProcess[str]:
    return forkcli.run(
        [sys.executable, "-m", "leadsync", *args], capture_output=True, text=True, timeout=600, cwd=ROOT
    )


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], str]:
    """The demo world's report, `leads -n 25` of its store, and the Chromium to open it with."""
    chromium = _chromium()  # skip before the minute of building the world
    folder = tmp_path_factory.mktemp("demo")
    built = leadsync("demo", "--dir", str(folder), "--rate-limits", "off")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    config = str(folder / "leadsync.toml")
    report = folder / "report.html"
    done = leadsync("--config", config, "report", "--out", str(report))
    assert done.returncode == 0, done.stderr
    ranked = leadsync("--config", config, "leads", "-n", str(CALL_FIRST), "--json")
    assert ranked.returncode == 0, ranked.stderr
    return report, json.loads(ranked.stdout), chromium


# Every text box on the page: SVG <text> with its <svg> as container, HTML text nodes (one box per
# line) with their nearest block as container.
BOXES_JS = """
() => {
  const box = (r) => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom});
  const out = [];
  for (const t of document.querySelectorAll('svg text')) {
    if (!t.textContent.trim()) continue;
    const svg = t.ownerSVGElement;
    out.push({text: t.textContent.trim(), kind: 'svg', where: t.closest('section')?.id ?? '',
              box: box(t.getBoundingClientRect()), container: box(svg.getBoundingClientRect())});
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    if (!node.textContent.trim() || parent.closest('svg')) continue;
    const block = parent.closest('td, th, p, h1, h2, div, section, body');
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width === 0 || r.height === 0) continue;
      out.push({text: node.textContent.trim().slice(0, 60), kind: 'html', where: parent.closest('section')?.id ?? '',
                box: box(r), container: box(block.getBoundingClientRect())});
    }
  }
  return {boxes: out,
          scrollWidth: document.documentElement.scrollWidth,
          clientWidth: document.documentElement.clientWidth,
          scripts: document.scripts.length,
          resources: performance.getEntriesByType('resource').map(e => e.name),
          leads: [...document.querySelectorAll('#call tr.lead')].map(tr => ({
              rank: tr.cells[0].textContent.trim(), email: tr.dataset.email,
              grade: tr.querySelector('.grade').textContent.trim(),
              links: [...tr.querySelectorAll('a')].map(a => a.href)}))};
}
"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > TOLERANCE
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > TOLERANCE
    )


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["left"] >= outer["left"] - TOLERANCE
        and inner["top"] >= outer["top"] - TOLERANCE
        and inner["right"] <= outer["right"] + TOLERANCE
        and inner["bottom"] <= outer["bottom"] + TOLERANCE
    )


def _open(report: Path, chromium: str, width: int) -> tuple[dict[str, Any], list[str]]:
    """The page's boxes at a viewport ``width``, and every request it made besides its own file."""
    from playwright.sync_api import sync_playwright

    url = report.resolve().as_uri()
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            # Anything but the report itself is refused, so a stray reference cannot reach out.
            page.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
            page.goto(url, wait_until="load")
            page.evaluate("document.fonts.ready")
            found = page.evaluate(BOXES_JS)
        finally:
            browser.close()
    return found, [r for r in requests if r != url]


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 820])
def test_report_text_neither_overlaps_nor_is_cut_off_and_the_page_loads_nothing(demo_report, width):
    report, _, chromium = demo_report
    found, requests = _open(report, chromium, width)
    assert requests == [], f"the report made network requests: {requests[:5]}"
    assert found["resources"] == [] and found["scripts"] == 0
    boxes = found["boxes"]
    assert sum(b["kind"] == "svg" for b in boxes) > 150  # the charts' labels are text, measured here
    assert {b["where"] for b in boxes if b["kind"] == "svg"} >= {
        "distributions",
        "heatmap",
        "lift",
        "funnel",
        "health",
    }
    assert found["scrollWidth"] <= found["clientWidth"], "the page scrolls sideways: something is cut off"
    clipped = [(b["where"], b["text"]) for b in boxes if not _inside(b["box"], b["container"])]
    assert clipped == [], f"text outside its chart or container: {clipped[:10]}"
    overlapping = [
        (a["where"], a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if _overlap(a["box"], b["box"])
    ]
    assert overlapping == [], f"overlapping text: {overlapping[:10]}"


@pytest.mark.slow
def test_call_these_first_is_leads_n_25_with_a_link_to_each_contact(demo_report):
    report, ranked, chromium = demo_report
    found, _ = _open(report, chromium, 1280)
    shown = found["leads"]
    assert len(ranked) == CALL_FIRST
    assert [row["email"] for row in shown] == [row["email"] for row in ranked]
    assert [row["grade"] for row in shown] == [row["grade"] for row in ranked]
    assert [row["rank"] for row in shown] == [str(i) for i in range(1, CALL_FIRST + 1)]
    patterns = (
        "https://app.hubspot.com/contacts/",
        "https://us6.admin.mailchimp.com/lists/members/view?id=",
        "https://sandbox.activehosted.com/app/contacts/",
    )
    for row in shown:
        assert row["links"], f"{row['email']} has no link to its platform"
        assert all(link.startswith(patterns) for link in row["links"]), row["links"]
