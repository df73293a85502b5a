"""Audit of the playground page in a real browser (Playwright driving Debian's Chromium).

Skips when the ``playwright`` package or ``/usr/bin/chromium`` is missing, as
``test_browser.py`` does.
"""

from __future__ import annotations

import os

import pytest

import chainrule.playground.server as server_module

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
HIDE = """() => {
  Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.fixture
def context():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # one context: its tabs share the browser's 6 connections per server, as a user's do
        ctx = browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
        yield ctx
        ctx.close()
        browser.close()


def _open(ctx, url):
    page = ctx.new_page()
    page.goto(url, timeout=10000)
    page.wait_for_function("window.__pg.frame !== null", timeout=10000)
    return page


def test_seven_tabs_of_one_browser_all_work(context, server):
    # each tab's event stream held one of the browser's 6 connections to the server: with
    # 6 tabs open no tab could act (every POST queued) and a 7th page never loaded
    pages = []
    for _ in range(7):
        if pages:
            pages[-1].evaluate(HIDE)  # opening a tab hides the one before
        pages.append(_open(context, server.url))
    last = pages[-1]
    last.click("#step")
    last.wait_for_function("window.__pg.frame.epoch >= 1", timeout=10000)
    # the hidden sessions are kept (not reaped as closed tabs), and come back when shown
    server.reap()
    assert len(server.sessions) == 7
    first = pages[0]
    last.evaluate(HIDE)
    first.evaluate(SHOW)
    epoch = first.evaluate("window.__pg.frame.epoch")
    first.click("#step")
    first.wait_for_function(f"window.__pg.frame.epoch >= {epoch + 1}", timeout=10000)


def test_a_page_load_asks_for_nothing_it_is_refused(context, server, monkeypatch):
    # the browser asked for /favicon.ico, which has no token: a 403 in the console per load
    refused = []
    original = server_module.Handler._error

    def spy(self, status, message, field=None):
        if self.server is server:  # not a request to another test's server, still closing
            refused.append((int(status), self.path.split("?")[0], message))
        return original(self, status, message, field)

    monkeypatch.setattr(server_module.Handler, "_error", spy)
    page = _open(context, server.url)
    page.click("#step")
    page.wait_for_function("window.__pg.frame.epoch >= 1", timeout=10000)
    page.close()
    assert refused == []


def test_the_page_runs_under_its_own_csp_without_violations(server):
    # the other browser tests bypass the CSP (Playwright's waits evaluate strings); under the
    # real one the delta chart's legend, built with inline style attributes, was refused
    # (one console error per layer per frame) and drawn without its colours
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            console = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(str(e)))
            page.goto(server.url, timeout=10000)
            page.locator("#epoch").filter(has_text="000000").wait_for(timeout=10000)
            page.click("#step")
            legend = page.locator("#delta-values span")
            legend.first.wait_for(timeout=10000)
            assert legend.count() == 3
            colours = {legend.nth(i).evaluate("e => getComputedStyle(e).color") for i in range(3)}
            assert len(colours) == 3  # one colour per layer, as the chart's lines
            assert console == []
        finally:
            browser.close()
