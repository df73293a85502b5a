"""The tutorial runs: every ```python block of docs/tutorial.md, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks() -> list[str]:
    return BLOCK.findall(TUTORIAL.read_text(encoding="utf-8"))


def test_tutorial_has_code_for_every_section() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    sections = re.findall(r"^## \d+\. (.*)$", text, re.M)
    assert len(sections) >= 6
    assert len(_blocks()) >= 15


def test_tutorial_code_runs(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")  # the experiment at the end draws figures
    namespace: dict = {"__name__": "tutorial"}
    for i, code in enumerate(_blocks()):
        try:
            exec(compile(code, f"{TUTORIAL.name}, block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the failing block
            raise AssertionError(f"tutorial block {i + 1} failed:\n{code}") from exc
    out = capsys.readouterr().out
    assert "backprop by hand == autodiff" in out
