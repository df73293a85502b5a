"""Audit probes: behaviour that must equal scikit-learn's across calls, not only within one fit."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.preprocessing import StandardScaler

from chainrule import sklearn as cr
from sklearn import neural_network as sk


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def test_repeated_partial_fit_shuffles_as_scikit_learn(diabetes):
    # an int random_state restarts the stream on every call in scikit-learn: the
    # shuffling of the second and third epochs equals its own, so the losses do
    X, y = diabetes
    losses = {}
    for name, cls in (("chainrule", cr.MLPRegressor), ("sklearn", sk.MLPRegressor)):
        m = cls(hidden_layer_sizes=(16,), random_state=0)
        losses[name] = [m.partial_fit(X, y).loss_ for _ in range(3)]
    np.testing.assert_allclose(losses["chainrule"], losses["sklearn"], rtol=1e-6)


def test_warm_start_with_early_stopping_holds_out_the_same_rows_as_scikit_learn():
    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16
    y = y[:600]
    runs = {}
    for name, cls in (("chainrule", cr.MLPClassifier), ("sklearn", sk.MLPClassifier)):
        # sgd: its updates equal scikit-learn's to rounding (Adam's epsilon sits elsewhere)
        m = cls(
            (16,),
            solver="sgd",
            learning_rate_init=0.1,
            max_iter=8,
            early_stopping=True,
            warm_start=True,
            random_state=1,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(X, y).fit(X, y)
        runs[name] = m.validation_scores_
    assert len(runs["chainrule"]) == len(runs["sklearn"]) == 16
    np.testing.assert_allclose(runs["chainrule"], runs["sklearn"], atol=1e-12)


def test_a_one_column_target_is_raveled_as_scikit_learn(diabetes):
    X, y = diabetes
    preds = {}
    for name, cls in (("chainrule", cr.MLPRegressor), ("sklearn", sk.MLPRegressor)):
        m = cls(hidden_layer_sizes=(8,), solver="sgd", max_iter=3, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with pytest.warns(DataConversionWarning):
                m.fit(X, y[:, None])
        preds[name] = m.predict(X[:5])
    assert preds["chainrule"].shape == preds["sklearn"].shape == (5,)
    np.testing.assert_allclose(preds["chainrule"], preds["sklearn"], rtol=1e-6)
