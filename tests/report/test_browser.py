"""The report page in a real browser: Debian's headless Chromium, driven through the DevTools
protocol by playwright, opens index.html from disk. Every image must load, the console must
stay free of errors and the page must not touch the network."""

import os
import shutil
from pathlib import Path

import pytest

from optbench.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not CHROMIUM.exists():
        missing = (f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y "
                   "chromium; .ci/run does)")
        if os.environ.get("CI"):  # in CI the browser test must run, not skip
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def test_report_opens_offline_with_every_image(browser, surface_results, tmp_path):
    index = write_report(shutil.copytree(surface_results, tmp_path / "r"), workers=1)
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(index.as_uri(), wait_until="load")
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.src, i.naturalWidth])")
    page.screenshot(path=str(index.parent / "screenshot.png"), full_page=True)
    page.close()
    assert len(widths) >= 7 and all(width > 0 for _, width in widths), widths
    assert errors == []
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert (index.parent / "screenshot.png").stat().st_size > 10_000
