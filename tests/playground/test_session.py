"""The playground's engine without a server: settings, data, network, training, diagnostics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chainrule import nn
from chainrule.cli import main
from chainrule.playground import datasets
from chainrule.playground.config import Config, FieldError, parse_config
from chainrule.playground.diagnostics import backprop_sample, check_gradients
from chainrule.playground.export import export_run
from chainrule.playground.network import build_model, penalty, skips
from chainrule.playground.session import GRID, Session


@pytest.mark.parametrize("name", datasets.DATASETS[:-1])
def test_every_dataset_generates_in_the_plane_and_is_seeded(name):
    X, y = datasets.generate(name, 0.1, seed=3)
    X2, y2 = datasets.generate(name, 0.1, seed=3)
    assert X.shape == (datasets.N_POINTS, 2) and np.array_equal(X, X2) and np.array_equal(y, y2)
    if name in datasets.CLASSIFICATION:
        assert set(np.unique(y)) == {0.0, 1.0}
    else:
        assert np.all(np.abs(y) <= 1) and y.std() > 0.05


def test_features_are_the_seven_of_tf_playground():
    X = np.array([[2.0, -1.0]])
    F = datasets.features(X, list(datasets.FEATURES))
    assert F.tolist() == [[2.0, -1.0, 4.0, 1.0, -2.0, math.sin(2.0), math.sin(-1.0)]]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"lr": "abc"}, "lr"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"),
        ({"hidden": [9]}, "hidden"),
        ({"hidden": [2.5]}, "hidden"), ({"batch": 251}, "batch"), ({"batch": 0}, "batch"),
        ({"reg_rate": -1}, "reg_rate"), ({"features": ["x3"]}, "features"),
        ({"residual": "yes"}, "residual"),
        ({"dataset": "mnist"}, "dataset"), ({"noise": 2}, "noise"), ({"lr": True}, "lr"),
    ],
)  # fmt: skip
def test_bad_settings_name_their_field(raw, field):
    with pytest.raises(FieldError) as err:
        parse_config(raw)
    assert err.value.field == field


def test_defaults_are_tf_playgrounds_and_strings_of_numbers_are_accepted():
    c = parse_config({"lr": "0.1", "batch": "5"})
    assert (c.lr, c.batch, c.hidden, c.activation, c.features) == (
        0.1,
        5,
        [4, 2],
        "tanh",
        ["x1", "x2"],
    )
    assert parse_config(c.to_dict()) == c


def test_circle_with_defaults_learns():
    s = Session()
    first = s.losses()[1]
    for _ in range(200):
        s.train_epochs(1)
        if s.history[-1][2] < 0.1:
            break
    assert s.history[-1][2] < 0.1 < first


def test_step_counts_epochs_and_records_per_layer_norms():
    s = Session(parse_config({"hidden": [3, 3, 3]}))
    r = s.train_epochs(2)
    assert r["epoch"] == 2 and s.steps == 2 * (250 // 10)
    assert len(s.delta_norms) == len(s.grad_norms) == 4 and all(v > 0 for v in s.delta_norms)


def test_six_logistic_layers_show_the_vanishing_gradient():
    s = Session(parse_config({"hidden": [8] * 6, "activation": "logistic"}))
    s.train_epochs(1)
    assert (
        s.delta_norms[0] < s.delta_norms[-2] / 100
    )  # delta shrinks layer by layer towards the input


def test_zero_init_keeps_the_neurons_of_a_layer_identical():
    s = Session(
        parse_config(
            {"init": "zeros", "bias_init": 0.1, "hidden": [4, 4], "activation": "logistic"}
        )
    )
    s.train_epochs(3)
    for W, _ in s.params[:-1]:
        w = W.numpy()
        assert np.allclose(w, w[0:1]), "rows (neurons) stay equal by symmetry"
    assert not np.allclose(s.params[-1][0].numpy(), 0)


def test_nan_loss_pauses_with_a_reason():
    s = Session(
        parse_config(
            {"lr": 10, "activation": "linear", "dataset": "plane", "features": ["x1^2", "x2^2"]}
        )
    )
    s.playing = True
    for _ in range(30):
        s.train_epochs(1)
        if not s.playing:
            break
    assert not s.playing and "lower the learning rate" in s.message
    json.dumps(s.frame(), allow_nan=False)  # the page's JSON.parse accepts no NaN


def test_residual_skips_only_between_equal_hidden_widths():
    assert skips([2, 4, 4, 4, 1], True) == [False, True, True, False]
    assert skips([2, 4, 3, 1], True) == [False, False, False]
    assert skips([2, 4, 4, 1], False) == [False, False, False]
    s = Session(parse_config({"hidden": [4, 4], "residual": True}))
    assert check_gradients(s)["rev_vs_central"] < 1e-6
    assert backprop_sample(s, 0.0, 0.0)["max_difference"] < 1e-12


def test_l2_penalty_is_nn_l2_penalty():
    m = build_model(Config(hidden=[3, 2]), 2, "classification")
    Ws = [layer.W for layer in m.layers]  # noqa: N806
    assert np.isclose(float(penalty(Ws, "L2", 0.3).numpy()), float(nn.l2_penalty(m, 0.3).numpy()))


@pytest.mark.parametrize("act", ["relu", "tanh", "logistic", "linear"])
def test_gradient_check_and_one_sample_backprop_agree(act):
    s = Session(
        parse_config(
            {"activation": act, "hidden": [5, 3], "regularization": "L2", "reg_rate": 0.01}
        )
    )
    s.train_epochs(2)
    g = check_gradients(s)
    assert g["rev_vs_central"] < 1e-6 and g["fwd_vs_central"] < 1e-6 and g["rev_vs_fwd"] < 1e-12
    b = backprop_sample(s, 1.0, -1.0)
    assert len(b["layers"]) == 3 and b["max_difference"] < 1e-10


def test_frame_is_compact_and_complete():
    s = Session(parse_config({"hidden": [3, 2]}))
    f = s.frame()
    assert len(f["surface"]) == 4 * math.ceil(GRID * GRID / 3)
    assert [len(layer) for layer in f["neurons"]] == [3, 2]
    assert [np.array(w["W"]).shape for w in f["weights"]] == [(3, 2), (2, 3), (1, 2)]


def test_custom_points_and_csv():
    s = Session()
    for i in range(6):
        s.add_point(float(i - 3), float(i % 2), float(i % 2), "classification")
    assert s.cfg.dataset == "custom" and len(s.X_train) + len(s.X_test) == 6
    X, y = datasets.parse_csv("1,1,0.5\n-1,2,-0.25\n", "regression")
    s.set_custom(X, y, "regression")
    assert s.task == "regression"
    with pytest.raises(ValueError, match="line 2: class label 2.0"):
        datasets.parse_csv("1,1,1\n1,1,2\n", "classification")
    with pytest.raises(ValueError, match="at most"):
        datasets.parse_csv("1,1,1\n" * 3, "classification", max_rows=2)


def test_no_hidden_layer_is_logistic_regression():
    s = Session(parse_config({"hidden": [], "dataset": "gauss"}))
    s.train_epochs(5)
    assert s.frame()["sizes"] == [2, 1] and s.frame()["neurons"] == []
    assert s.history[-1][2] < 0.2
    assert check_gradients(s)["rev_vs_central"] < 1e-6


@pytest.mark.parametrize(
    "raw", [{"optimizer": "adam", "lr": 0.01}, {"dataset": "plane", "regularization": "L1"}]
)
def test_export_is_a_run_directory_that_evaluate_reads(raw, tmp_path):
    s = Session(parse_config(raw))
    s.train_epochs(3)
    out = export_run(s, tmp_path, "run")
    assert main(["evaluate", str(out)]) == 0 and main(["info", str(out)]) == 0
    residual = Session(parse_config({"hidden": [3, 3], "residual": True}))
    with pytest.raises(FieldError, match="skip connections"):
        export_run(residual, tmp_path, "res")
