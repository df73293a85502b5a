"""The state of one training run and its epoch loop (used by :func:`chainrule.train.fit`)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.core import no_grad, tensor
from chainrule.core.devices import asnumpy
from chainrule.core.namespace import is_foreign
from chainrule.data.augment import augment_images
from chainrule.data.batches import Batch, MiniBatches
from chainrule.data.checks import require_finite
from chainrule.optim.clip import clip_grad_norm_
from chainrule.symbolic.native import NotNative, warn_fallback
from chainrule.symbolic.native_cache import require_numba

from .callbacks import Callback, EarlyStopping, Run
from .checkpoint import STATE_FILE, current_dir, load_arrays, load_checkpoint, save_checkpoint
from .config import FitConfig
from .errors import TrainingDiverged
from .history import History
from .native_epochs import CompiledEpochs, CompiledEvaluation, compiled_targets
from .objective import Objective
from .parallel import Collective
from .progress import Progress
from .scoring import evaluate
from .steps import config_optimizer, on_model_device, param_dtype, train_step

__all__ = ["FitData", "Trainer"]


@dataclass(frozen=True)
class FitData:
    """The arrays of a run: training rows, validation rows and, for images, how to warp them.

    Build it with :meth:`of` from what :func:`fit` accepts.
    """

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    image_shape: tuple[int, ...] | None = None
    scaler: Any = None

    @classmethod
    def of(cls, data: Any) -> FitData:
        """From a :class:`chainrule.data.Dataset`, ``(X, y)`` or ``(X, y, X_val, y_val)``."""
        if isinstance(data, tuple | list):
            if len(data) not in (2, 4):
                raise ValueError("fit: data must be a Dataset, (X, y) or (X, y, X_val, y_val)")
            # the data stay on the host (each mini-batch moves to the model's device):
            # arrays of another library or device are copied there once
            arrays = [asnumpy(a) if is_foreign(a) else a for a in data]
            X, y = arrays[0], arrays[1]
            Xv, yv = (arrays[2], arrays[3]) if len(data) == 4 else (X[:0], y[:0])
            return cls(X, y, Xv, yv)
        try:
            X, y, Xv, yv = data.X_train, data.y_train, data.X_val, data.y_val
        except AttributeError:
            raise TypeError(
                f"fit: data must be a chainrule.data.Dataset or a tuple of arrays, "
                f"got {type(data).__name__}"
            ) from None
        image_shape = getattr(data, "image_shape", None)
        return cls(X, y, Xv, yv, image_shape, getattr(data, "scaler", None))


class Trainer:
    """Holds the model, data, optimizer and objective of a run; see :func:`fit`.

    Parameters
    ----------
    model : chainrule.nn.MLP
        Trained in place.
    data : FitData
        The training and validation arrays.
    config : FitConfig
        The options of the run.
    ctx : Collective or None
        The data-parallel context (None: this process alone).
    optimizer : optimizer or None
        An optimizer built on ``model.parameters()``; None: built from ``config``.
    """

    def __init__(
        self,
        model: Any,
        data: FitData,
        config: FitConfig,
        *,
        ctx: Collective | None = None,
        optimizer: Any = None,
    ) -> None:
        self.model, self.ctx, self.config = model, ctx, config
        self.batch_size, self.seed = config.batch_size, config.seed
        self.augment, self.lam, self.backend = config.augment, config.lam, config.backend
        self.n_out = int(model.layers[-1].W.shape[0])
        self.objective = Objective(model.output, config.loss, self.n_out)
        if self.backend == "textbook" and not self.objective.is_default:
            raise ValueError(
                f"fit: backend 'textbook' supports the output's natural loss only, not "
                f"{self.objective.loss!r} with output {model.output!r}; use backend 'tape'"
            )
        self.dtype = param_dtype(model)
        self._set_data(data)
        rank, size = (0, 1) if ctx is None else (ctx.rank, ctx.size)
        self.batches = MiniBatches(
            self.X, None, self.batch_size, seed=self.seed, shuffle=config.shuffle,
            rank=rank, size=size,
        )  # fmt: skip
        self.bad_ranks: list[int] = []
        self.ckpt_dir: Path | None = None
        self.scheduler: Any = None
        self.run_info: dict = {}
        self.optimizer = optimizer if optimizer is not None else config_optimizer(model, config)
        self.compile_seconds = 0.0  # preparing native code, before (and apart from) any epoch
        self.compiled = self._compile() if config.compile is not None else None
        self.compiled_val = self._compile_validation() if self.compiled is not None else None
        if ctx is not None:  # a mismatch would meet in an all-reduce of different lengths
            ctx.check_same("models and training settings", self._fingerprint())

    def _compile(self) -> CompiledEpochs | None:
        """The native epoch function (``compile="numba"``), or None when the model falls back."""
        start = time.perf_counter()  # compile time: importing Numba, tracing, compiling
        require_numba()
        if self.ctx is not None:
            raise ValueError(
                "fit: compile='numba' trains on one process; drop compile for a distributed run"
            )
        self.T_compiled = compiled_targets(self.objective, self.T, self.dtype)
        try:
            return CompiledEpochs(
                self.model,
                self.objective,
                self.optimizer,
                n_rows=len(self.X),
                batch_size=self.batch_size,
                lam=lambda rows: self.lam,
            )
        except NotNative as e:
            warn_fallback(e.prim, e.reason)
            return None
        finally:
            self.compile_seconds = time.perf_counter() - start

    def _compile_validation(self) -> CompiledEvaluation | None:
        """The validation in native code (with compiled epochs), or None: no validation rows,
        or a model whose forward falls back (then :func:`evaluate` runs on the tape)."""
        if not len(self.Xv):
            return None
        start = time.perf_counter()
        try:
            return CompiledEvaluation(self.model, self.objective, self.Xv, self.yv)
        except NotNative as e:
            warn_fallback(e.prim, e.reason)
            return None
        finally:
            self.compile_seconds += time.perf_counter() - start

    def _fingerprint(self) -> dict[str, Any]:
        """What every rank of a data-parallel run must share: model, data shape and options."""
        options = {k: v for k, v in self.config.to_dict().items() if k != "progress"}
        return {
            **{f"model {k}": v for k, v in self.model.config().items()},
            "training data shape": list(self.X.shape),
            "validation data shape": list(self.Xv.shape),
            **{f"option {k}": v for k, v in options.items()},
        }

    def _set_data(self, data: FitData) -> None:
        X, y = np.asarray(data.X), np.asarray(data.y)
        n_in = int(self.model.layers[0].W.shape[1])
        if X.ndim != 2 or X.shape[1] != n_in:
            raise ValueError(
                f"fit: the model takes inputs of shape (N, {n_in}) but X_train has shape {X.shape}"
            )
        if len(X) != len(y) or len(X) == 0:
            raise ValueError(f"fit: X_train has {len(X)} rows and y_train {len(y)}; need N >= 1")
        if self.augment and (data.image_shape is None or data.scaler is None):
            raise ValueError(
                "fit: augment=True needs image data (a Dataset with image_shape and scaler, "
                "such as digits, mnist or fashion-mnist)"
            )
        for what, a in (
            ("X_train", X),
            ("y_train", y),
            ("X_val", data.X_val),
            ("y_val", data.y_val),
        ):
            require_finite(np.asarray(a), f"fit: {what}")  # one NaN would poison every weight
        self.X_raw, self.y = X, y
        self.X = X.astype(self.dtype, copy=False)
        self.T = self.objective.targets(y, self.dtype)
        self.Xv, self.yv = np.asarray(data.X_val), np.asarray(data.y_val)
        self.scaler = data.scaler
        shape = data.image_shape
        self.image_shape = None if shape is None else (int(shape[0]), int(shape[1]))

    # ------------------------------------------------------------------ one epoch
    def _batch(self, part: Batch, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        idx = part.indices
        if not self.augment:
            return self.X[idx], self.T[idx]
        # one generator per step, drawn for the whole global batch: every rank warps
        # only its rows, with the values one process would draw for them
        rng = part.draws(np.random.default_rng([self.seed, epoch, step]))
        assert self.image_shape is not None  # augment=True needs it: checked in _set_data
        raw = self.scaler.inverse_transform(self.X_raw[idx])
        # shifts in proportion to the image: 2 pixels of 28 (MNIST), 1 of 8 (digits)
        max_shift = max(1, round(min(self.image_shape) / 14))
        warped = augment_images(raw, self.image_shape, rng, max_shift=max_shift)
        return self.scaler.transform(warped).astype(self.dtype), self.T[idx]

    def _step(self, part: Batch, epoch: int, step: int) -> tuple[float, int]:
        """One optimizer step on a global batch (this rank's ``part`` of it).

        Returns the summed loss and correct count over the global batch.
        """
        ctx, local = self.ctx, part.indices
        loss_sum, correct = 0.0, 0
        if len(local):
            loss_sum, correct = self._local_step(part, epoch, step)
        else:  # more ranks than rows in this batch: contribute zero gradients
            for p in self.model.parameters():
                p.grad = None
        if ctx is not None:
            # one collective per step: the weighted gradients, the metrics and one
            # "local loss non-finite" slot per rank, so a divergence names its rank(s)
            bad = np.zeros(ctx.size)
            bad[ctx.rank] = not math.isfinite(loss_sum)
            sums = ctx.average_gradients_(
                self.model.parameters(), part.weight, sums=(loss_sum, correct, *bad)
            )
            loss_sum, correct = float(sums[0]), int(round(sums[1]))
            self.bad_ranks = [r for r in range(ctx.size) if sums[2 + r] > 0]
        if math.isfinite(loss_sum):
            if self.config.clip_norm is not None:
                clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
            self.optimizer.step()
        return float(loss_sum), int(correct)

    def _local_step(self, part: Batch, epoch: int, step: int) -> tuple[float, int]:
        local = part.indices
        xb, tb = self._batch(part, epoch, step)
        xb, tb = on_model_device(self.model, xb), on_model_device(self.model, tb)
        loss, logits = train_step(
            self.model, self.objective, xb, tb, lam=self.lam, backend=self.backend
        )
        correct = 0
        if self.objective.classification:
            if logits is None:
                with no_grad():
                    logits = self.model(tensor(xb)).data
            correct = self.objective.correct(logits, self.y[local])
        return loss * len(local), correct

    def _diverged(self, epoch: int, step: int, steps: int, what: str, value: float) -> None:
        where = ""
        if self.ckpt_dir is not None:
            if (current_dir(self.ckpt_dir) / STATE_FILE).exists():
                where = f" The last good checkpoint in {self.ckpt_dir} is intact."
            else:
                where = f" No checkpoint was written to {self.ckpt_dir} yet."
        ranks = ""
        if self.ctx is not None and self.bad_ranks and what == "training loss":
            names = ", ".join(map(str, self.bad_ranks))
            plural = "s" if len(self.bad_ranks) > 1 else ""
            ranks = f" (non-finite local loss on rank{plural} {names} of {self.ctx.size})"
        lr = getattr(self.optimizer, "lr", None)
        lr_text = f" (now {lr:g})" if isinstance(lr, int | float) else ""
        raise TrainingDiverged(
            f"training diverged at epoch {epoch}, step {step} of {steps}: the {what} is {value}"
            f"{ranks}.{where} Try a lower learning rate{lr_text}, standardised inputs, an L2 "
            "penalty or gradient clipping (clip_norm).",
            epoch=epoch,
            step=step,
        )

    def _compiled_epoch(self, epoch: int) -> Iterator[tuple[float, int, int]]:
        """The summed loss, correct count and rows of each batch of a compiled epoch (all run
        at once, before the first is yielded; the batch whose loss is not finite is last)."""
        assert self.compiled is not None
        order = self.batches.order(epoch)  # one process: the rows of its batches in turn
        losses, logits, _ = self.compiled.run(self.X, self.T_compiled, order)
        starts = np.arange(0, len(order), self.compiled.batch_size)
        rows = np.minimum(self.compiled.batch_size, len(order) - starts)
        ok = np.zeros(len(starts), np.int64)
        if self.objective.classification:  # counted for the whole epoch at once
            ok = np.add.reduceat(self.objective.hits(logits, self.y[order]), starts, dtype=np.int64)
        taken = len(losses)
        return zip((losses * rows[:taken]).tolist(), ok[:taken].tolist(), rows[:taken].tolist())

    def _epoch(self, run: Run, callbacks: list[Callback], prog: Progress) -> dict[str, float]:
        start = time.perf_counter()
        prog.epoch_begin(run.epoch)
        total, correct = 0.0, 0
        self.model.train()
        steps = len(self.batches)
        if self.compiled is not None:
            batches = self._compiled_epoch(run.epoch)
        else:  # one step per batch, taken as the loop below reaches it
            parts = self.batches.epoch(run.epoch)
            batches = (
                (*self._step(part, run.epoch, step), part.global_size)
                for step, part in enumerate(parts, start=1)
            )
        for step, (loss_sum, ok, n) in enumerate(batches, start=1):
            if not math.isfinite(loss_sum):
                prog.close()
                self._diverged(run.epoch, step, steps, "training loss", loss_sum / n)
            total, correct = total + loss_sum, correct + ok
            run.step, run.global_step = step, run.global_step + 1
            prog.batch_end(n, loss_sum / n, ok / n if self.objective.classification else math.nan)
            for cb in callbacks:
                cb.on_batch_end(run, {"loss": loss_sum / n, "batch_size": n})
        return self._epoch_row(run, total, correct, steps, start)

    def _epoch_row(self, run: Run, total: float, correct: int, steps: int, start: float) -> dict:
        n = len(self.X)
        if self.compiled_val is not None:
            val = self.compiled_val.run()
        else:
            val = evaluate(self.model, self.Xv, self.yv, loss=self.objective.loss, ctx=self.ctx)
        if len(self.Xv) and not math.isfinite(val["loss"]):
            self._diverged(run.epoch, steps, steps, "validation loss", val["loss"])
        acc = correct / n if self.objective.classification else math.nan
        lr = getattr(self.optimizer, "lr", math.nan)
        return {
            "epoch": run.epoch,
            "loss": total / n,
            "accuracy": acc,
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "lr": float(lr),
            "time": time.perf_counter() - start,
        }

    # ------------------------------------------------------------------ the run
    def run(
        self,
        *,
        callbacks: list[Callback],
        scheduler: Any = None,
        checkpoint_dir: str | Path | None = None,
        resume_from: str | Path | None = None,
        run_info: dict | None = None,
    ) -> History:
        """Train up to ``config.epochs`` (continuing ``resume_from``); see :func:`fit`."""
        epochs = self.config.epochs
        if scheduler is not None and not hasattr(scheduler, "step"):
            scheduler = scheduler(self.optimizer)
        self.scheduler, self.run_info = scheduler, dict(run_info or {})
        self.ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        root = self.ctx is None or self.ctx.is_root
        history = History(compile_time=self.compile_seconds)
        run = Run(model=self.model, optimizer=self.optimizer, history=history)
        first = 1 if resume_from is None else self._resume(Path(resume_from), run, callbacks)
        steps = len(self.batches)
        prog = Progress(self.config.progress if root else False, epochs, steps)
        for cb in callbacks:
            cb.on_train_begin(run)
        for epoch in range(first, epochs + 1):
            run.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(run)
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite losses are reported
                row = self._epoch(run, callbacks, prog)
            history.append(**row)
            for cb in callbacks:
                cb.on_epoch_end(run, row)
            prog.epoch_end(row)
            if self.scheduler is not None:
                self.scheduler.step()
            if self.ckpt_dir is not None and root:
                self._save(self.ckpt_dir, run, callbacks)
            if run.stop_training:
                prog.message(f"early stopping at epoch {epoch}")
                break
        for cb in callbacks:
            cb.on_train_end(run)
        return history

    def training_config(self) -> dict:
        """The JSON settings of this run: the :class:`FitConfig` fields (with the resolved
        loss and the optimizer's learning rate) and the ``run_info`` given to :meth:`run`."""
        return {
            **self.config.to_dict(),
            "lr": getattr(self.optimizer, "lr", self.config.lr),
            "loss": self.objective.loss,
            **self.run_info,
        }

    def _save(self, directory: Path, run: Run, callbacks: list[Callback]) -> None:
        extra: dict[str, Any] = {}
        best = next((cb for cb in callbacks if isinstance(cb, EarlyStopping)), None)
        if best is not None and best.best_weights is not None:
            extra["best"] = best.best_weights
        if self.scheduler is not None and hasattr(self.scheduler, "state_dict"):
            extra["scheduler"] = self.scheduler.state_dict()
        state = {
            "epoch": run.epoch,
            "global_step": run.global_step,
            "seed": self.seed,
            "rng": {
                "kind": "numpy.default_rng([seed, epoch]) shuffles each epoch; "
                "numpy.default_rng([seed, epoch, step]) draws each step's augmentation"
            },
            "history": run.history.to_dict(),
            "callbacks": [
                {"class": type(cb).__name__, "state": cb.state_dict()} for cb in callbacks
            ],
        }
        save_checkpoint(
            directory,
            self.model,
            self.optimizer,
            state,
            config=self.training_config(),
            scaler=self.scaler,
            extra_arrays=extra,
        )

    def _resume(self, directory: Path, run: Run, callbacks: list[Callback]) -> int:
        model, optim_state, state = load_checkpoint(directory)
        directory = current_dir(directory)  # the generation holding the files
        if model.config() != self.model.config():
            raise ValueError(
                f"fit: the checkpoint in {directory} holds a different architecture "
                f"({model.config()}) from the model being trained ({self.model.config()})"
            )
        if int(state.get("seed", self.seed)) != self.seed:
            warnings.warn(
                f"resuming a run saved with seed {state['seed']} using seed {self.seed}",
                stacklevel=4,
            )
        self.model.load_state_dict(model.state_dict())
        if optim_state is not None:
            self.optimizer.load_state_dict(optim_state)
        hist = History.from_dict(state["history"])
        hist.compile_time = self.compile_seconds  # this process's, not the saved run's
        run.history.__dict__.update(hist.__dict__)
        run.global_step = int(state.get("global_step", 0))
        saved = state.get("callbacks", [])
        for cb, entry in zip(callbacks, saved, strict=False):
            if type(cb).__name__ == entry["class"]:
                cb.load_state_dict(entry["state"])
        best = next((cb for cb in callbacks if isinstance(cb, EarlyStopping)), None)
        if best is not None and (directory / "best.safetensors").exists():
            best.best_weights = load_arrays(directory / "best.safetensors")
        if self.scheduler is not None and (directory / "scheduler.safetensors").exists():
            self.scheduler.load_state_dict(load_arrays(directory / "scheduler.safetensors"))
        return int(state["epoch"]) + 1
