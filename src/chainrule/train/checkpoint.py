"""Checkpoints: weights in safetensors, architecture and state in JSON, written as one unit.

A checkpoint holds

- ``model.safetensors``: the model's ``state_dict()``;
- ``config.json``: the architecture (``model.config()``), the training
  configuration and, when given, the input standardisation;
- ``optimizer.safetensors``: the optimizer's state (arrays as tensors, the
  rest as JSON metadata), when an optimizer is given;
- ``train_state.json``: epoch, history, seed, the BLAS thread count and the
  SHA-256 of every file above; loading checks the hashes and so detects
  truncated or mixed files.

:func:`save_checkpoint` writes these files as one unit: into a new
*generation* directory ``DIR/gen-NNNNNN/`` (first as ``DIR/.gen-NNNNNN.tmp/``,
every file flushed to disk, read back and checked, then renamed), and switches
to it by atomically replacing the pointer file ``DIR/CURRENT``. The previous
generation is removed only after that switch, so whenever the process dies
(a kill, Ctrl-C, a full disk) ``DIR`` holds the last complete checkpoint.
:func:`load_checkpoint` follows the pointer; a directory without one holds
the files directly (a run's final save, or a checkpoint of an older version).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from chainrule import nn
from chainrule.atomic import (
    fault_point,
    fsync_dir,
    write_bytes_atomic,
    write_file_synced,
)
from chainrule.core.devices import asnumpy
from chainrule.core.namespace import is_foreign

from .errors import CheckpointError
from .runfiles import blas_threads, check_config, check_train_state, read_json

__all__ = [
    "Checkpoint",
    "committed",
    "current_dir",
    "load_arrays",
    "load_checkpoint",
    "load_config",
    "encode_arrays",
    "encode_checkpoint",
    "load_model",
    "remove_leftovers",
    "save_arrays",
    "save_checkpoint",
    "write_in_place",
]

FORMAT = "chainrule-checkpoint"
VERSION = 1
MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
OPTIM_FILE, STATE_FILE = "optimizer.safetensors", "train_state.json"
POINTER_FILE = "CURRENT"
_GENERATION = re.compile(r"gen-(\d{6,})")


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
    if is_foreign(getattr(obj, "data", obj)):  # an array on a device: saved as NumPy
        return _flatten(asnumpy(obj), arrays, path)
    return obj


def _unflatten(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__", "shape"}:
            return arrays[obj["__array__"]].reshape(obj["shape"])
        if set(obj) == {"__list__"}:
            return [_unflatten(v, arrays) for v in obj["__list__"]]
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    return obj


def encode_arrays(tree: Any) -> bytes:
    """A nested dict/list of arrays and scalars as the bytes of one safetensors file.

    Arrays become tensors; the structure and the scalars are kept as JSON in
    the file's metadata (see :func:`save_arrays`).
    """
    arrays: dict[str, np.ndarray] = {}
    skeleton = _flatten(tree, arrays, "")
    return bytes(_safetensors_numpy().save(arrays, metadata={"structure": json.dumps(skeleton)}))


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
    blob = encode_arrays(tree)
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


def encode_checkpoint(
    model: Any,
    optimizer: Any = None,
    state: dict | None = None,
    *,
    config: dict | None = None,
    scaler: Any = None,
    extra_arrays: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """The files of a checkpoint as bytes by name, ``train_state.json`` last.

    Parameters are those of :func:`save_checkpoint`; ``extra_files`` are more
    files (name to bytes) written and hashed with the others.
    """
    files = {MODEL_FILE: encode_arrays(model.state_dict())}
    if optimizer is not None:
        files[OPTIM_FILE] = encode_arrays(optimizer.state_dict())
    for name, tree in (extra_arrays or {}).items():
        files[f"{name}.safetensors"] = encode_arrays(tree)
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
    files[CONFIG_FILE] = (json.dumps(cfg, indent=2) + "\n").encode()
    files.update(extra_files or {})
    hashes = {name: _sha256(blob) for name, blob in files.items()}
    full = {"blas_threads": blas_threads(), **(state or {}), "files": hashes}
    files[STATE_FILE] = (json.dumps(full, indent=2, allow_nan=True) + "\n").encode()
    return files


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
    """Write a checkpoint of ``model`` (and ``optimizer``) into ``directory`` as one unit.

    Parameters
    ----------
    directory : str or pathlib.Path
        Created if needed. The checkpoint becomes a new generation
        ``gen-NNNNNN/`` in it; the pointer file ``CURRENT`` is switched to it
        atomically once all its files are on disk and checked, and only then
        is the previous generation removed.
    model : chainrule.nn.MLP
        Any module with ``state_dict()`` and ``config()``.
    optimizer : optimizer or None
        Saved with its ``state_dict()``.
    state : dict or None
        JSON-serialisable training state (epoch, history, seed, ...); the
        BLAS thread count (``blas_threads``) is added.
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

    Raises
    ------
    OSError
        When a file cannot be written (a full disk, no permission); the
        previous checkpoint is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> import chainrule as cr
    >>> model = cr.nn.MLP([2, 3, 1], output="logistic", rng=0)
    >>> d = save_checkpoint(tempfile.mkdtemp(), model, state={"epoch": 0})
    >>> load_checkpoint(d).model.config() == model.config()
    True
    >>> sorted(p.name for p in d.iterdir())
    ['CURRENT', 'gen-000001']
    """
    directory = Path(directory)
    files = encode_checkpoint(
        model, optimizer, state, config=config, scaler=scaler, extra_arrays=extra_arrays
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_generation(directory, files)
    except OSError as exc:
        raise _write_error(directory, exc) from None
    return directory


def _write_error(directory: Path, exc: OSError) -> OSError:
    what = exc.strerror or str(exc)
    kept = "the previous checkpoint is kept" if committed(directory) else "none was written yet"
    err = OSError(
        f"cannot write the checkpoint in {directory}: {what}"
        f"{f' ({exc.filename})' if exc.filename else ''}; {kept}"
    )
    err.errno = exc.errno
    return err


def _generations(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.iterdir() if _GENERATION.fullmatch(p.name) and p.is_dir()
    )


def _write_generation(directory: Path, files: dict[str, bytes]) -> None:
    remove_leftovers(directory)
    taken = [int(g.removeprefix("gen-")) for g in _generations(directory)]
    name = f"gen-{max(taken, default=0) + 1:06d}"
    staging, final = directory / f".{name}.tmp", directory / name
    try:
        staging.mkdir()
        for fname, blob in files.items():
            write_file_synced(staging / fname, blob)
            fault_point(f"checkpoint {name}: {fname} written")
        fsync_dir(staging)
        _verify(staging, json.loads(files[STATE_FILE]))  # read back: what is on disk is whole
        os.rename(staging, final)
        fsync_dir(directory)
        fault_point(f"checkpoint {name}: complete")
        write_bytes_atomic(directory / POINTER_FILE, f"{name}\n".encode())  # the switch
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if final.exists() and _pointer(directory) != name:
            shutil.rmtree(final, ignore_errors=True)
        raise
    remove_leftovers(directory)


def _pointer(directory: Path) -> str | None:
    try:
        return (directory / POINTER_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def remove_leftovers(directory: str | Path) -> list[str]:
    """Remove what killed or failed writes left in ``directory``; returns the names removed.

    That is every ``.*.tmp`` file or directory and, in a checkpoint directory
    with a ``CURRENT`` pointer, every generation it does not name and the
    files of the older one-directory layout (``train_state.json``,
    ``config.json``, ``*.safetensors``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for p in sorted(directory.glob(".*.tmp")):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p.name)
    current = _pointer(directory)
    if current is not None and (directory / current).is_dir():
        for g in _generations(directory):
            if g != current:
                shutil.rmtree(directory / g, ignore_errors=True)
                removed.append(g)
                fault_point(f"checkpoint: old generation {g} removed")
        # the one-directory layout of older versions: state first, the rest is then no checkpoint
        for legacy in [STATE_FILE, CONFIG_FILE, *(p.name for p in directory.glob("*.safetensors"))]:
            if (directory / legacy).is_file():
                (directory / legacy).unlink()
                removed.append(legacy)
    return removed


