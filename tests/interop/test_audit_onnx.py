"""Audit of nn.export_onnx: arguments that produced a broken graph or an unclear error."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn

pytest.importorskip("onnx")


@pytest.mark.parametrize(
    ("mean", "std"),
    [([0.0, 0.0, 0.0], [1.0, 0.0, 1.0]), ([0.0, np.nan, 0.0], [1.0, 1.0, 1.0]),
     ([0.0, 0.0, 0.0], [1.0, -2.0, np.inf])],
)  # fmt: skip
def test_a_standardisation_that_divides_by_zero_or_nan_is_refused(tmp_path, mean, std):
    # std 0 was written into the graph: every output of that feature became inf/NaN
    m = nn.MLP([3, 4, 2], rng=0)
    with pytest.raises(ValueError, match="std finite and > 0"):
        nn.export_onnx(m, tmp_path / "m.onnx", (None, 3), mean=mean, std=std)
    assert not (tmp_path / "m.onnx").exists()


def test_a_module_that_is_not_an_mlp_is_named(tmp_path):
    # was: AttributeError "'Linear' object has no attribute 'layer_sizes'"
    with pytest.raises(TypeError, match="expected an nn.MLP, got Linear"):
        nn.export_onnx(nn.Linear(3, 2, rng=0), tmp_path / "m.onnx", (None, 3))
