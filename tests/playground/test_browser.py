"""The playground page in a real browser: Playwright driving Debian's Chromium.

Skips when the ``playwright`` package or ``/usr/bin/chromium`` is missing
(``.ci/run`` installs both; Playwright's own browser download is never used).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chainrule.cli import main

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def open_page(browser, server):
    """Open the page (optionally with a URL hash); records every request it makes."""
    pages, requests = [], []

    def open_(hash_: str = ""):
        # bypass_csp lets Playwright evaluate its wait conditions; the page runs under the CSP
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + hash_)
        page.wait_for_function("window.__pg.frame !== null", timeout=15000)
        pages.append(page)
        return page

    open_.requests = requests
    yield open_
    for page in pages:
        page.close()
    origin = f"http://127.0.0.1:{server.port}/"
    assert requests and all(u.startswith(origin) for u in requests), "a request left the server"


def output_pixels(page) -> str:
    return page.evaluate("document.getElementById('output').toDataURL()")


def test_circle_learns_and_the_surface_changes(open_page):
    page = open_page()
    before = output_pixels(page)
    page.click("#play")
    page.wait_for_function("window.__pg.frame.test_loss < 0.1", timeout=30000)
    page.click("#play")
    page.wait_for_function("window.__pg.frame.playing === false")
    assert page.evaluate("window.__pg.frame.epoch") > 0
    assert output_pixels(page) != before
    # the delta chart holds one value per layer (2 hidden + output)
    assert page.locator("#delta-values span").count() == 3


def test_spiral_with_two_layers_of_eight_tanh(open_page):
    # SGD at 0.03 stalls near 0.3 on spiral; Adam at 0.01 passes 0.3 in ~6,500 steps
    page = open_page("#dataset=spiral&hidden=8,8&activation=tanh&optimizer=adam&lr=0.01")
    assert page.evaluate("window.__pg.frame.sizes") == [2, 8, 8, 1]
    page.click("#play")
    page.wait_for_function("window.__pg.frame.test_loss < 0.3", timeout=90000)
    page.click("#play")


def test_surface_changes_between_step_0_and_step_100(open_page):
    page = open_page("#dataset=xor&hidden=4")
    step0 = output_pixels(page)
    page.evaluate(
        "fetch('/api/action?token=' + document.querySelector('meta[name=token]').content,"
        "{method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({sid: window.__pg.sid, action: 'step', epochs: 100})})"
    )
    page.wait_for_function("window.__pg.frame.epoch === 100")
    page.wait_for_timeout(100)
    assert output_pixels(page) != step0


def test_add_layer_gradcheck_export_and_url(open_page, server):
    page = open_page(
        "#dataset=gauss&hidden=3&activation=relu&lr=0.1&features=x1,x2,x1*x2&showTest=true"
    )
    assert page.input_value("#lr") == "0.1" and page.input_value("#activation") == "relu"
    assert page.is_checked("#show-test")
    page.click("#add-layer")
    page.wait_for_function("window.__pg.frame.sizes.length === 4")
    assert page.evaluate("window.__pg.frame.sizes") == [3, 3, 2, 1]
    assert "hidden=3%2C2" in page.evaluate("location.hash")
    # the link reproduces the setup in another tab
    other = open_page(page.evaluate("location.hash"))
    assert other.evaluate("window.__pg.cfg") == page.evaluate("window.__pg.cfg")
    page.click("#step")
    page.click("#gradcheck")
    page.wait_for_selector("#gradcheck-result b.rel")
    assert float(page.text_content("#gradcheck-result b.rel")) < 1e-6
    page.fill("#export-name", "browser-run")
    page.click("#export")
    page.wait_for_selector("#export-result:has-text('written')")
    run = Path(server.export_dir) / "browser-run"
    assert main(["evaluate", str(run)]) == 0


def test_bad_fields_are_refused_in_the_page(open_page):
    page = open_page()
    for field, value in (
        ("#lr", "abc"),
        ("#lr", "0"),
        ("#batch", "1000"),
        ("#batch", "0"),
        ("#reg_rate", "-1"),
    ):
        page.fill(field, value)
        page.dispatch_event(field, "change")
        assert page.text_content(field + "-err"), (field, value)
        assert (
            page.evaluate("window.__pg.cfg.lr") == 0.03
            and page.evaluate("window.__pg.cfg.batch") == 10
        )
        page.fill(field, {"#lr": "0.03", "#batch": "10", "#reg_rate": "0"}[field])
        with page.expect_response(lambda r: "/api/action" in r.url):  # the good value is sent
            page.dispatch_event(field, "change")


def test_two_pages_train_independently(open_page):
    a, b = open_page(), open_page("#dataset=xor")
    a.click("#play")
    a.wait_for_function("window.__pg.frame.epoch > 30", timeout=30000)
    a.click("#play")
    assert b.evaluate("window.__pg.frame.epoch") == 0
    assert (
        b.evaluate("window.__pg.cfg.dataset") == "xor"
        and a.evaluate("window.__pg.cfg.dataset") == "circle"
    )
