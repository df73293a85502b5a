"""``chainrule train --device``: cpu and auto train; cuda without CuPy or a GPU is one line."""

from __future__ import annotations

import json

import pytest

import chainrule as cr
from chainrule.cli import main


def test_device_cuda_without_a_gpu_is_one_line_and_writes_nothing(tmp_path, capsys):
    if cr.cuda_available():
        pytest.skip("a GPU is present: the error path cannot be reached")
    out = tmp_path / "run"
    status = main(
        [
            "train",
            "--dataset",
            "iris",
            "--epochs",
            "1",
            "--device",
            "cuda",
            "--out",
            str(out),
            "--no-plots",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and err[0].startswith("chainrule: error: device 'cuda'")
    assert "chainrule[gpu]" in err[0] or "GPU" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_cpu_and_auto_train_on_the_cpu(tmp_path, device):
    out = tmp_path / "run"
    status = main(
        [
            "train",
            "--dataset",
            "iris",
            "--layers",
            "8",
            "--epochs",
            "2",
            "--device",
            device,
            "--out",
            str(out),
            "--no-plots",
            "--quiet",
        ]
    )
    assert status == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["training"]["device"] == device
    # resuming picks its own device (the checkpoint is NumPy arrays)
    assert (
        main(
            [
                "train",
                "--resume",
                str(out),
                "--epochs",
                "3",
                "--device",
                "cpu",
                "--no-plots",
                "--quiet",
            ]
        )
        == 0
    )


def test_unknown_device_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "iris", "--device", "tpu"])
    assert e.value.code == 2
