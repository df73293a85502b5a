"""Parity with scikit-learn's MLPs: same objective, defaults and stopping rules give the same
scores (mean over 3 splits x 4 seeds, within 0.01)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from chainrule import sklearn as cr
from sklearn import datasets
from sklearn import neural_network as sk


def _regression(name):
    if name == "diabetes":
        return datasets.load_diabetes(return_X_y=True)
    if name == "make_regression":
        return datasets.make_regression(
            n_samples=300, n_features=10, n_informative=5, noise=20.0, random_state=0
        )
    return datasets.make_friedman1(n_samples=300, noise=1.0, random_state=0)


def _classification(name):
    if name == "make_classification":
        return datasets.make_classification(
            n_samples=400, n_features=20, n_informative=8, n_classes=3, random_state=0
        )
    return getattr(datasets, f"load_{name}")(return_X_y=True)


def _mean_scores(X, y, estimator, regression, **kw):
    """Mean test score of chainrule's and scikit-learn's estimator over 3 splits x 4 seeds."""
    scores = {"chainrule": [], "sklearn": []}
    for split in range(3):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=split)
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        if regression:
            mu, sd = ytr.mean(), ytr.std()
            ytr, yte = (ytr - mu) / sd, (yte - mu) / sd
        for seed in range(4):
            for lib, module in (("chainrule", cr), ("sklearn", sk)):
                est = getattr(module, estimator)(random_state=seed, **kw)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    scores[lib].append(est.fit(Xtr, ytr).score(Xte, yte))
    return np.mean(scores["chainrule"]), np.mean(scores["sklearn"])


@pytest.mark.parametrize(
    "name, early_stopping",
    [("diabetes", False), ("diabetes", True), ("make_regression", False), ("friedman1", False)],
)
def test_regressor_r2_matches_sklearn(name, early_stopping):
    X, y = _regression(name)
    ours, theirs = _mean_scores(
        X,
        y,
        "MLPRegressor",
        True,
        hidden_layer_sizes=(32,),
        alpha=1e-2,
        max_iter=200,
        early_stopping=early_stopping,
    )
    assert ours >= theirs - 0.01, (name, ours, theirs)


@pytest.mark.parametrize(
    "name, max_iter",
    [("digits", 40), ("breast_cancer", 100), ("wine", 200), ("make_classification", 150)],
)
def test_classifier_accuracy_matches_sklearn(name, max_iter):
    X, y = _classification(name)
    ours, theirs = _mean_scores(
        X, y, "MLPClassifier", False, hidden_layer_sizes=(32,), alpha=1e-2, max_iter=max_iter
    )
    assert ours >= theirs - 0.01, (name, ours, theirs)


def test_regressor_objective_and_attributes_are_sklearns():
    # the same initial weights, batches and objective: plain SGD follows scikit-learn step by step
    X, y = datasets.load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    kw = dict(
        hidden_layer_sizes=(8,), alpha=1.0, max_iter=3, solver="sgd", momentum=0.0, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = cr.MLPRegressor(**kw).fit(X, y), sk.MLPRegressor(**kw).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for attr in (
        "loss_",
        "best_loss_",
        "n_iter_",
        "t_",
        "n_outputs_",
        "out_activation_",
        "n_layers_",
        "n_features_in_",
        "validation_scores_",
        "best_validation_score_",
    ):
        assert getattr(ours, attr) == pytest.approx(getattr(theirs, attr)), attr


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_early_stopping_attributes_are_sklearns(estimator):
    X, y = datasets.load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kw = dict(hidden_layer_sizes=(8,), early_stopping=True, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = getattr(cr, estimator)(**kw).fit(X, y)
        theirs = getattr(sk, estimator)(**kw).fit(X, y)
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    assert ours.n_iter_ == theirs.n_iter_
    # same split, initial weights and batches; Adam's epsilon sits in a slightly different
    # place in scikit-learn's update, hence agreement to 1e-5 rather than to rounding
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-5)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-5)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        ours.partial_fit(X, y)


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_sgd_learning_rate_schedules_follow_sklearn(schedule):
    X, y = datasets.load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kw = dict(
        hidden_layer_sizes=(8,),
        solver="sgd",
        momentum=0.0,
        learning_rate=schedule,
        learning_rate_init=0.05,
        n_iter_no_change=2,
        tol=1e-2,
        max_iter=60,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = cr.MLPClassifier(**kw).fit(X, y), sk.MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-8)
    assert ours._optimizer.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    assert ours._optimizer.lr < kw["learning_rate_init"] / 10  # the schedule did act
