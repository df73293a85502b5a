"""docs/tutorial.ipynb is generated from docs/tutorial.md, up to date, and runs without error."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
nbformat = pytest.importorskip("nbformat")


def _maker():
    spec = importlib.util.spec_from_file_location(
        "make_notebook", ROOT / "scripts" / "make_notebook.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_notebook_matches_the_tutorial():
    maker = _maker()
    expected = maker.render((ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8"))
    assert (ROOT / "docs" / "tutorial.ipynb").read_text(encoding="utf-8") == expected, (
        "docs/tutorial.ipynb is out of date: run python scripts/make_notebook.py"
    )
    nb = nbformat.reads(expected, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 15 and code[0].startswith("import numpy as np")


def test_notebook_executes_in_a_kernel_and_displays_rich_output(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(ROOT / "docs" / "tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    mimes = {m for o in outputs if o.output_type == "execute_result" for m in o.data}
    assert {"text/html", "image/png"} <= mimes  # the model's table, the history's curves
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "backprop by hand == autodiff" in text