def write_in_place(
    directory: str | Path, files: dict[str, bytes], *, more: Callable[[], None] | None = None
) -> None:
    """Write the files of :func:`encode_checkpoint` straight into ``directory`` (a run's top level).

    ``train_state.json`` is removed first and written last, once every other
    file is on disk, so it marks a complete set: killed in between, the
    directory has no ``train_state.json`` (or one whose hashes do not match)
    and readers fall back to the run's ``checkpoint/``. ``more`` writes
    further files of the set (each atomically) before ``train_state.json``.
    """
    directory = Path(directory)
    (directory / STATE_FILE).unlink(missing_ok=True)
    fsync_dir(directory)
    fault_point("final save: old train_state.json removed")
    for name, blob in files.items():
        if name != STATE_FILE:
            write_bytes_atomic(directory / name, blob, sync_dir=False)
    if more is not None:
        more()
    fsync_dir(directory)
    write_bytes_atomic(directory / STATE_FILE, files[STATE_FILE])


def current_dir(directory: str | Path) -> Path:
    """The directory that holds the files of the checkpoint in ``directory``.

    The generation named by ``directory/CURRENT``, or ``directory`` itself when
    it has no pointer (a run's final save, or an older checkpoint).
    """
    directory = Path(directory)
    name = _pointer(directory)
    if name is None:
        if (directory / POINTER_FILE).exists():
            raise CheckpointError(f"{directory / POINTER_FILE}: not a readable text file")
        return directory
    pointer = directory / POINTER_FILE
    if not _GENERATION.fullmatch(name):
        raise CheckpointError(
            f"{pointer}: expected the name of a generation like gen-000001, got {name[:40]!r}"
        )
    if not (directory / name).is_dir():
        raise CheckpointError(f"{pointer}: names {name}, which is missing from {directory}")
    return directory / name


