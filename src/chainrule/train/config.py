"""The options of a training run, in one documented dataclass: :class:`FitConfig`.

:func:`chainrule.train.fit`, the ``chainrule train`` command, ``--resume``
and the scikit-learn estimators all build a :class:`FitConfig`; a run
directory's ``config.json`` records its fields (``"training"``), and resuming
reads them back with :meth:`FitConfig.from_dict`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from chainrule.core.devices import device_name

from .objective import LOSSES

__all__ = ["FitConfig"]

OPTIMIZERS = ("adam", "sgd")
BACKENDS = ("tape", "textbook")
COMPILERS = ("numba",)
PROGRESS = ("bar", "lines")


def _is_device_name(text: str) -> bool:
    # a device name exactly as chainrule writes it (the CLI lower-cases what users type)
    try:
        return device_name(text) == text
    except ValueError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


@dataclass(frozen=True)
class FitConfig:
    """Every option of :func:`chainrule.train.fit`, validated when built.

    Build one with keywords, change it with :meth:`replace` (unknown names are
    refused, as scikit-learn's ``set_params`` does), record it with
    :meth:`to_dict` and read it back with :meth:`from_dict`.

    Parameters
    ----------
    optimizer : {"adam", "sgd"}
        The optimizer.
    lr : float
        Learning rate, > 0.
    momentum : float
        SGD's momentum, in [0, 1).
    nesterov : bool
        Nesterov momentum for SGD.
    betas : tuple of float
        Adam's moment decay rates, each in [0, 1).
    eps : float
        Adam's denominator epsilon, > 0.
    lam : float
        L2 penalty ``lam/2 * sum ||W||_F^2`` added to the batch loss, >= 0.
    clip_norm : float or None
        Clip the global gradient norm to this value before each step.
    loss : {"auto", "cross_entropy", "mse"} or None
        None/"auto": the output's natural loss.
    backend : {"tape", "textbook"}
        Reverse-mode autodiff, or the chapter's delta recursion
        (:func:`chainrule.nn.textbook.backprop`).
    compile : {None, "numba"}
        ``"numba"``: run whole epochs (mini-batch loop, forward, backward, update)
        in one native function (:mod:`chainrule.train.native_epochs`; needs
        ``pip install "chainrule[fast]"``), with the results of the uncompiled
        loop to rounding. The validation's forward runs in native code too, its
        loss in the loss's own NumPy code: the tape's figures for the same weights
        (bit for bit in float64, but to rounding with ``tanh`` hidden layers, whose
        native ``tanh`` is the C library's, not NumPy's). Per-batch callbacks and
        the progress bar run after each epoch; not with ``augment``, ``clip_norm``,
        the textbook backend or several processes. A model the native backend cannot compile trains
        uncompiled, with a warning. The time spent tracing and compiling (or
        loading Numba's disk cache, ``$CHAINRULE_CACHE``) is the returned
        history's ``compile_time``, apart from the epochs' ``time``.
    batch_size : int
        Rows per (global) mini-batch.
    shuffle : bool
        Visit rows in a new random order each epoch.
    augment : bool
        Random shifts, rotations and zooms of image data (needs a Dataset with
        ``image_shape`` and ``scaler``).
    seed : int
        Seed of shuffling and augmentation; the same seed, model and data give
        the same weights.
    epochs : int
        Total number of epochs (a resumed run continues up to it).
    early_stopping : bool
        Stop when the monitored loss (validation loss if there is validation
        data, else training loss) has not improved for ``patience`` epochs,
        and restore the best weights.
    patience : int
        See ``early_stopping``.
    progress : bool or {"bar", "lines"}
        True: a tqdm bar on a terminal, one line per epoch otherwise; False: silent.
    distributed : bool or None
        False: one process. True: data-parallel over the MPI ranks (mpi4py).
        None: data-parallel exactly when the process was started by an MPI
        launcher (``mpiexec``) with more than one process.
    device : str or None
        Where to train: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (CuPy, the ``gpu``
        extra) or ``"auto"`` (CUDA when CuPy finds a GPU), or an array-API
        namespace or device object (not recorded by :meth:`to_dict`); None: where
        the model is. The model is moved there once and each mini-batch once; like
        ``progress``, it is not a setting of the run (checkpoints load anywhere).

    Examples
    --------
    >>> from chainrule.train import FitConfig
    >>> cfg = FitConfig(lr=0.01, epochs=5)
    >>> cfg.replace(batch_size=16).batch_size
    16
    >>> FitConfig(lr=-1)
    Traceback (most recent call last):
    ...
    ValueError: FitConfig: lr must be a positive finite number (the learning rate), got -1
    >>> cfg.replace(lrr=0.1)
    Traceback (most recent call last):
    ...
    TypeError: FitConfig: unknown option 'lrr' (did you mean 'lr'?)
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lam: float = 0.0
    clip_norm: float | None = None
    loss: str | None = None
    backend: str = "tape"
    compile: str | None = None
    batch_size: int = 64
    shuffle: bool = True
    augment: bool = False
    seed: int = 0
    epochs: int = 20
    early_stopping: bool = False
    patience: int = 5
    progress: bool | str = field(default=True, compare=False)
    distributed: bool | None = False
    device: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for problem in self._problems():
            raise ValueError(f"FitConfig: {problem}")
        object.__setattr__(self, "optimizer", self.optimizer.lower())
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def _problems(self) -> list[str]:
        out = []

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                out.append(f"{name} must be {what}, got {getattr(self, name)!r}")

        def positive(name: str) -> None:
            v = getattr(self, name)
            need(_is_number(v) and v > 0 and math.isfinite(v), name, "a positive finite number")

        def choice(name: str, allowed: tuple[str, ...]) -> None:
            v = getattr(self, name)
            folded = v.lower() if isinstance(v, str) and name == "optimizer" else v
            if not (isinstance(v, str) and folded in allowed):
                out.append(f"unknown {name} {v!r}; use one of {', '.join(map(repr, allowed))}")

        choice("optimizer", OPTIMIZERS)
        v = self.lr
        need(_is_number(v) and v > 0 and math.isfinite(v), "lr",
             "a positive finite number (the learning rate)")  # fmt: skip
        need(_is_number(self.momentum) and 0 <= self.momentum < 1, "momentum", "in [0, 1)")
        betas = self.betas
        need(isinstance(betas, tuple | list) and len(betas) == 2
             and all(_is_number(b) and 0 <= b < 1 for b in betas),
             "betas", "two numbers in [0, 1)")  # fmt: skip
        positive("eps")
        need(_is_number(self.lam) and self.lam >= 0 and math.isfinite(self.lam),
             "lam", "a non-negative finite number")  # fmt: skip
        if self.clip_norm is not None:
            positive("clip_norm")
        if self.loss is not None:
            choice("loss", LOSSES)
        choice("backend", BACKENDS)
        if self.compile is not None:
            choice("compile", COMPILERS)
            need(self.backend == "tape", "compile", "None with backend 'textbook'")
            need(not self.augment, "compile", "None with augment=True")
            need(self.clip_norm is None, "compile", "None with clip_norm")
            need(self.device in (None, "cpu"), "compile",
                 "None with a device other than 'cpu' (native code runs on the CPU)")  # fmt: skip
        for name in ("batch_size", "epochs", "patience"):
            v = getattr(self, name)
            need(_is_int(v) and v > 0, name, "a positive integer")
        need(_is_int(self.seed) and self.seed >= 0, "seed", "an integer >= 0")
        for name in ("nesterov", "shuffle", "augment", "early_stopping"):
            need(isinstance(getattr(self, name), bool | np.bool_), name, "True or False")
        need(isinstance(self.progress, bool) or self.progress in PROGRESS, "progress",
             "True, False, 'bar' or 'lines'")  # fmt: skip
        need(self.distributed is None or isinstance(self.distributed, bool), "distributed",
             "True, False or None")  # fmt: skip
        need(not isinstance(self.device, str) or _is_device_name(self.device), "device",
             "'cpu', 'cuda', 'cuda:N' (N a GPU number), 'auto' (lower case) or None")  # fmt: skip
        return out

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The names of the options, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def check_names(cls, names: Any, what: str = "FitConfig") -> None:
        """Refuse option names that are not fields, suggesting the closest one.

        Raises
        ------
        TypeError
            Naming the first unknown option and the nearest valid name.
        """
        valid = cls.option_names()
        for name in names:
            if name not in valid:
                close = difflib.get_close_matches(name, valid, n=1)
                hint = (
                    f" (did you mean {close[0]!r}?)"
                    if close
                    else (f"; valid options: {', '.join(valid)}")
                )
                raise TypeError(f"{what}: unknown option {name!r}{hint}")

    def replace(self, **changes: Any) -> FitConfig:
        """A copy with ``changes`` applied (validated; unknown names are refused)."""
        self.check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values (what a run's ``config.json`` records)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        if not isinstance(self.device, str):  # a namespace or device object: not JSON
            out["device"] = None
        return out

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> FitConfig:
        """The config recorded by :meth:`to_dict`; other keys are ignored.

        Runs written before a field existed (or that recorded None for it) get
        its default; an optimizer recorded by its class name (``"Adam"``) is read
        as its option name.
        """
        nullable = {f.name for f in fields(cls) if f.default is None}
        known = {
            k: v
            for k, v in saved.items()
            if k in cls.option_names() and (v is not None or k in nullable)
        }
        if "betas" in known:
            known["betas"] = tuple(known["betas"])
        if known.get("loss") == "auto":
            known["loss"] = None
        return cls(**known)
