"""fit refuses NaN and infinite inputs given as arrays, naming the array, row and column."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn
from chainrule.data import DataError
from chainrule.train import fit


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (0, r"fit: X_train: NaN at row 2, column 1"),
        (1, r"fit: y_train: inf at row 4, column 0"),
        (2, r"fit: X_val: -inf at row 0, column 0"),
    ],
)
def test_fit_names_the_first_non_finite_value(part: int, message: str) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    Xv, yv = rng.normal(size=(3, 2)), rng.normal(size=(3, 1))
    parts = [X, y, Xv, yv]
    bad = parts[part].copy()
    bad[(2, 1) if part == 0 else (4, 0) if part == 1 else (0, 0)] = [np.nan, np.inf, -np.inf][part]
    parts[part] = bad
    model = nn.MLP([2, 3, 1], output="linear", rng=0)
    before = [p.numpy().copy() for p in model.parameters()]
    with pytest.raises(DataError, match=message):
        fit(model, tuple(parts), epochs=1, progress=False)
    for p, b in zip(model.parameters(), before, strict=True):  # nothing was trained
        np.testing.assert_array_equal(p.numpy(), b)
