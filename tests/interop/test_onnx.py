"""ONNX export: onnxruntime agrees with chainrule, the CLI export takes raw inputs."""

import numpy as np
import pytest

from chainrule import nn
from chainrule.cli import main
from chainrule.nn.activations import ACTIVATIONS
from chainrule.nn.export_onnx import ONNX_ACTIVATIONS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(path, X):
    sess = _session(path)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": X})))


def test_every_activation_has_an_onnx_spelling():
    assert set(ONNX_ACTIVATIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_onnxruntime_matches_chainrule(tmp_path, activation, depth):
    sizes = [5] + [7] * (depth - 1) + [4]
    model = nn.MLP(sizes, activation=activation, rng=depth)
    path = nn.export_onnx(model, tmp_path / "m.onnx", (None, 5))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    X = (3 * np.random.default_rng(0).normal(size=(33, 5))).astype(np.float32)
    got = _run(path, X)
    np.testing.assert_allclose(got["logits"], model(X).numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("output", ["logistic", "linear"])
def test_logistic_and_regression_outputs(tmp_path, output):
    model = nn.MLP([3, 6, 2], activation="gelu", output=output, rng=0)
    path = nn.export_onnx(model, tmp_path / "m.onnx", (3,))
    X = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    got = _run(path, X)
    if output == "linear":
        assert list(got) == ["values"]
        np.testing.assert_allclose(got["values"], model.predict(X), rtol=0, atol=1e-5)
    else:
        assert list(got) == ["probabilities", "logits"]
        np.testing.assert_allclose(got["probabilities"], model.predict_proba(X), atol=1e-5)


def test_graph_has_named_io_and_a_dynamic_batch_axis(tmp_path):
    model = nn.MLP([3, 4, 2], rng=0)
    proto = onnx.load(str(nn.export_onnx(model, tmp_path / "m.onnx")))
    (inp,) = proto.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "input" and dims[0].dim_param == "batch" and dims[1].dim_value == 3
    assert [o.name for o in proto.graph.output] == ["probabilities", "logits"]
    assert {n.op_type for n in proto.graph.node} == {"Gemm", "Relu", "Softmax"}
    for n in (1, 250):
        assert _run(tmp_path / "m.onnx", np.ones((n, 3), np.float32))["logits"].shape == (n, 2)


def test_float64_model_round_trips_bit_for_bit(tmp_path):
    model = nn.MLP([4, 5, 5, 3], activation="swish", dtype=np.float64, rng=3)
    path = nn.export_onnx(model, tmp_path / "m.onnx")
    back = nn.load_onnx(path)
    assert back.config() == model.config()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    X = np.random.default_rng(0).normal(size=(8, 4))
    np.testing.assert_allclose(_run(path, X)["logits"], model(X).numpy(), rtol=0, atol=1e-12)


def test_standardisation_is_part_of_the_graph(tmp_path):
    model = nn.MLP([2, 3, 2], rng=0)
    mean, std = np.array([10.0, -3.0]), np.array([2.0, 0.5])
    path = nn.export_onnx(model, tmp_path / "m.onnx", mean=mean, std=std)
    raw = np.array([[12.0, -3.5], [9.0, -2.0]], dtype=np.float32)
    expected = model.predict_proba(((raw - mean) / std).astype(np.float32))
    np.testing.assert_allclose(_run(path, raw)["probabilities"], expected, atol=1e-6)


def test_wrong_input_shape_names_both_sizes_and_writes_nothing(tmp_path):
    model = nn.MLP([3, 4, 2], rng=0)
    with pytest.raises(ValueError, match=r"input_shape \(None, 5\).*3 features"):
        nn.export_onnx(model, tmp_path / "m.onnx", (None, 5))
    assert not (tmp_path / "m.onnx").exists()


def test_truncated_and_foreign_files_give_one_clear_error(tmp_path):
    model = nn.MLP([3, 4, 2], rng=0)
    good = nn.export_onnx(model, tmp_path / "m.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        nn.load_onnx(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("hello")
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        nn.load_onnx(tmp_path / "text.onnx")
    h = onnx.helper
    g = h.make_graph(
        [h.make_node("Relu", ["x"], ["y"])],
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="other")
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ValueError, match="without chainrule's 'chainrule.mlp' metadata"):
        nn.load_onnx(tmp_path / "foreign.onnx")


def test_mismatched_shapes_and_unknown_layers_name_the_layer(tmp_path):
    path = nn.export_onnx(nn.MLP([3, 4, 2], rng=0), tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    for t in proto.graph.initializer:
        if t.name == "2.weight":
            t.CopyFrom(onnx.numpy_helper.from_array(np.zeros((2, 5), np.float32), "2.weight"))
        if t.name == "0.bias":
            t.CopyFrom(onnx.numpy_helper.from_array(np.zeros(4, np.float32), "6.bias"))
    onnx.save(proto, str(tmp_path / "bad.onnx"), save_as_external_data=False)
    with pytest.raises(ValueError) as e:
        nn.load_onnx(tmp_path / "bad.onnx")
    msg = str(e.value)
    assert "missing keys ['0.bias']" in msg and "unexpected keys ['6.bias']" in msg
    proto = onnx.load(str(path))
    for t in proto.graph.initializer:
        if t.name == "2.weight":
            t.CopyFrom(onnx.numpy_helper.from_array(np.zeros((2, 5), np.float32), "2.weight"))
    onnx.save(proto, str(tmp_path / "bad2.onnx"))
    expected = r"2.weight: stored shape \(2, 5\), parameter shape \(2, 4\)"
    with pytest.raises(ValueError, match=expected):
        nn.load_onnx(tmp_path / "bad2.onnx")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    args = ["train", "--dataset", "digits", "--layers", "32", "--epochs", "3", "--out", str(out)]
    assert main([*args, "--quiet", "--no-plots"]) == 0
    return out


def test_cli_export_of_the_digits_run_predicts_identically(digits_run, tmp_path, capsys):
    from chainrule import data
    from chainrule.train.rundir import predict_run

    path = tmp_path / "digits.onnx"
    assert main(["export", str(digits_run), str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    raw = data.load("digits", seed=0, standardize=False).X_test
    got = _run(path, raw.astype(np.float32))
    np.testing.assert_array_equal(got["probabilities"].argmax(1), predict_run(digits_run, raw))
    proba = predict_run(digits_run, raw, proba=True)
    np.testing.assert_allclose(got["probabilities"], proba, rtol=0, atol=1e-6)


def test_cli_export_errors_are_one_line(digits_run, tmp_path, capsys):
    assert main(["export", str(digits_run), str(tmp_path / "m.txt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and "*.onnx" in err and err.count("\n") == 1
    assert main(["export", str(tmp_path / "nope"), str(tmp_path / "m.onnx")]) == 1
    assert capsys.readouterr().err.startswith("chainrule: error:")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_float64_models_run_in_onnxruntime_for_every_activation(tmp_path, activation):
    model = nn.MLP([5, 7, 7, 4], activation=activation, dtype=np.float64, rng=1)
    path = nn.export_onnx(model, tmp_path / "m.onnx")
    X = 3 * np.random.default_rng(0).normal(size=(50, 5))
    # gelu's Erf runs in float32 (onnxruntime has no float64 kernel); the rest in float64
    tol = 1e-6 if activation == "gelu" else 1e-12
    np.testing.assert_allclose(_run(path, X)["logits"], model(X).numpy(), rtol=0, atol=tol)
