"""Rich display in Jupyter: tensors, graphs, modules, histories, experiments, progress."""

import json
import shutil

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, symbolic
from chainrule.experiments import show
from chainrule.train import History
from chainrule.train.progress import Progress


def test_tensor_html_shows_shape_dtype_device_grad_and_a_compact_preview():
    t = cr.tensor(np.arange(10000.0).reshape(100, 100), requires_grad=True)
    h = t._repr_html_()
    for fact in ("shape (100, 100)", "dtype float64", "device cpu", "requires_grad=True"):
        assert fact in h
    assert "..." in h and len(h) < 1000  # a preview, not 10,000 numbers
    assert "grad_fn=mul" in (t * 2.0)._repr_html_()


def test_symbolic_values_keep_latex_and_show_no_tensor_card():
    x = symbolic.symbols("x")
    e = cr.sin(x) * x
    assert e._repr_html_() is None
    assert e._repr_latex_() == r"$\sin\left(x\right) \cdot x$"


def test_tape_listing_is_topological_and_shares_nodes():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.exp(x)
    z = (y * y + x).sum()
    lines = repr(cr.graph_of(z)).splitlines()
    assert lines == [
        "t0 = leaf : f64[2]",
        "t1 = exp(t0) : f64[2]",
        "t2 = mul(t1, t1) : f64[2]",
        "t3 = add(t2, t0) : f64[2]",
        "t4 = sum(t3) : f64[]",
    ]


def test_graph_svg_with_dot_and_text_without(monkeypatch):
    x = cr.tensor(2.0, requires_grad=True)
    view = cr.graph_of(cr.tanh(x) * x)
    g = symbolic.trace(lambda a: cr.sin(a) * a, np.ones(2))
    if shutil.which("dot"):
        assert view._repr_svg_().lstrip().startswith("<?xml")
        assert "<svg" in g._repr_svg_() and "tanh" in view._repr_svg_()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert view._repr_svg_() is None and g._repr_svg_() is None  # Jupyter shows the text
    assert "tanh(t0)" in repr(view) and "sin" in repr(symbolic.graph_of(g))
    with pytest.raises(TypeError, match="graph_of: expected a Tensor"):
        cr.graph_of([1, 2])


def test_module_html_table_lists_layers_shapes_and_counts():
    h = nn.MLP([4, 8, 3], rng=0)._repr_html_()
    assert "<td>layers.0</td>" in h and "W (8, 4), b (8,)" in h and "W (3, 8), b (3,)" in h
    assert "<b>67</b>" in h  # 4*8+8 + 8*3+3


def test_history_renders_an_inline_png():
    pytest.importorskip("matplotlib")
    h = History()
    assert h._repr_png_() is None
    for e in (1, 2, 3):
        h.append(
            epoch=e,
            loss=1 / e,
            accuracy=0.5 + e / 10,
            val_loss=1.2 / e,
            val_accuracy=0.4 + e / 10,
            lr=0.1,
            time=0.1,
        )
    assert h._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_experiment_result_shows_report_and_figures(tmp_path):
    (tmp_path / "report.md").write_text("# Claim\nThe claim held.")
    (tmp_path / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (tmp_path / "results.json").write_text(
        json.dumps({"experiment": "x", "figures": ["fig.png"], "claim_held": True})
    )
    res = show(tmp_path)
    assert res._repr_markdown_().startswith("# Claim")
    assert "The claim held." in res._repr_html_() and "data:image/png;base64," in res._repr_html_()
    with pytest.raises(FileNotFoundError, match="no results.json"):
        show(tmp_path / "missing")


def test_progress_draws_a_bar_in_a_notebook():
    pytest.importorskip("tqdm")
    kernel_stream = type("OutStream", (), {"__module__": "ipykernel.iostream", "write": None})
    assert Progress(True, 1, 1, stream=kernel_stream()).mode == "bar"
    assert Progress(True, 1, 1, stream=type("Plain", (), {})()).mode == "lines"
