"""Playground speed: training steps per second and frames per second of one session.

    python benchmarks/bench_playground.py [--browser]

Two numbers for a 2-8-8-1 tanh network at batch size 10 on circle (250
training points): raw training (epochs back to back, no frames) and the
server's streaming loop (train, then build and JSON-encode one frame, 40 a second).
With ``--browser`` (needs playwright and /usr/bin/chromium), also the frames
per second that a page in headless Chromium receives and draws while training.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from chainrule.playground.config import parse_config
from chainrule.playground.server import make_server, training_slice
from chainrule.playground.session import Session


def main(seconds: float = 5.0) -> None:
    cfg = parse_config({"hidden": [8, 8], "batch": 10})
    s = Session(cfg)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        s.train_epochs(10)
    raw = s.steps / (time.perf_counter() - start)
    s = Session(cfg)
    frames, cost, start = 0, 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        s.train_epochs(budget_s=training_slice(cost))
        t0 = time.perf_counter()
        json.dumps(s.frame())
        cost = time.perf_counter() - t0
        frames += 1
    elapsed = time.perf_counter() - start
    print(f"training alone: {raw:,.0f} steps/s")
    print(f"streaming loop: {s.steps / elapsed:,.0f} steps/s, {frames / elapsed:.1f} frames/s")


def browser_fps(seconds: float = 5.0) -> None:
    from playwright.sync_api import sync_playwright

    srv = make_server()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page(bypass_csp=True)
            page.goto(srv.url + "#hidden=8,8")
            page.wait_for_function("window.__pg.frame !== null")
            page.click("#play")
            page.wait_for_timeout(1000)
            f0, s0 = page.evaluate("[window.__pg.frames, window.__pg.frame.steps]")
            page.wait_for_timeout(seconds * 1000)
            f1, s1 = page.evaluate("[window.__pg.frames, window.__pg.frame.steps]")
            browser.close()
        fps, steps = (f1 - f0) / seconds, (s1 - s0) / seconds
        print(f"in the browser: {fps:.1f} frames/s, {steps:,.0f} steps/s")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
    if "--browser" in sys.argv:
        browser_fps()
