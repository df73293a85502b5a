"""The tutorial runs: every ```python block of docs/tutorial.md, in order, in one namespace."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from chainrule.experiments import names

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
    # the chapter's loop, then train.fit with the matching options, by both backends
    assert "train.fit (tape) vs the loop" in out and "train.fit (textbook) vs the loop" in out


# ---- the figures: docs/figures/<experiment>.png, made by scripts/make_figures.py

DOCS = TUTORIAL.parent
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _make_figures():
    spec = importlib.util.spec_from_file_location(
        "make_figures", DOCS.parent / "scripts" / "make_figures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_image_the_tutorial_references_exists() -> None:
    images = IMAGE.findall(TUTORIAL.read_text(encoding="utf-8"))
    assert images, "the tutorial shows no figure"
    missing = [src for src in images if not (DOCS / src).is_file()]
    assert not missing, f"images referenced by docs/tutorial.md but missing: {missing}"
    for src in images:
        assert (DOCS / src).read_bytes()[:8] == PNG_MAGIC, f"{src} is not a PNG"


def test_the_tutorial_shows_every_experiment_key_figure_and_nothing_stale() -> None:
    maker = _make_figures()
    assert set(maker.FIGURES) == set(names())  # every registered experiment has a key figure
    images = set(IMAGE.findall(TUTORIAL.read_text(encoding="utf-8")))
    for name in maker.FIGURES:
        assert f"figures/{name}.png" in images, f"the tutorial does not show {name}'s figure"
    checked_in = {p.name for p in (DOCS / "figures").iterdir()}
    assert checked_in == {f"{name}.png" for name in maker.FIGURES}


def test_make_figures_fails_loudly_when_a_listed_figure_is_missing(tmp_path: Path) -> None:
    maker = _make_figures()
    (tmp_path / "other.png").write_bytes(PNG_MAGIC)
    with pytest.raises(maker.FigureError, match=r"'nonconvex'.*'loss_surface.png'.*other\.png"):
        maker.key_figure("nonconvex", tmp_path)
    with pytest.raises(maker.FigureError, match="no key figure in FIGURES"):
        maker.key_figure("not-an-experiment", tmp_path)
    (tmp_path / maker.FIGURES["nonconvex"]).write_bytes(PNG_MAGIC)
    assert maker.key_figure("nonconvex", tmp_path) == tmp_path / "loss_surface.png"


def test_make_figures_runs_an_experiment_and_copies_its_key_figure(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    maker = _make_figures()
    written = maker.make_figures(["three-ways"], target=tmp_path)
    assert written == [tmp_path / "three-ways.png"]
    assert written[0].read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(maker.FigureError, match="unknown experiments"):
        maker.make_figures(["no-such-experiment"], target=tmp_path)
