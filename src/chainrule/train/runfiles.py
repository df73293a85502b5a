"""The JSON files of checkpoints and run directories, checked field by field on read.

A hand-edited or damaged ``train_state.json``, ``config.json`` or
``metrics.json`` gives one :class:`~chainrule.train.CheckpointError` naming the
file and the field, instead of a ``KeyError`` or ``TypeError`` deep inside
resuming or evaluating. :func:`read_json` reads a file and checks it against
one of the schemas below; each schema lists, per field, what it must be and
whether it is required.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CheckpointError

__all__ = [
    "CONFIG",
    "METRICS",
    "TRAIN_STATE",
    "RunWarning",
    "blas_threads",
    "check_config",
    "check_fields",
    "check_metrics",
    "check_train_state",
    "read_json",
    "run_epoch",
]


class RunWarning(UserWarning):
    """Something a user should know about a run directory (it falls back to its checkpoint,
    or it is resumed with another BLAS thread count); the CLI prints it as one line."""


class Field:
    """What one JSON field must be: a description for the error and a test."""

    def __init__(self, what: str, test: Callable[[Any], bool], *, required: bool = False) -> None:
        self.what, self.test, self.required = what, test, required

    def req(self) -> Field:
        """The same field, required."""
        return Field(self.what, self.test, required=True)

    def nullable(self) -> Field:
        """The same field, also accepting null."""
        return Field(f"{self.what} or null", lambda v: v is None or self.test(v), required=False)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:  # NaN and infinities are numbers here (a diverged figure)
    return isinstance(v, int | float) and not isinstance(v, bool)


def _list_of(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(test(x) for x in v)


INT = Field("an integer", _is_int)
COUNT = Field("an integer >= 0", lambda v: _is_int(v) and v >= 0)
POSITIVE = Field("an integer >= 1", lambda v: _is_int(v) and v >= 1)
NUMBER = Field("a number", _is_num)
NONNEG = Field("a number >= 0", lambda v: _is_num(v) and not v < 0)
FRACTION = Field("a number in [0, 1]", lambda v: _is_num(v) and (math.isnan(v) or 0 <= v <= 1))
TEXT = Field("a string", lambda v: isinstance(v, str))
FLAG = Field("true or false", lambda v: isinstance(v, bool))
OBJECT = Field("an object", lambda v: isinstance(v, dict))
NUMBERS = Field("a list of numbers", _list_of(_is_num))
TEXTS = Field("a list of strings", _list_of(lambda x: isinstance(x, str)))


def _files_ok(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str)
        and k
        and os.sep not in k
        and "/" not in k
        and k not in (".", "..")
        and isinstance(h, str)
        and len(h) == 64
        and all(c in "0123456789abcdef" for c in h)
        for k, h in v.items()
    )


def _callbacks_ok(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(c, dict) and isinstance(c.get("class"), str) and isinstance(c.get("state"), dict)
        for c in v
    )


HISTORY = {
    "epoch": Field("a list of integers >= 1", _list_of(lambda x: _is_int(x) and x >= 1)).req(),
    **{k: NUMBERS.req() for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time")},
    "stopped_epoch": POSITIVE.nullable(),
    "best_epoch": POSITIVE.nullable(),
}

TRAIN_STATE = {
    "epoch": COUNT,
    "files": Field("an object mapping file names to SHA-256 hex digests", _files_ok).req(),
    "history": OBJECT,
    "callbacks": Field('a list of {"class": string, "state": object}', _callbacks_ok),
    "seed": INT,
    "global_step": COUNT,
    "final": FLAG,
    "blas_threads": POSITIVE.nullable(),
}

MODEL = {
    "layer_sizes": Field(
        "a list of at least 2 integers >= 1",
        lambda v: _list_of(lambda x: _is_int(x) and x >= 1)(v) and len(v) >= 2,
    ).req(),
    "activation": TEXT.req(),
    "output": TEXT.req(),
    "dtype": TEXT,
    "init": TEXT,
}

TRAINING = {
    "dataset": TEXT,
    "data_seed": INT,
    "data_dir": TEXT.nullable(),
    "task": TEXT.nullable(),
    "optimizer": TEXT,
    "lr": NONNEG,
    "momentum": NUMBER,
    "nesterov": FLAG,
    "early_stopping": FLAG,
    "patience": COUNT,
    "epochs": POSITIVE,
    "batch_size": POSITIVE,
    "lam": NONNEG,
    "seed": INT,
    "backend": TEXT,
    "loss": TEXT.nullable(),
    "augment": FLAG,
    "shuffle": FLAG,
    "clip_norm": NONNEG.nullable(),
    "class_names": TEXTS.nullable(),
    "feature_names": TEXTS,
}

CONFIG = {
    "format": TEXT.req(),
    "version": INT,
    "model_class": TEXT,
    "model": OBJECT.req(),
    "training": OBJECT,
    "scaler": OBJECT.nullable(),
}

METRICS = {
    "dataset": TEXT,
    **{k: FRACTION.nullable() for k in ("test_accuracy", "train_accuracy", "val_accuracy")},
    **{k: NONNEG.nullable() for k in ("test_loss", "train_loss", "val_loss")},
    "test_r2": NUMBER.nullable(),
    "epochs": COUNT,
    "best_epoch": POSITIVE.nullable(),
    "stopped_epoch": POSITIVE.nullable(),
    "train_time_s": NONNEG,
    "n_parameters": COUNT,
    "n_test": COUNT,
}


def check_fields(path: Path, obj: Any, schema: dict[str, Field], where: str = "") -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the field that breaks ``schema``.

    ``where`` prefixes nested field names (``"history."``).

    Examples
    --------
    >>> from pathlib import Path
    >>> try:
    ...     check_fields(Path("train_state.json"), {"epoch": None, "files": {}}, TRAIN_STATE)
    ... except CheckpointError as exc:
    ...     print(exc)
    train_state.json: field 'epoch' must be an integer >= 0, got null
    """
    if not isinstance(obj, dict):
        kind = "an object" if not where else f"field {where.rstrip('.')!r} as an object"
        raise CheckpointError(f"{path}: expected {kind}, got {_show(obj)}")
    for name, field in schema.items():
        if name not in obj:
            if field.required:
                raise CheckpointError(f"{path}: field {where + name!r} is missing")
            continue
        if not field.test(obj[name]):
            raise CheckpointError(
                f"{path}: field {where + name!r} must be {field.what}, got {_show(obj[name])}"
            )


