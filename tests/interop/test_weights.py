"""Weights to and from PyTorch (plain dicts of arrays) and scikit-learn."""

import warnings

import numpy as np
import pytest

from chainrule import nn
from chainrule.nn.torch_interop import TORCH_ACTIVATIONS


def test_state_dict_uses_sequential_names_and_torch_shapes():
    m = nn.MLP([3, 5, 4, 2], rng=0)
    sd = m.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert sd["2.weight"].shape == (4, 5) and all(isinstance(v, np.ndarray) for v in sd.values())
    np.testing.assert_array_equal(sd["4.weight"], m.layers[2].W.numpy())


def test_old_checkpoint_names_still_load():
    a, b = nn.MLP([3, 4, 2], rng=0), nn.MLP([3, 4, 2], rng=1)
    b.load_state_dict({n: p.numpy() for n, p in a.named_parameters()})  # layers.0.W, ...
    np.testing.assert_array_equal(b.state_dict()["0.weight"], a.state_dict()["0.weight"])


def test_not_a_dict_is_a_clear_error():
    with pytest.raises(TypeError, match="expected a dict of arrays, got list"):
        nn.MLP([3, 4, 2], rng=0).load_state_dict([1, 2])


@pytest.mark.parametrize("kind", ["classifier", "binary", "regressor"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_from_sklearn_predicts_like_sklearn(kind, activation):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    if kind == "regressor":
        est, y = MLPRegressor(hidden_layer_sizes=(6, 5)), X @ [1.0, -2.0, 0.5, 0.0]
    else:
        est, y = MLPClassifier(hidden_layer_sizes=(6, 5)), np.arange(60) % (2 + (kind != "binary"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.set_params(activation=activation, max_iter=30, random_state=0).fit(X, y)
    model = nn.from_sklearn(est)
    assert model.dtype == np.float64 and model.layer_sizes == [4, 6, 5, est.n_outputs_]
    if kind == "regressor":
        np.testing.assert_allclose(model.predict(X).ravel(), est.predict(X), rtol=0, atol=1e-12)
    else:
        p = model.predict_proba(X)
        p = np.hstack([1 - p, p]) if kind == "binary" else p
        np.testing.assert_allclose(p, est.predict_proba(X), rtol=0, atol=1e-12)


def test_chainrule_estimators_expose_sklearn_layout_and_round_trip():
    from chainrule.sklearn import MLPClassifier

    X = np.random.default_rng(1).normal(size=(40, 3))
    y = np.arange(40) % 3
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(3, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (3,)]
    model = nn.from_sklearn(clf, dtype=clf.model_.dtype)
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-12)


def test_from_sklearn_refuses_an_unfitted_estimator():
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(ValueError, match="has no coefs_, intercepts_, out_activation_.*fit"):
        nn.from_sklearn(MLPClassifier())


# ------------------------------------------------------------------ PyTorch (optional)


@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
def test_to_torch_and_back_agree_in_float64(activation):
    torch = pytest.importorskip("torch")
    m = nn.MLP([4, 6, 6, 3], activation=activation, dtype=np.float64, rng=2)
    seq = nn.to_torch(m)
    X = np.random.default_rng(0).normal(size=(9, 4)) * 3
    with torch.no_grad():
        out = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, m(X).numpy(), rtol=0, atol=1e-6)
    back = nn.from_torch(seq)
    assert back.activation == activation
    np.testing.assert_array_equal(back(X).numpy(), m(X).numpy())


def test_state_dict_moves_through_torch_save_and_load(tmp_path):
    torch = pytest.importorskip("torch")
    m = nn.MLP([3, 8, 2], activation="tanh", dtype=np.float64, rng=0)
    # torch.load's default weights_only=True takes tensors, not NumPy arrays: convert on save
    torch.save({k: torch.from_numpy(v) for k, v in m.state_dict().items()}, tmp_path / "w.pt")
    seq = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    seq.double().load_state_dict(
        {k: torch.as_tensor(v) for k, v in torch.load(tmp_path / "w.pt").items()}
    )
    X = np.random.default_rng(0).normal(size=(5, 3))
    with torch.no_grad():
        np.testing.assert_allclose(seq(torch.from_numpy(X)).numpy(), m(X).numpy(), atol=1e-6)
    torch.save(seq.state_dict(), tmp_path / "t.pt")
    m2 = nn.MLP([3, 8, 2], activation="tanh", dtype=np.float64, rng=9)
    m2.load_state_dict(torch.load(tmp_path / "t.pt"))  # torch tensors are accepted
    np.testing.assert_array_equal(m2(X).numpy(), m(X).numpy())


def test_torch_shape_mismatch_names_the_layer_and_shapes():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.ReLU(), torch.nn.Linear(7, 2))
    with pytest.raises(
        ValueError, match=r"0.weight: stored shape \(7, 3\), parameter shape \(8, 3\)"
    ):
        nn.MLP([3, 8, 2], rng=0).load_state_dict(seq.state_dict())
    bad = torch.nn.Sequential(
        torch.nn.Linear(3, 7), torch.nn.Conv1d(1, 1, 1), torch.nn.Linear(7, 2)
    )
    with pytest.raises(ValueError, match=r"activations \['Conv1d'\]"):
        nn.from_torch(bad)
    with pytest.raises(ValueError, match="hard_logistic.*has no torch.nn module"):
        nn.to_torch(nn.MLP([2, 3, 1], activation="hard_logistic"))


def test_from_torch_refuses_activation_constants_chainrule_does_not_use():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear
    for act, msg in (
        (torch.nn.LeakyReLU(0.2), "LeakyReLU slope"),
        (torch.nn.ELU(alpha=2.0), "ELU alpha"),
        (torch.nn.GELU(approximate="tanh"), "GELU must use"),
        (torch.nn.Softplus(beta=2.0), "Softplus beta"),
    ):
        with pytest.raises(ValueError, match=f"module 1: {msg}"):
            nn.from_torch(torch.nn.Sequential(lin(2, 3), act, lin(3, 1)))
