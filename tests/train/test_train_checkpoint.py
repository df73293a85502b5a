"""Checkpoint files: round trip, atomic writes, clear errors for corrupt or truncated files."""

import json

import numpy as np
import pytest

from chainrule import nn, optim
from chainrule.train import CheckpointError, load_checkpoint, save_checkpoint
from chainrule.train.checkpoint import current_dir, load_arrays, save_arrays


@pytest.fixture
def saved(tmp_path):
    model = nn.MLP([3, 4, 2], activation="gelu", rng=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    x = np.random.default_rng(0).normal(size=(5, 3))
    loss = nn.F.softmax_cross_entropy(model(x), np.array([0, 1, 0, 1, 1]))
    loss.backward()
    opt.step()
    save_checkpoint(tmp_path, model, opt, {"epoch": 4, "note": "x"}, config={"lr": 0.01})
    return tmp_path, model, opt


def test_round_trip_model_optimizer_and_state(saved):
    d, model, opt = saved
    loaded, opt_state, state = load_checkpoint(d)
    assert repr(loaded) == repr(model)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
    fresh = optim.Adam(loaded.parameters(), lr=0.5)
    fresh.load_state_dict(opt_state)
    ref = opt.state_dict()
    assert json.dumps(_shape_tree(fresh.state_dict())) == json.dumps(_shape_tree(ref))
    assert state["epoch"] == 4 and state["note"] == "x"
    cfg = json.loads((current_dir(d) / "config.json").read_text())
    assert cfg["training"] == {"lr": 0.01} and cfg["model"] == model.config()


def _shape_tree(obj):
    if isinstance(obj, dict):
        return {k: _shape_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_shape_tree(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return ["array", list(obj.shape), obj.tolist()]
    return obj


def test_save_arrays_keeps_nesting_scalars_and_dtypes(tmp_path):
    tree = {
        "step": 3,
        "lr": 0.5,
        "name": "adam",
        "m": [np.arange(3, dtype=np.float32), np.eye(2)],
        "none": None,
        "scalar": np.array(2.5),
    }
    save_arrays(tmp_path / "t.safetensors", tree)
    back = load_arrays(tmp_path / "t.safetensors")
    assert (
        back["step"] == 3 and back["lr"] == 0.5 and back["name"] == "adam" and back["none"] is None
    )
    assert back["m"][0].dtype == np.float32 and np.array_equal(back["m"][1], np.eye(2))
    assert back["scalar"].shape == () and float(back["scalar"]) == 2.5


def test_truncated_weights_give_clear_error(saved):
    d, _, _ = saved
    blob = (current_dir(d) / "model.safetensors").read_bytes()
    (current_dir(d) / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*(corrupt|truncated)"):
        load_checkpoint(d)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(d, verify=False)


def test_flipped_byte_is_detected_by_hash(saved):
    d, _, _ = saved
    blob = bytearray((current_dir(d) / "model.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (current_dir(d) / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="do not match the hash"):
        load_checkpoint(d)


@pytest.mark.parametrize("name", ["config.json", "train_state.json"])
def test_corrupt_json_gives_clear_error(saved, name):
    d, _, _ = saved
    (current_dir(d) / name).write_text('{"format": "chainrule-ch')
    with pytest.raises(CheckpointError, match=f"{name}.*(not valid JSON|corrupt)"):
        load_checkpoint(d)


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such directory"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="config.json: file not found"):
        load_checkpoint(tmp_path)


def test_no_temporary_files_left_and_overwrite_is_consistent(saved):
    d, model, opt = saved
    first = current_dir(d)
    save_checkpoint(d, model, opt, {"epoch": 5})
    assert not [p.name for p in d.iterdir() if p.name.startswith(".")]
    assert load_checkpoint(d).train_state["epoch"] == 5
    # one generation, the new one: the previous is removed once the switch is made
    assert sorted(p.name for p in d.iterdir()) == ["CURRENT", "gen-000002"] and not first.exists()


def test_failed_write_leaves_previous_file(saved, monkeypatch):
    d, model, opt = saved
    before = (current_dir(d) / "model.safetensors").read_bytes()
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full.*the previous checkpoint is kept"):
        save_checkpoint(d, model, opt, {"epoch": 9})
    monkeypatch.undo()
    assert (current_dir(d) / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in d.iterdir()) == ["CURRENT", "gen-000001"]
    assert load_checkpoint(d).train_state["epoch"] == 4
