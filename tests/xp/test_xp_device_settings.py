"""Device settings checked on the CPU: device names, the float32 matmul precision
(applied to a stand-in for CuPy's setting), ``clip_grad_norm_``'s single host copy."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import chainrule as cr
import chainrule.optim as optim
from chainrule.cli import main
from chainrule.core.devices import device_name
from chainrule.train import FitConfig


@pytest.mark.parametrize(
    ("text", "name"),
    [("cpu", "cpu"), (" CUDA ", "cuda"), ("cuda:0", "cuda:0"), ("Cuda:12", "cuda:12"),
     ("auto", "auto")],
)  # fmt: skip
def test_device_names_are_case_insensitive(text, name):
    assert device_name(text) == name


@pytest.mark.parametrize("text", ["tpu", "cuda:", "cuda:x", "cuda:-1", "cpu:0", ""])
def test_other_device_names_are_refused_naming_the_choices(text):
    with pytest.raises(ValueError, match="'cpu', 'cuda', 'cuda:N' or 'auto'"):
        device_name(text)


def test_fit_config_takes_device_names_as_written_and_refuses_others():
    for ok in ("cpu", "cuda", "cuda:1", "auto", None):
        FitConfig(device=ok)
    for bad in ("CUDA", "cuda:x", "gpu"):
        with pytest.raises(ValueError, match=r"device.*'cuda:N' \(N a GPU number\).*lower case"):
            FitConfig(device=bad)


def test_cli_device_cuda_n_is_accepted_and_fails_in_one_line_without_a_gpu(tmp_path, capsys):
    if cr.cuda_available():
        pytest.skip("a GPU is present: the error path cannot be reached")
    out = tmp_path / "run"
    args = ["train", "--dataset", "iris", "--epochs", "1", "--out", str(out), "--quiet"]
    status = main([*args, "--device", "CUDA:1", "--no-plots"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith("chainrule: error: device 'cuda:1'")
    assert not out.exists()
    with pytest.raises(SystemExit) as e:  # a malformed number is a usage error
        main([*args, "--device", "cuda:one"])
    assert e.value.code == 2
    assert "cuda:one" in capsys.readouterr().err


def test_matmul_precision_names_aliases_and_context():
    assert cr.get_matmul_precision() == "highest"
    with cr.matmul_precision("TF32"):
        assert cr.get_matmul_precision() == "high"
        with cr.matmul_precision("bf16"):
            assert cr.get_matmul_precision() == "medium"
        assert cr.get_matmul_precision() == "high"
    assert cr.get_matmul_precision() == "highest"
    with pytest.raises(ValueError, match="unknown precision 'fp8'.*'tf32'"):
        cr.set_matmul_precision("fp8")
    # no effect on NumPy: a float32 product is the same in every mode
    a = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
    want = (cr.tensor(a) @ cr.tensor(a)).numpy()
    with cr.matmul_precision("medium"):
        np.testing.assert_array_equal((cr.tensor(a) @ cr.tensor(a)).numpy(), want)


def test_matmul_precision_sets_cupys_compute_type_for_float32(monkeypatch):
    calls = []
    linalg = types.ModuleType("cupy._core._routines_linalg")
    linalg.COMPUTE_TYPE_DEFAULT, linalg.COMPUTE_TYPE_TF32, linalg.COMPUTE_TYPE_BF16 = 1, 7, 6
    linalg.set_compute_type = lambda dtype, kind: calls.append((dtype, kind))
    core = types.ModuleType("cupy._core")
    core._routines_linalg = linalg
    cupy = types.ModuleType("cupy")
    cupy.float32 = np.float32
    cupy._core = core
    for name, mod in (
        ("cupy", cupy),
        ("cupy._core", core),
        ("cupy._core._routines_linalg", linalg),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    with cr.matmul_precision("high"):
        with cr.matmul_precision("medium"):
            pass
    assert calls == [(np.float32, 7), (np.float32, 6), (np.float32, 7), (np.float32, 1)]


def test_clip_grad_norm_copies_one_number_to_the_host(strict, monkeypatch):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=s) for s in ((3, 4), (4,), (4, 2))]
    params = []
    for g in grads:
        p = cr.tensor(strict.put(np.zeros(g.shape)), requires_grad=True)
        p.grad = cr.tensor(strict.put(g))
        params.append(p)
    ref = []
    for g in grads:
        q = cr.tensor(np.zeros(g.shape), requires_grad=True)
        q.grad = cr.tensor(g)
        ref.append(q)
    array = type(strict.put(np.zeros(1)))
    conversions = []
    real = array.__float__

    def counted(self):
        conversions.append(1)
        return real(self)

    monkeypatch.setattr(array, "__float__", counted)
    total = optim.clip_grad_norm_(params, 1.0)
    assert len(conversions) == 1  # not one per parameter
    want = optim.clip_grad_norm_(ref, 1.0)
    np.testing.assert_allclose(total, want, rtol=1e-12)
    for p, q in zip(params, ref, strict=True):
        np.testing.assert_allclose(strict.check(p.grad), q.grad.numpy(), rtol=1e-12, atol=1e-15)
