"""Checkpoints: weights in safetensors, architecture and state in JSON, written atomically.

A checkpoint directory holds

- ``model.safetensors``: the model's ``state_dict()``;
- ``config.json``: the architecture (``model.config()``), the training
  configuration and, when given, the input standardisation;
- ``optimizer.safetensors``: the optimizer's state (arrays as tensors, the
  rest as JSON metadata), when an optimizer is given;
- ``train_state.json``: epoch, history, seed and the SHA-256 of every file
  above. It is written last, so it marks a complete checkpoint; loading
  checks the hashes and so detects truncated or mixed files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from chainrule.atomic import fsync_dir, write_bytes_atomic, write_json_atomic

from .errors import CheckpointError

__all__ = [
    "Checkpoint",
    "load_arrays",
    "load_checkpoint",
    "load_config",
    "load_model",
    "save_arrays",
    "save_checkpoint",
]

FORMAT = "chainrule-checkpoint"
VERSION = 1
MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
OPTIM_FILE, STATE_FILE = "optimizer.safetensors", "train_state.json"


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns; unpacks as ``model, optimizer_state, train_state``."""

    model: Any
    optimizer_state: dict | None
    train_state: dict


def _safetensors_numpy():
    try:
        import safetensors.numpy as stn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "checkpoints need the safetensors package: pip install 'chainrule[train]'"
        ) from exc
    return stn


