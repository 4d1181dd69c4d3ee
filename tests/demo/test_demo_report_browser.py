"""The report in a real headless browser (Debian's chromium, as .ci/run installs it): the metrics table
is there and both plots are rendered, with the network unused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_testing import CHROMIUM_FLAGS, JobsRun, chromium, report_from
from playwright.sync_api import Browser, Page, Request, sync_playwright

from pipelines.local.home import LocalHome
from rookery.demo.firehose import Delivery
from rookery.demo.report import write_report

pytestmark = pytest.mark.xdist_group("demo-ingest")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        pytest.fail(
            "no chromium browser found (looked for `chromium` on PATH and /usr/bin/chromium). The report's "
            "browser test needs Debian's chromium: .ci/run installs it; locally run "
            "`sudo apt-get install -y chromium`"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()


def open_report(browser: Browser, path: Path) -> tuple[Page, list[str]]:
    """The report loaded from disk; the second value lists every request that left the file."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def note(request: Request) -> None:
        if not request.url.startswith(("file://", "data:")):
            outside.append(request.url)

    page.on("request", note)
    page.goto(path.as_uri(), wait_until="load")
    return page, outside


def assert_report_renders(browser: Browser, path: Path, *, auc: float) -> None:
    page, outside = open_report(browser, path)
    try:
        metrics = page.locator("table#metrics")
        assert metrics.is_visible()
        text = metrics.inner_text()
        for label in ("Accuracy", "Precision", "Recall (sensitivity)", "Specificity", "F1", "ROC AUC"):
            assert label in text
        assert page.locator('tr[data-metric="auc"] td').nth(1).inner_text() == f"{auc:.4f}"

        plots = page.locator("img.plot")
        assert plots.count() == 2
        for i in range(2):
            plot = plots.nth(i)
            plot.scroll_into_view_if_needed()
            assert plot.is_visible()
            assert plot.evaluate("img => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0")
            box = plot.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 150
        # Side by side on a desktop-width window.
        first, second = plots.nth(0).bounding_box(), plots.nth(1).bounding_box()
        assert first is not None and second is not None and abs(first["y"] - second["y"]) < 5
        assert first["x"] < second["x"]
        assert outside == [], f"the report loaded assets from outside the file: {outside}"
    finally:
        page.close()


def test_the_report_renders_in_chromium_with_metrics_and_both_plots(
    browser: Browser, tmp_path: Path, jobs: JobsRun, delivered: tuple[LocalHome, Delivery]
) -> None:
    path = write_report(report_from(jobs, delivered[1]), tmp_path / "report.html")

    assert_report_renders(browser, path, auc=jobs.evaluation["binary_classification_metrics"]["auc"]["value"])
