"""train.fit(device=...) on every namespace: the same history as NumPy, checkpoints anywhere."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
from chainrule import train


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    return X[:30], y[:30], X[30:], y[30:]


def _fit(device, **kw):
    model = nn.MLP([4, 8, 3], activation="tanh", dtype=np.float64, rng=0)
    hist = train.fit(
        model, _data(), epochs=3, batch_size=8, lr=0.1, seed=0, progress=False, device=device, **kw
    )
    return model, hist


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_on_a_device_matches_numpy(space, optimizer):
    ref, h_ref = _fit(None, optimizer=optimizer)
    model, hist = _fit(space.device, optimizer=optimizer)
    for p in model.parameters():
        space.check(p)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(getattr(hist, key), getattr(h_ref, key), rtol=1e-12, atol=1e-12)
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(cr.asnumpy(a), b.numpy(), rtol=1e-12, atol=1e-12)


def test_fit_takes_data_that_already_live_on_the_device(foreign):
    # they are copied to the host once; each mini-batch then moves to the model's device
    ref, h_ref = _fit(None)
    model = nn.MLP([4, 8, 3], activation="tanh", dtype=np.float64, rng=0)
    data = tuple(foreign.put(a) for a in _data())
    hist = train.fit(
        model, data, epochs=3, batch_size=8, lr=0.1, seed=0, progress=False, device=foreign.device
    )
    np.testing.assert_allclose(hist.loss, h_ref.loss, rtol=1e-12, atol=1e-12)
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(foreign.check(a), b.numpy(), rtol=1e-12, atol=1e-12)


def test_fit_moves_each_batch_once(strict, monkeypatch):
    from chainrule.train import steps

    moved = []
    real = steps.to_like

    def counting(a, like):
        moved.append(a.shape)
        return real(a, like)

    monkeypatch.setattr(steps, "to_like", counting)
    _fit(strict.device)
    # 30 rows in batches of 8: 4 steps x (inputs, targets) x 3 epochs, plus validation
    # (one chunk of inputs and one of targets per epoch)
    assert len(moved) == 3 * (4 * 2 + 2)


def test_checkpoint_from_a_device_resumes_on_the_cpu(strict, tmp_path):
    model = nn.MLP([4, 8, 3], activation="tanh", dtype=np.float64, rng=0)
    train.fit(
        model,
        _data(),
        epochs=2,
        batch_size=8,
        lr=0.1,
        seed=0,
        progress=False,
        optimizer="adam",
        device=strict.device,
        checkpoint_dir=tmp_path / "ck",
    )
    cpu = nn.MLP([4, 8, 3], activation="tanh", dtype=np.float64, rng=5)
    h = train.fit(
        cpu,
        _data(),
        epochs=3,
        batch_size=8,
        lr=0.1,
        seed=0,
        progress=False,
        optimizer="adam",
        resume_from=tmp_path / "ck",
    )
    ref, h_ref = _fit(None, optimizer="adam")
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-12, atol=1e-12)
    for a, b in zip(cpu.parameters(), ref.parameters(), strict=True):
        assert type(a.data) is np.ndarray
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def test_textbook_backend_refuses_a_device(strict):
    with pytest.raises(ValueError, match="textbook"):
        _fit(strict.device, backend="textbook")


@pytest.mark.parametrize("output", ["softmax", "logistic", "linear"])
def test_metrics_take_device_arrays_and_tensors(space, output):
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 3)), np.array([0, 1, 2, 1, 0, 2])
    for logits in (space.put(z), cr.tensor(space.put(z))):
        proba = train.predict_proba(logits, output)
        assert type(proba) is np.ndarray
        np.testing.assert_array_equal(proba, train.predict_proba(z, output))
        if output != "linear":
            labels = train.predict_labels(logits, output)
            np.testing.assert_array_equal(labels, train.predict_labels(z, output))
    yd = space.put(y)
    assert train.accuracy(yd, cr.tensor(yd)) == 1.0
    assert train.r2_score(space.put(z), cr.tensor(space.put(z))) == 1.0
    np.testing.assert_array_equal(train.confusion_matrix(yd, yd, 3), np.diag([2, 2, 2]))
