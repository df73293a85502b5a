"""MLPClassifier / MLPRegressor behaviour beyond scikit-learn's generic checks."""

import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from chainrule.sklearn import MLPClassifier, MLPRegressor
from sklearn import neural_network

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    return Xtr, Xte, ytr, yte


def test_digits_accuracy_and_sklearn_attributes(digits):
    Xtr, Xte, ytr, yte = digits
    clf = MLPClassifier((64,), max_iter=100, random_state=0).fit(Xtr, ytr)
    # scikit-learn's initialisation: the score of scikit-learn's own MLPClassifier (0.969)
    theirs = neural_network.MLPClassifier((64,), max_iter=100, random_state=0).fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= max(0.96, theirs.score(Xte, yte) - 0.005)
    assert [c.shape for c in clf.coefs_] == [(64, 64), (64, 10)]
    assert [b.shape for b in clf.intercepts_] == [(64,), (10,)]
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 10 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 64 and clf.n_iter_ == len(clf.loss_curve_) <= 100
    assert clf.t_ == clf.n_iter_ * len(Xtr)
    p = clf.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert (clf.classes_[p.argmax(axis=1)] == clf.predict(Xte)).all()


def test_binary_string_labels_use_one_logistic_unit():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    labels = np.array(["benign", "malignant"])[y]
    clf = MLPClassifier((32,), max_iter=200, random_state=0).fit(X, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert set(clf.predict(X)) <= {"benign", "malignant"} and clf.score(X, labels) > 0.97
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_same_random_state_same_model_and_textbook_backend_agrees(digits):
    Xtr, _, ytr, _ = digits
    kw = dict(
        hidden_layer_sizes=(8,),
        activation="tanh",
        max_iter=3,
        random_state=1,
        solver="sgd",
        alpha=1e-3,
    )
    a = MLPClassifier(**kw).fit(Xtr, ytr)
    b = MLPClassifier(**kw).fit(Xtr, ytr)
    c = MLPClassifier(backend="textbook", **kw).fit(Xtr, ytr)
    for wa, wb, wc in zip(a.coefs_, b.coefs_, c.coefs_, strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_allclose(wa, wc, rtol=1e-9, atol=1e-12)


def test_partial_fit_needs_classes_then_continues(digits):
    Xtr, Xte, ytr, yte = digits
    clf = MLPClassifier((32,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(Xtr, ytr)
    clf.partial_fit(Xtr[:100], ytr[:100], classes=np.arange(10))
    for _ in range(15):
        clf.partial_fit(Xtr, ytr)
    # as scikit-learn: n_iter_ counts this call's epochs, t_ and loss_curve_ the whole history
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 16 and clf.score(Xte, yte) > 0.9
    assert clf.t_ == 100 + 15 * len(Xtr) and clf.loss_ == clf.loss_curve_[-1]
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(Xtr[:5], np.full(5, 11))


def test_early_stopping_keeps_best_validation_weights(digits):
    Xtr, _, ytr, _ = digits
    clf = MLPClassifier(
        (16,), early_stopping=True, n_iter_no_change=3, max_iter=200, random_state=0
    ).fit(Xtr, ytr)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_alpha_is_scaled_like_sklearn(digits):
    # one full-batch SGD step: W1 = W0 - lr * (data gradient + alpha / n * W0), so two fits
    # from the same W0 that differ only in alpha differ by -lr * alpha / n * W0
    Xtr, _, ytr, _ = digits
    n, lr, alpha = len(Xtr), 1e-6, 1e3
    kw = dict(
        hidden_layer_sizes=(8,),
        max_iter=1,
        random_state=0,
        batch_size=n,
        solver="sgd",
        momentum=0.0,
        learning_rate_init=lr,
    )
    big = MLPClassifier(alpha=alpha, **kw).fit(Xtr, ytr)
    free = MLPClassifier(alpha=0.0, **kw).fit(Xtr, ytr)
    diff = big.coefs_[0] - free.coefs_[0]
    np.testing.assert_allclose(diff, -lr * alpha / n * free.coefs_[0], rtol=1e-3, atol=1e-15)
    np.testing.assert_array_equal(big.intercepts_[0], free.intercepts_[0])  # biases: no penalty


def test_pickle_round_trip_keeps_predictions_and_partial_fit(digits):
    Xtr, Xte, ytr, _ = digits
    clf = MLPClassifier((16,), max_iter=5, random_state=0).fit(Xtr, ytr)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(Xte), clf.predict_proba(Xte))
    clf.partial_fit(Xtr, ytr)
    clone.partial_fit(Xtr, ytr)
    np.testing.assert_array_equal(clone.coefs_[0], clf.coefs_[0])


def test_regressor_single_and_multi_output():
    X, y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=0.1, random_state=0)
    y = y / y.std(axis=0)
    reg = MLPRegressor((32,), max_iter=300, learning_rate_init=0.01, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200, 2) and reg.score(X, y) > 0.95
    assert reg.out_activation_ == "identity"
    one = MLPRegressor((32,), max_iter=300, learning_rate_init=0.01, random_state=0)
    assert one.fit(X, y[:, 0]).predict(X).shape == (200,)


def test_verbose_prints_iterations(digits, capsys):
    Xtr, _, ytr, _ = digits
    MLPClassifier((4,), max_iter=2, verbose=True, random_state=0).fit(Xtr, ytr)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Iteration 1, loss = ") and out[1].startswith("Iteration 2, loss = ")


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(solver="lbfgs"), "solver must be 'sgd' or 'adam'"),
        (dict(activation="cube"), "activation must be one of"),
        (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes must be positive"),
        (dict(batch_size=0), "batch_size must be 'auto'"),
        (dict(learning_rate_init=0), "learning_rate_init must be > 0"),
    ],
)
def test_bad_parameters_are_named(kw, msg, digits):
    Xtr, _, ytr, _ = digits
    with pytest.raises(ValueError, match=msg):
        MLPClassifier(**kw).fit(Xtr[:20], ytr[:20])


def test_readme_example_converges_without_warning(capsys):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(
        b
        for b in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "from chainrule.sklearn import MLPClassifier" in b
    )
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        exec(compile(block, "README sklearn example", "exec"), namespace)
    clf = namespace["clf"]
    assert clf.n_iter_ < 1000 and clf.score(namespace["X"], namespace["y"]) > 0.95
