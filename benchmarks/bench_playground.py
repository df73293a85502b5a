"""Playground speed: training steps per second and frames per second of one session.

    python benchmarks/bench_playground.py

Two numbers for a 2-8-8-1 tanh network at batch size 10 on circle (250
training points): raw training (epochs back to back, no frames) and the
server's streaming loop (train ~20 ms, then build and JSON-encode one frame).
"""

from __future__ import annotations

import json
import time

from chainrule.playground.config import parse_config
from chainrule.playground.server import SLICE_S
from chainrule.playground.session import Session


def main(seconds: float = 5.0) -> None:
    cfg = parse_config({"hidden": [8, 8], "batch": 10})
    s = Session(cfg)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        s.train_epochs(10)
    raw = s.steps / (time.perf_counter() - start)
    s = Session(cfg)
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        s.train_epochs(budget_s=SLICE_S)
        json.dumps(s.frame())
        frames += 1
    elapsed = time.perf_counter() - start
    print(f"training alone: {raw:,.0f} steps/s")
    print(f"streaming loop: {s.steps / elapsed:,.0f} steps/s, {frames / elapsed:.1f} frames/s")


if __name__ == "__main__":
    main()