def _show(v: Any) -> str:
    text = json.dumps(v, allow_nan=True)
    return text if len(text) <= 40 else text[:37] + "..."


def check_train_state(path: Path, state: dict) -> None:
    """Check a ``train_state.json`` object, its history and their agreement."""
    check_fields(path, state, TRAIN_STATE)
    hist = state.get("history")
    if hist is None:
        return
    check_fields(path, hist, HISTORY, "history.")
    n = len(hist["epoch"])
    for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"):
        if len(hist[k]) != n:
            raise CheckpointError(
                f"{path}: field 'history.{k}' has {len(hist[k])} entries, "
                f"'history.epoch' has {n}; they must be equal"
            )
    if "epoch" in state and n != state["epoch"]:
        raise CheckpointError(
            f"{path}: field 'epoch' is {state['epoch']} but 'history' holds {n} epochs"
        )


def run_epoch(path: Path, state: dict) -> int:
    """The ``epoch`` of a run's ``train_state.json`` (at ``path``), which a run must record."""
    if "epoch" not in state:
        raise CheckpointError(f"{path}: field 'epoch' is missing")
    return int(state["epoch"])


def check_config(path: Path, cfg: dict) -> None:
    """Check a ``config.json`` object: the architecture, training settings and scaler."""
    check_fields(path, cfg, CONFIG)
    check_fields(path, cfg["model"], MODEL, "model.")
    check_fields(path, cfg.get("training", {}), TRAINING, "training.")
    scaler = cfg.get("scaler")
    if scaler is not None:
        check_fields(path, scaler, {"mean": NUMBERS.req(), "std": NUMBERS.req()}, "scaler.")
        n_in = cfg["model"]["layer_sizes"][0]
        if not len(scaler["mean"]) == len(scaler["std"]) == n_in:
            raise CheckpointError(
                f"{path}: fields 'scaler.mean' and 'scaler.std' must hold {n_in} numbers "
                f"each (the model's inputs), got {len(scaler['mean'])} and {len(scaler['std'])}"
            )


def read_json(path: Path, check: Callable[[Path, dict], None] | None = None) -> dict:
    """Read a JSON object from ``path`` and check it (``check(path, obj)`` raises on a bad field).

    Raises
    ------
    CheckpointError
        For a missing file, invalid JSON, a non-object or a bad field, naming the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: file not found; is {path.parent} a chainrule run or checkpoint directory?"
        ) from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise CheckpointError(f"{path}: not a readable text file ({exc})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {_show(obj)}")
    if check is not None:
        check(path, obj)
    return obj


def check_metrics(path: Path, metrics: dict) -> None:
    """Check a ``metrics.json`` object."""
    check_fields(path, metrics, METRICS)


def blas_threads() -> int | None:
    """The number of threads the BLAS library uses now, or None when it cannot be told.

    Asks threadpoolctl when it is installed (the libraries loaded are looked up
    once, their thread counts every time), else reads ``OPENBLAS_NUM_THREADS``,
    ``MKL_NUM_THREADS`` and ``OMP_NUM_THREADS``.
    """
    counts = [int(lib.num_threads) for lib in _blas_libraries()]
    if counts:
        return max(counts)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


@functools.lru_cache(maxsize=1)
def _blas_libraries() -> tuple[Any, ...]:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return ()
    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
