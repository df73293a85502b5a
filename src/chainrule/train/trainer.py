"""The state of one training run and its epoch loop (used by :func:`chainrule.train.fit`)."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .callbacks import Callback, EarlyStopping, Run
from .checkpoint import STATE_FILE, current_dir, load_arrays, load_checkpoint, save_checkpoint
from .errors import TrainingDiverged
from .history import History
from .objective import Objective
from .progress import Progress
from .steps import make_optimizer, param_dtype, train_step

__all__ = ["Trainer"]

BACKENDS = ("tape", "textbook")


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"fit: {name} must be a positive integer, got {value!r}")
    return int(value)


class Trainer:
    """Holds the model, data, optimizer and objective of a run; see :func:`fit`."""

    def __init__(self, model: Any, parts: dict, **kw: Any) -> None:
        self.model, self.ctx = model, kw["ctx"]
        self.batch_size = _check_positive_int("batch_size", kw["batch_size"])
        self.seed, self.shuffle, self.augment = int(kw["seed"]), kw["shuffle"], kw["augment"]
        self.lam, self.backend, self.clip_norm = float(kw["lam"]), kw["backend"], kw["clip_norm"]
        if self.backend not in BACKENDS:
            raise ValueError(f"fit: unknown backend {self.backend!r}; use 'tape' or 'textbook'")
        if not (self.lam >= 0 and math.isfinite(self.lam)):
            raise ValueError(f"fit: lam must be a non-negative number, got {kw['lam']!r}")
        self.n_out = int(model.layers[-1].W.shape[0])
        self.objective = Objective(model.output, kw["loss"], self.n_out)
        if self.backend == "textbook" and not self.objective.is_default:
            raise ValueError(
                f"fit: backend 'textbook' supports the output's natural loss only, not "
                f"{self.objective.loss!r} with output {model.output!r}; use backend 'tape'"
            )
        self.dtype = param_dtype(model)
        self._set_data(parts)
        # the same sharded global batches as chainrule.distributed (one rank when serial)
        from chainrule.distributed.sharding import ShardedBatches

        rank, size = (0, 1) if self.ctx is None else (self.ctx.rank, self.ctx.size)
        self.sampler = ShardedBatches(
            len(self.X),
            self.batch_size,
            rank=rank,
            size=size,
            seed=self.seed,
            shuffle=self.shuffle,
        )
        self.bad_ranks: list[int] = []
        self.ckpt_dir: Path | None = None
        self.optimizer = make_optimizer(
            kw["optimizer"],
            model.parameters(),
            lr=kw["lr"],
            momentum=kw["momentum"],
            nesterov=kw["nesterov"],
        )

    def _set_data(self, parts: dict) -> None:
        X, y = np.asarray(parts["X"]), np.asarray(parts["y"])
        n_in = int(self.model.layers[0].W.shape[1])
        if X.ndim != 2 or X.shape[1] != n_in:
            raise ValueError(
                f"fit: the model takes inputs of shape (N, {n_in}) but X_train has shape {X.shape}"
            )
        if len(X) != len(y) or len(X) == 0:
            raise ValueError(f"fit: X_train has {len(X)} rows and y_train {len(y)}; need N >= 1")
        if self.augment and (parts["image_shape"] is None or parts["scaler"] is None):
            raise ValueError(
                "fit: augment=True needs image data (a Dataset with image_shape and scaler, "
                "such as digits, mnist or fashion-mnist)"
            )
        self.X_raw, self.y = X, y
        self.X = X.astype(self.dtype, copy=False)
        self.T = self.objective.targets(y, self.dtype)
        self.Xv, self.yv = np.asarray(parts["Xv"]), np.asarray(parts["yv"])
        self.image_shape, self.scaler = parts["image_shape"], parts["scaler"]

    # ------------------------------------------------------------------ one epoch
    def _batch(self, part: Any, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        idx = part.indices
        if not self.augment:
            return self.X[idx], self.T[idx]
        from chainrule.data import augment_images
        from chainrule.distributed import ShardDraws

        # one generator per step, drawn for the whole global batch: every rank warps
        # only its rows, with the values one process would draw for them
        rng = np.random.default_rng([self.seed, epoch, step])
        if len(idx) != part.global_size:
            rng = ShardDraws(rng, part.global_size, part.offset, part.offset + len(idx))
        raw = self.scaler.inverse_transform(self.X_raw[idx])
        # shifts in proportion to the image: 2 pixels of 28 (MNIST), 1 of 8 (digits)
        max_shift = max(1, round(min(self.image_shape) / 14))
        warped = augment_images(raw, self.image_shape, rng, max_shift=max_shift)
        return self.scaler.transform(warped).astype(self.dtype), self.T[idx]

    def _step(self, part: Any, epoch: int, step: int) -> tuple[float, int]:
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
            if self.clip_norm is not None:
                from chainrule.optim import clip_grad_norm_

                clip_grad_norm_(self.model.parameters(), self.clip_norm)
            self.optimizer.step()
        return float(loss_sum), int(correct)

    def _local_step(self, part: Any, epoch: int, step: int) -> tuple[float, int]:
        local = part.indices
        xb, tb = self._batch(part, epoch, step)
        loss, logits = train_step(
            self.model, self.objective, xb, tb, lam=self.lam, backend=self.backend
        )
        correct = 0
        if self.objective.classification:
            if logits is None:
                import chainrule as cr

                with cr.no_grad():
                    logits = self.model(cr.tensor(xb)).data
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

    def _epoch(self, run: Run, callbacks: list[Callback], prog: Progress) -> dict[str, float]:
        start = time.perf_counter()
        parts = list(self.sampler.epoch(run.epoch))
        prog.epoch_begin(run.epoch)
        total, correct = 0.0, 0
        self.model.train()
        for step, part in enumerate(parts, start=1):
            n = part.global_size
            loss_sum, ok = self._step(part, run.epoch, step)
            if not math.isfinite(loss_sum):
                prog.close()
                self._diverged(run.epoch, step, len(parts), "training loss", loss_sum / n)
            total, correct = total + loss_sum, correct + ok
            run.step, run.global_step = step, run.global_step + 1
            prog.batch_end(n, loss_sum / n, ok / n if self.objective.classification else math.nan)
            for cb in callbacks:
                cb.on_batch_end(run, {"loss": loss_sum / n, "batch_size": n})
        return self._epoch_row(run, total, correct, len(parts), start)

    def _epoch_row(self, run: Run, total: float, correct: int, steps: int, start: float) -> dict:
        from .loop import evaluate

        n = len(self.X)
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
        epochs: int,
        *,
        callbacks: list[Callback],
        scheduler: Any,
        progress: Any,
        checkpoint_dir: Any,
        resume_from: Any,
        config: dict | None,
    ) -> History:
        epochs = _check_positive_int("epochs", epochs)
        if scheduler is not None and not hasattr(scheduler, "step"):
            scheduler = scheduler(self.optimizer)
        self.scheduler, self.config = scheduler, config
        self.ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        root = self.ctx is None or self.ctx.is_root
        history = History()
        run = Run(model=self.model, optimizer=self.optimizer, history=history)
        first = 1 if resume_from is None else self._resume(Path(resume_from), run, callbacks)
        steps = -(-len(self.X) // self.batch_size)
        prog = Progress(progress if root else False, epochs, steps)
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
                self._save(run, callbacks)
            if run.stop_training:
                prog.message(f"early stopping at epoch {epoch}")
                break
        for cb in callbacks:
            cb.on_train_end(run)
        return history

    def training_config(self) -> dict:
        """The JSON-serialisable settings of this run."""
        return {
            "optimizer": type(self.optimizer).__name__,
            "lr": getattr(self.optimizer, "lr", None),
            "batch_size": self.batch_size,
            "lam": self.lam,
            "seed": self.seed,
            "backend": self.backend,
            "loss": self.objective.loss,
            "augment": self.augment,
            "shuffle": self.shuffle,
            "clip_norm": self.clip_norm,
            **(self.config or {}),
        }

    def _save(self, run: Run, callbacks: list[Callback]) -> None:
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
            self.ckpt_dir,
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
