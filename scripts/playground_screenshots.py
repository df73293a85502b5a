"""Screenshots of the playground's main views into docs/ (needs playwright and /usr/bin/chromium).

    python scripts/playground_screenshots.py [OUT_DIR]

Starts a server on a free port, opens the page in headless Chromium, trains
spiral (2 hidden layers of 8 tanh, Adam at 0.01) until the test loss is below 0.3, runs the
gradient check and one-sample backprop, and saves ``playground-spiral.jpg``;
then 6 logistic layers for ``playground-vanishing.jpg``.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

from chainrule.playground.server import make_server

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    srv = make_server("127.0.0.1", 0, export_dir=tempfile.mkdtemp())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
            page.goto(
                srv.url
                + "#dataset=spiral&hidden=8,8&activation=tanh&optimizer=adam&lr=0.01&showTest=true"
            )
            page.wait_for_function("window.__pg.frame !== null")
            page.click("#play")
            page.wait_for_function(
                "window.__pg.frame && window.__pg.frame.test_loss < 0.3", timeout=120000
            )
            page.click("#play")
            page.click("#gradcheck")
            page.wait_for_selector("#gradcheck-result b")
            page.click("#output", position={"x": 200, "y": 200})
            page.wait_for_selector("#backprop-result table")
            page.screenshot(path=str(out / "playground-spiral.jpg"), full_page=True, quality=60)
            page.goto(srv.url + "#dataset=circle&hidden=8,8,8,8,8,8&activation=logistic")
            page.wait_for_function("window.__pg.frame !== null")
            page.click("#play")
            page.wait_for_function("window.__pg.deltas.length > 40", timeout=60000)
            page.click("#play")
            page.screenshot(path=str(out / "playground-vanishing.jpg"), full_page=True, quality=60)
            browser.close()
    finally:
        srv.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
