"""The README's Python examples run, in order, in one namespace: the front page cannot go stale."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5, "the README lost its examples"
    monkeypatch.chdir(tmp_path)  # examples may write files (a rendered graph)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as e:  # name the block, so a failure says which example broke
            raise AssertionError(f"README python block {i} failed: {e!r}\n{block}") from e
    # render() draws an SVG with Graphviz, or writes the DOT text as graph.dot without it
    drawn = tmp_path / ("graph.svg" if shutil.which("dot") else "graph.dot")
    assert drawn.exists() and drawn.stat().st_size > 0