def committed(directory: str | Path) -> bool:
    """Whether ``directory`` holds a checkpoint that was completely written (a ``CURRENT``
    pointer, or ``train_state.json`` in the one-directory layout); its files are not checked."""
    directory = Path(directory)
    return (directory / POINTER_FILE).exists() or (directory / STATE_FILE).exists()


def _verify(directory: Path, state: dict) -> None:
    for name, digest in state.get("files", {}).items():
        path = directory / name
        if not path.is_file():
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
    path = current_dir(directory) / CONFIG_FILE
    cfg = read_json(path)
    if cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a chainrule checkpoint config")
    check_config(path, cfg)
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
        For a missing, truncated, corrupt or inconsistent file, or a field of
        a JSON file with the wrong type or range (naming the file and field).
    """
    cfg = load_config(directory)
    unit = current_dir(directory)
    state = read_json(unit / STATE_FILE, check_train_state)
    if verify:
        _verify(unit, state)
    cls = getattr(nn, cfg.get("model_class", "MLP"), None)
    if cls is None or not hasattr(cls, "from_config"):
        raise CheckpointError(f"{unit}: unknown model class {cfg.get('model_class')!r}")
    try:
        model = cls.from_config(cfg["model"])
        model.load_state_dict(load_arrays(unit / MODEL_FILE))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{unit}: the weights do not fit the architecture ({exc})") from None
    optim_state = load_arrays(unit / OPTIM_FILE) if (unit / OPTIM_FILE).exists() else None
    return Checkpoint(model, optim_state, state)