def _flatten(obj: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    """Replace arrays in a nested structure by ``{"__array__": key}`` and collect them."""
    if isinstance(obj, np.ndarray):
        arrays[path] = np.ascontiguousarray(obj)
        return {"__array__": path, "shape": list(obj.shape)}  # safetensors stores 0-d as (1,)
    if isinstance(obj, dict):
        return {str(k): _flatten(v, arrays, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return {"__list__": [_flatten(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "data") and isinstance(getattr(obj, "data", None), np.ndarray):
        return _flatten(obj.data, arrays, path)  # a Tensor
    return obj


def _unflatten(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__", "shape"}:
            return arrays[obj["__array__"]].reshape(obj["shape"])
        if set(obj) == {"__list__"}:
            return [_unflatten(v, arrays) for v in obj["__list__"]]
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    return obj


def save_arrays(path: str | Path, tree: Any, *, sync_dir: bool = True) -> bytes:
    """Atomically save a nested dict/list of arrays and scalars as one safetensors file.

    Arrays become tensors; the structure and the scalars are kept as JSON in
    the file's metadata. Returns the bytes written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.safetensors"
    >>> _ = save_arrays(p, {"step": 3, "m": [np.ones(2)]})
    >>> load_arrays(p)["m"][0]
    array([1., 1.])
    """
    arrays: dict[str, np.ndarray] = {}
    skeleton = _flatten(tree, arrays, "")
    blob = _safetensors_numpy().save(arrays, metadata={"structure": json.dumps(skeleton)})
    write_bytes_atomic(path, blob, sync_dir=sync_dir)
    return blob


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    stn = _safetensors_numpy()
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    try:
        arrays = stn.load(blob)
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({exc}); the file is corrupt or truncated"
        ) from None
    return arrays, meta


def load_arrays(path: str | Path) -> Any:
    """Read a file written by :func:`save_arrays` back into its nested structure."""
    path = Path(path)
    arrays, meta = _read_safetensors(path)
    if "structure" not in meta:
        return arrays
    try:
        skeleton = json.loads(meta["structure"])
        return _unflatten(skeleton, arrays)
    except (json.JSONDecodeError, KeyError) as exc:
        raise CheckpointError(f"{path}: corrupt structure metadata ({exc})") from None


def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def save_checkpoint(
    directory: str | Path,
    model: Any,
    optimizer: Any = None,
    state: dict | None = None,
    *,
    config: dict | None = None,
    scaler: Any = None,
    extra_arrays: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of ``model`` (and ``optimizer``) into ``directory``, atomically.

    Parameters
    ----------
    directory : str or pathlib.Path
        Created if needed. Existing checkpoint files are replaced one by one,
        each atomically; ``train_state.json`` goes last and records the hashes.
    model : chainrule.nn.MLP
        Any module with ``state_dict()`` and ``config()``.
    optimizer : optimizer or None
        Saved with its ``state_dict()``.
    state : dict or None
        JSON-serialisable training state (epoch, history, seed, ...).
    config : dict or None
        Training configuration stored in ``config.json`` under ``"training"``.
    scaler : chainrule.data.Standardizer or None
        Input standardisation stored in ``config.json`` (exact float64 values).
    extra_arrays : dict or None
        More named array trees, each saved as ``<name>.safetensors``.

    Returns
    -------
    pathlib.Path
        The directory.

    Examples
    --------
    >>> import tempfile
    >>> import chainrule as cr
    >>> model = cr.nn.MLP([2, 3, 1], output="logistic", rng=0)
    >>> d = save_checkpoint(tempfile.mkdtemp(), model, state={"epoch": 0})
    >>> load_checkpoint(d).model.config() == model.config()
    True
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hashes = {
        MODEL_FILE: _sha256(save_arrays(directory / MODEL_FILE, model.state_dict(), sync_dir=False))
    }
    if optimizer is not None:
        hashes[OPTIM_FILE] = _sha256(
            save_arrays(directory / OPTIM_FILE, optimizer.state_dict(), sync_dir=False)
        )
    for name, tree in (extra_arrays or {}).items():
        hashes[f"{name}.safetensors"] = _sha256(
            save_arrays(directory / f"{name}.safetensors", tree, sync_dir=False)
        )
    cfg: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model_class": type(model).__name__,
        "model": model.config(),
        "training": config or {},
    }
    if scaler is not None:
        cfg["scaler"] = {
            "mean": np.asarray(scaler.mean).tolist(),
            "std": np.asarray(scaler.std).tolist(),
        }
    cfg_text = json.dumps(cfg, indent=2) + "\n"
    write_bytes_atomic(directory / CONFIG_FILE, cfg_text.encode(), sync_dir=False)
    fsync_dir(directory)  # every file above is in place before the state that names them
    hashes[CONFIG_FILE] = _sha256(cfg_text.encode())
    write_json_atomic(directory / STATE_FILE, {**(state or {}), "files": hashes})
    return directory


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: file not found; is {path.parent} a chainrule run or checkpoint directory?"
        ) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _verify(directory: Path, state: dict) -> None:
    for name, digest in state.get("files", {}).items():
        path = directory / name
        if not path.exists():
            raise CheckpointError(f"{path}: file missing from the checkpoint")
        if _sha256(path.read_bytes()) != digest:
            raise CheckpointError(
                f"{path}: contents do not match the hash in {STATE_FILE}; the file is corrupt, "
                "truncated or from another checkpoint"
            )


def load_config(directory: str | Path) -> dict:
    """Read and check ``config.json`` of a checkpoint or run directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such directory")
    cfg = _read_json(directory / CONFIG_FILE)
    if cfg.get("format") != FORMAT or "model" not in cfg:
        raise CheckpointError(f"{directory / CONFIG_FILE}: not a chainrule checkpoint config")
    return cfg


def load_model(directory: str | Path, *, verify: bool = True) -> Any:
    """Rebuild the model of a checkpoint from its files alone (no user code)."""
    return load_checkpoint(directory, verify=verify).model


def load_checkpoint(directory: str | Path, *, verify: bool = True) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    directory : str or pathlib.Path
        The checkpoint (or run) directory.
    verify : bool
        Check every file against the hashes recorded in ``train_state.json``.

    Returns
    -------
    Checkpoint
        ``(model, optimizer_state, train_state)``: the rebuilt model with its
        weights, the optimizer's state dict (None if none was saved) and the
        training state.

    Raises
    ------
    CheckpointError
        For a missing, truncated, corrupt or inconsistent file.
    """
    from chainrule import nn

    directory = Path(directory)
    cfg = load_config(directory)
    state = _read_json(directory / STATE_FILE)
    if verify:
        _verify(directory, state)
    cls = getattr(nn, cfg.get("model_class", "MLP"), None)
    if cls is None or not hasattr(cls, "from_config"):
        raise CheckpointError(f"{directory}: unknown model class {cfg.get('model_class')!r}")
    try:
        model = cls.from_config(cfg["model"])
        model.load_state_dict(load_arrays(directory / MODEL_FILE))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(
            f"{directory}: the weights do not fit the architecture ({exc})"
        ) from None
    optim_state = load_arrays(directory / OPTIM_FILE) if (directory / OPTIM_FILE).exists() else None
    return Checkpoint(model, optim_state, state)
