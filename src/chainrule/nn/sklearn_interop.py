"""Build a chainrule :class:`~chainrule.nn.MLP` from a fitted scikit-learn MLP."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn.mlp import MLP
from chainrule.nn.state_dict import torch_names

# scikit-learn's out_activation_ -> the MLP's output kind
_OUTPUTS = {"softmax": "softmax", "logistic": "logistic", "identity": "linear"}


def from_sklearn(estimator: Any, dtype: Any = np.float64) -> MLP:
    """An :class:`MLP` with the weights of a fitted ``MLPClassifier``/``MLPRegressor``.

    scikit-learn stores ``coefs_[l]`` as (n_in, n_out); the MLP's ``W`` is its
    transpose (out, in). The hidden activation and the output kind
    (``out_activation_``) carry over, so ``predict_proba`` agrees to rounding;
    for a binary classifier (one logistic output) the MLP gives the one column
    ``p`` of the positive class where scikit-learn gives ``(1 - p, p)``, and
    ``predict`` gives class indices, not ``classes_``.
    chainrule's own estimators (:mod:`chainrule.sklearn`) expose the same
    attributes and are accepted too.

    Parameters
    ----------
    estimator : fitted sklearn.neural_network.MLPClassifier or MLPRegressor
    dtype : dtype
        Parameter dtype of the result (float64 keeps scikit-learn's values exactly).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPClassifier
    >>> from chainrule.nn import from_sklearn
    >>> X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 3
    >>> clf = MLPClassifier((5,), max_iter=20, random_state=0).fit(X, y)
    >>> bool(np.allclose(from_sklearn(clf).predict_proba(X), clf.predict_proba(X)))
    True
    """
    missing = [a for a in ("coefs_", "intercepts_", "out_activation_") if not hasattr(estimator, a)]
    if missing:
        raise ValueError(
            f"from_sklearn: {type(estimator).__name__} has no {', '.join(missing)}; pass a fitted "
            "sklearn.neural_network.MLPClassifier or MLPRegressor (call fit first)"
        )
    coefs = [np.asarray(c) for c in estimator.coefs_]
    intercepts = [np.asarray(b) for b in estimator.intercepts_]
    if len(coefs) != len(intercepts) or not coefs:
        raise ValueError(
            f"from_sklearn: {len(coefs)} weight matrices but {len(intercepts)} bias vectors"
        )
    sizes = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        if c.ndim != 2 or c.shape[0] != sizes[i] or b.shape != (c.shape[1],):
            raise ValueError(
                f"from_sklearn: layer {i}: coefs_ shape {c.shape} and intercepts_ shape "
                f"{b.shape} do not chain from {sizes[i]} inputs"
            )
    out_act = estimator.out_activation_
    if out_act not in _OUTPUTS:
        raise ValueError(
            f"from_sklearn: output activation {out_act!r} is not one of {sorted(_OUTPUTS)}"
        )
    model = MLP(
        sizes,
        activation=getattr(estimator, "activation", "relu"),
        output=_OUTPUTS[out_act],
        dtype=dtype,
        rng=0,
    )
    values = [a for c, b in zip(coefs, intercepts) for a in (c.T, b)]  # torch_names' order
    model.load_state_dict(
        {
            name: np.ascontiguousarray(v, dtype=dtype)
            for (name, _, _), v in zip(torch_names(len(coefs)), values)
        }
    )
    return model
