"""Whole training epochs in one native function: ``fit(..., compile="numba")``.

The training step (forward, loss, backward and the optimiser's update) is
traced once per mini-batch shape into a static graph, as ``chainrule.jit``
does, with the optimiser's own update rule (its ``update`` method, traced with
chainrule operations; see :class:`chainrule.optim.Adam`), and compiled by the
native backend (:mod:`chainrule.symbolic.native`). A generated epoch function
loops over the mini-batches of a given row order: it gathers each batch, calls
the step and carries the new parameters and optimiser buffers to the next
step, with no Python in between. The order is drawn in Python by the caller
(the same generator as the uncompiled loop), so both visit the same batches.

The generated source reads the number of rows, the batch size and the sizes of
each batch from its arguments (see :class:`chainrule.symbolic.native.Writer`):
one architecture (layer sizes, dtype, loss, optimiser and its settings, whether
an L2 term is there) is compiled once, and fits of other datasets or batch
sizes load that machine code from Numba's disk cache (see
:func:`chainrule.symbolic.native_cache.cache_dir`). A batch size that equals a
layer width, or a last batch of one row, writes other source (compiled once
more). The generated function of a training setup (the architecture, the rows,
the batch size and the L2 coefficients) is kept for the rest of the process, so
a second fit of the same setup skips the tracing.

:class:`CompiledEvaluation` is the validation of a compiled fit: the model's
forward on the validation rows in one native function (built, cached and compiled per
architecture the same way) and the loss's own NumPy code on its logits, so an epoch of
``fit(..., compile="numba")`` runs no tape operation and validates with the tape's
figures.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import chainrule as cr
from chainrule.core import no_grad
from chainrule.nn.regularization import l2_penalty
from chainrule.optim.optimizer import run_time_settings
from chainrule.symbolic import simplify, trace
from chainrule.symbolic.ir import Graph
from chainrule.symbolic.native import NotNative, generate_native
from chainrule.symbolic.native_cache import (
    cache_dir,
    cache_files,
    compile_signature,
    configured_cache_dir,
    load,
    require_numba,
)

from .objective import Objective
from .scoring import EVAL_BATCH_SIZE

__all__ = ["CompiledEpochs", "CompiledEvaluation", "compiled_before", "compiled_targets"]


def compiled_targets(objective: Objective, T: np.ndarray, dtype: Any) -> np.ndarray:
    """Targets as the compiled step takes them: class labels of a softmax cross-entropy as
    one-hot rows (the loss builds the same rows from labels), everything else unchanged."""
    if objective.output == "softmax" and T.ndim == 1:
        return np.eye(objective.n_outputs, dtype=dtype)[T]
    return np.ascontiguousarray(T.reshape(len(T), -1), dtype=dtype)


@contextmanager
def _parameters_replaced(model: Any, values: Sequence[Any]) -> Iterator[None]:
    """Run the model with ``values`` in place of its parameters (in ``parameters()`` order)."""
    slots = []
    for (name, p), v in zip(model.named_parameters(), values, strict=True):
        *path, attr = name.split(".")
        owner = model
        for part in path:
            owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
        slots.append((owner, attr, p))
        object.__setattr__(owner, attr, v)  # not a Parameter: bypass the registration
    try:
        yield
    finally:
        for owner, attr, p in slots:
            object.__setattr__(owner, attr, p)


@dataclass(frozen=True)
class _Built:
    """What the tracing of a training setup produces (see :meth:`CompiledEpochs._build`)."""

    epoch_fn: Any
    consts: list[Any]
    kept: list[bool]


# the generated epoch (and evaluation) functions of this process, by training setup (least
# recently used dropped first): a refit of the same setup (cross-validation, a grid search)
# skips tracing
_BUILT: OrderedDict[tuple, Any] = OrderedDict()
_BUILT_MAX = 32
# CPython's compiler passes more positional arguments than this as a tuple (*args)
_INLINE_MAX_ARGS = 30


def _remembered(key: tuple, build: Callable[[], Any]) -> Any:
    """``_BUILT[key]``, built by ``build()`` when missing (the least recently used dropped)."""
    built = _BUILT.get(key)
    if built is None:
        built = build()
        _BUILT[key] = built
        while len(_BUILT) > _BUILT_MAX:
            _BUILT.popitem(last=False)
    _BUILT.move_to_end(key)
    return built


def _model_key(model: Any, objective: Objective | None, training: bool | None) -> tuple:
    """What a graph of ``model`` (traced in mode ``training``) and ``objective`` (None: the
    forward alone) depends on (not the parameters' values)."""
    return (
        type(model),
        repr(model.config()),
        training,
        tuple((p.shape, p.dtype.str) for p in model.parameters()),
        None if objective is None else (objective.output, objective.loss, objective.n_outputs),
    )


def _batch_sizes(n_rows: int, batch_size: int) -> list[int]:
    """The sizes of the batches of ``n_rows`` rows: the full batch, then the last one's rows
    when fewer."""
    batch_size = min(batch_size, n_rows)
    return sorted({batch_size, n_rows % batch_size} - {0}, reverse=True)


def _setup(
    model: Any,
    objective: Objective,
    optimizer: Any,
    n_rows: int,
    batch_size: int,
    lam: Callable[[int], float],
    scale: float,
) -> tuple[list[int], tuple[float, ...], tuple, tuple]:
    """The batch sizes of an epoch (the full batch, then the last one's rows when fewer),
    their L2 coefficients, the key of the training setup (everything the traced step
    depends on; the parameters' values do not count) and the key of its architecture
    (the part the generated source depends on). Their ``repr`` is the same in every
    process."""
    batch_size = min(batch_size, n_rows)
    sizes = _batch_sizes(n_rows, batch_size)
    lams = tuple(float(lam(rows)) for rows in sizes)
    arch = (
        *_model_key(model, objective, getattr(model, "training", None)),
        type(optimizer),
        _scalar_settings(optimizer),
        any(lams),
        float(scale) != 1.0,
    )
    return sizes, lams, (*arch, n_rows, batch_size, lams, float(scale)), arch


def _record(arch: tuple, root: Path | None = None) -> Path:
    """The file recording that the epochs of architecture ``arch`` were compiled (in the
    cache directory ``root``; default :func:`cache_dir`)."""
    digest = hashlib.sha1(repr(arch).encode()).hexdigest()[:20]
    return (cache_dir() if root is None else root) / "epochs" / digest


def compiled_before(
    model: Any,
    objective: Objective,
    optimizer: Any,
    *,
    n_rows: int,
    batch_size: int,
    lam: Callable[[int], float] = lambda rows: 0.0,
    scale: float = 1.0,
) -> bool:
    """Whether the epochs of this training setup's architecture (arguments as
    :class:`CompiledEpochs`) were compiled before, in this process or (recorded in the
    cache directory) an earlier one, for any number of rows and batch size. Cheap: nothing
    is traced and Numba is not imported; a True answer is a hint
    (:attr:`CompiledEpochs.ready` checks Numba's cache itself)."""
    _, _, key, arch = _setup(model, objective, optimizer, n_rows, batch_size, lam, scale)
    built = _BUILT.get(key)
    if built is not None and built.epoch_fn.signatures:
        return True
    try:  # where configured, created nor checked: a fit on the tape leaves no trace there
        return _record(arch, configured_cache_dir()).is_file()
    except OSError:  # unreadable: nothing recorded that this process could use
        return False


def _compile_for(fn: Any, examples: Sequence[Any], what: str, *, load_only: bool = False) -> bool:
    """Compile Numba dispatcher ``fn`` for the types of ``examples`` (or load it from the disk
    cache; with ``load_only``, only load it: see
    :func:`~chainrule.symbolic.native_cache.compile_signature`). Returns whether it is ready.

    Raises
    ------
    NotNative
        Numba rejected the generated code of ``what``.
    """
    numba = require_numba()
    sig = tuple(numba.typeof(a) for a in examples)
    try:
        return compile_signature(fn, sig, load_only=load_only)
    except Exception as e:  # Numba rejected the generated code
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotNative(what, f"Numba could not compile it ({first[:200]})") from e


def _kinds(consts: list[Any]) -> list[tuple]:
    """The type of each constant as Numba types it (type, dtype, dimensions)."""
    return [(type(c), getattr(c, "dtype", None), np.ndim(c)) for c in consts]


def _scalar_settings(obj: Any) -> tuple:
    """The plain scalar (and tuple) attributes of ``obj`` (an optimiser's settings) as a
    sorted tuple, but its step count and the settings its ``update`` takes through
    ``hyper(t)`` at run time (:func:`~chainrule.optim.optimizer.run_time_settings`: the
    learning rate of SGD and Adam, which schedules change), so one setup serves every rate."""
    return tuple(
        sorted(
            (k, v)
            for k, v in vars(obj).items()
            if isinstance(v, bool | int | float | str | tuple)
            and k not in ("step_count", *run_time_settings(obj))
        )
    )


class CompiledEpochs:
    """A model's training epochs compiled into one native function.

    Parameters
    ----------
    model : chainrule.nn.Module
        Trained in place (its parameter arrays are overwritten after each epoch).
    objective : Objective
        The loss.
    optimizer : chainrule.optim.Optimizer
        Must define ``update`` and ``hyper`` (SGD, Adam); its buffers and step
        count are kept up to date.
    n_rows, batch_size : int
        Rows per epoch and per mini-batch (the last one may be smaller).
    lam : callable
        ``lam(rows)``: the L2 coefficient of a batch of ``rows`` rows.
    scale : float
        The loss and gradients are multiplied by it (scikit-learn's squared error
        is half chainrule's).
    compile : bool
        Compile (or load from Numba's disk cache) now; False leaves it to
        :meth:`compile` (see :attr:`ready`).

    Attributes
    ----------
    compile_seconds : float
        Seconds spent tracing, generating and compiling (or loading) the native
        code so far; no part of any epoch.

    Raises
    ------
    NotNative
        When the step holds an operation the native backend cannot compile.
    """

    def __init__(
        self,
        model: Any,
        objective: Objective,
        optimizer: Any,
        *,
        n_rows: int,
        batch_size: int,
        lam: Callable[[int], float] = lambda rows: 0.0,
        scale: float = 1.0,
        compile: bool = True,
    ) -> None:
        start = time.perf_counter()
        if not (hasattr(optimizer, "update") and hasattr(optimizer, "hyper")):
            raise NotNative(type(optimizer).__name__, "the optimiser defines no update rule")
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.params = model.parameters()
        self.dtype = self.params[0].dtype
        self.n_out = int(model.layers[-1].W.shape[0])
        self.n_rows, self.batch_size = n_rows, min(batch_size, n_rows)
        self.n_hyper = len(optimizer.hyper(1))
        self.n_bufs = len(optimizer.buffer_names)
        sizes, lams, key, arch = _setup(model, objective, optimizer, n_rows, batch_size, lam, scale)
        self.key, self.arch = key, arch
        built = _remembered(key, lambda: self._build(sizes, lams, scale))
        self.kept, self.consts = built.kept, built.consts
        self.epoch_fn = built.epoch_fn
        self.compile_seconds = time.perf_counter() - start
        if compile:
            self.compile()

    def _build(self, sizes: list[int], lams: tuple[float, ...], scale: float) -> _Built:
        """Trace the step of every batch size and load the generated epoch function.

        The steps of the full and the last batch are one function ``step`` when their
        source is the same (sizes read at run time), called once in the loop with the
        constants of a full batch or of the last one (the full batch's when every batch
        is full); else the last batch calls ``step_last``."""
        sources: list[str] = []
        consts: list[list[Any]] = []
        kernels: dict[str, Any] = {}
        kept: list[bool] = []
        for rows, lam in zip(sizes, lams, strict=True):
            graph = simplify(self._trace(rows, lam, scale))
            src, w = generate_native(graph, "step", into_caller=False)
            if sources and (src != sources[0] or _kinds(w.consts) != _kinds(consts[0])):
                # its own name, and its own names for its helpers (step_last_loop0, ...)
                src, w = generate_native(graph, "step_last", into_caller=False)
                sources.append(src)
            elif not sources:
                sources.append(src)
            consts.append(w.consts)
            kernels.update(w.kernels)
            if rows == sizes[0]:  # a buffer returned as it came in is not the optimiser's
                kept = self._kept_buffers(graph)
        if len(consts) == 1:
            consts.append(consts[0])
        sources.append(self._epoch_source(len(sources) == 2, [len(c) for c in consts]))
        # the steps are inlined into the epoch: Numba types and LLVM optimises them once;
        # but CPython passes more than 30 positional arguments as *args, whose call Numba
        # cannot inline (a deep network with Adam), so those steps are called instead
        n_p = len(self.params)
        n_args = n_p + n_p * self.n_bufs + self.n_hyper + 2 + max(len(c) for c in consts)
        inline = ("step", "step_last") if n_args <= _INLINE_MAX_ARGS else ()
        epoch_fn = load("\n\n".join(sources), kernels, inline=inline).epoch
        return _Built(epoch_fn, [c for cs in consts for c in cs], kept)

    @property
    def ready(self) -> bool:
        """Whether the machine code exists already: compiled in this process or in Numba's
        disk cache (so :meth:`compile` loads it instead of compiling it)."""
        if self.epoch_fn.signatures:
            return True
        return any(f.suffix == ".nbi" for f in cache_files(self.epoch_fn, "epoch"))

    def load(self) -> bool:
        """Load the machine code (compiled in this process, or from Numba's disk cache) and
        never compile it: whether it could be loaded. False when it is not in the cache or
        the cache cannot be read (a corrupt or truncated file, written by another Numba
        version); :meth:`compile` would then compile it (10-30 s)."""
        start = time.perf_counter()
        try:
            return _compile_for(self.epoch_fn, self._examples(), "training step", load_only=True)
        finally:
            self.compile_seconds += time.perf_counter() - start

    @property
    def cache_location(self) -> Path:
        """The directory of Numba's disk-cache files of the epoch function."""
        files = cache_files(self.epoch_fn, "epoch")
        return files[0].parent if files else Path(inspect.getfile(self.epoch_fn.py_func)).parent

    def forget(self) -> None:
        """Remove this setup's record (see :func:`compiled_before`): for a record whose machine
        code is gone from Numba's cache (:attr:`ready` is False) or cannot be loaded from it
        (:meth:`load` is False), so later fits stop tracing the setup to look."""
        try:
            _record(self.arch, configured_cache_dir()).unlink(missing_ok=True)
        except OSError:  # an unusable cache directory: nothing to forget there
            pass

    def _examples(self) -> list[Any]:
        """Arguments of the types the epoch function is compiled for."""
        d, n_in = self.dtype, self.params[0].shape[1]
        return [
            np.zeros((1, n_in), d),
            np.zeros((1, self.n_out), d),
            np.zeros(1, np.int64),
            np.zeros((1, self.n_hyper)),
            self.batch_size,
            *[p.data for p in self.params],
            *[np.zeros_like(p.data) for p in self.params for _ in range(self.n_bufs)],
            *self.consts,
        ]

    def compile(self) -> None:
        """Compile (or load from the disk cache) now, so that a failure falls back."""
        start = time.perf_counter()
        try:
            _compile_for(self.epoch_fn, self._examples(), "training step")
        finally:
            self.compile_seconds += time.perf_counter() - start
        record = _record(self.arch)
        try:  # for compiled_before in a later process (a hint: nothing fails without it)
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(Path(inspect.getfile(self.epoch_fn.py_func)).stem)
        except OSError:
            pass

    def _trace(self, rows: int, lam: float, scale: float) -> Graph:
        n_p, n_b, n_h = len(self.params), self.n_bufs, self.n_hyper
        opt, model, objective = self.optimizer, self.model, self.objective

        def step(*flat: Any) -> Any:
            ps = flat[:n_p]
            bufs = flat[n_p : n_p + n_p * n_b]
            hyper = flat[n_p + n_p * n_b : n_p + n_p * n_b + n_h]
            xb, tb = flat[-2:]

            def loss_of(*ps: Any) -> Any:
                with _parameters_replaced(model, ps):
                    logits = model(xb)
                    loss = objective(logits, tb)
                    if lam:
                        loss = loss + l2_penalty(model, lam)
                return loss, logits

            (loss, logits), grads = cr.value_and_grad(
                loss_of, argnums=tuple(range(n_p)), has_aux=True
            )(*ps)
            if scale != 1.0:
                loss, grads = loss * scale, [g * scale for g in grads]
            new_ps, new_bufs = [], []
            for i, (p, g) in enumerate(zip(ps, grads, strict=True)):
                p_new, *b_new = opt.update(cr, p, g, *bufs[i * n_b : (i + 1) * n_b], *hyper)
                new_ps.append(p_new)
                new_bufs.extend(b_new)
            return (loss, logits, *new_ps, *new_bufs)

        d = self.dtype
        example = [p.data for p in self.params]
        example += [np.zeros_like(p.data) for p in self.params for _ in range(n_b)]
        example += [np.zeros((), d)] * n_h
        example += [
            np.zeros((rows, self.params[0].shape[1]), d),
            np.zeros((rows, self.n_out), d),
        ]
        return trace(step, *example)

    def _kept_buffers(self, graph: Graph) -> list[bool]:
        n_p, n_b = len(self.params), self.n_bufs
        ins = graph.inputs[n_p : n_p + n_p * n_b]
        outs = graph.outputs[2 + n_p :]
        return [o is not i for i, o in zip(ins, outs, strict=True)]

    def _epoch_source(self, last: bool, n_consts: list[int]) -> str:
        """The epoch function: ``step`` for every batch, with the constants of a full batch
        or of the smaller last one, or ``step_last`` for that one when ``last``."""
        n_p, n_b, n_h = len(self.params), self.n_bufs, self.n_hyper
        ps = [f"p{i}" for i in range(n_p)]
        bs = [f"b{i}" for i in range(n_p * n_b)]
        hs = [f"h{i}" for i in range(n_h)]
        cs = [f"c{i}" for i in range(sum(n_consts))]
        dt = f"np.{self.dtype.name}"
        common = ps + bs + hs + ["xb", "tb"]
        full, rest = cs[: n_consts[0]], cs[n_consts[0] :]
        if last:
            call = [
                "        if e - s == batch:",
                f"            out = step({', '.join(common + full)})",
                "        else:",
                f"            out = step_last({', '.join(common + rest)})",
            ]
        else:  # one call of the step (inlined once), its constants chosen per batch
            ks = [f"k{i}" for i in range(n_consts[0])]
            call = [
                "        whole = e - s == batch",
                *[f"        {k} = {a} if whole else {b}" for k, a, b in zip(ks, full, rest)],
                f"        out = step({', '.join(common + ks)})",
            ]
        lines = [
            f"def epoch(X, T, order, hyper, batch, {', '.join(ps + bs + cs)}):",
            "    n = order.shape[0]",
            "    nb = hyper.shape[0]",
            "    losses = np.zeros(nb, np.float64)",
            f"    logits = np.empty((n, {self.n_out}), {dt})",
            *[f"    {h} = np.empty((), {dt})" for h in hs],
            "    done = nb",
            "    for k in range(nb):",
            "        s = k * batch",
            "        e = min(s + batch, n)",
            "        idx = order[s:e]",
            "        xb = X[idx]",
            "        tb = T[idx]",
            *[f"        {h}[()] = hyper[k, {j}]" for j, h in enumerate(hs)],
            *call,
            "        loss = out[0][()]",
            "        losses[k] = loss",
            "        if not math.isfinite(loss):",
            "            done = k",
            "            break",
            "        logits[s:e] = out[1]",
            *[f"        {p} = out[{2 + i}]" for i, p in enumerate(ps)],
            *[f"        {b} = out[{2 + n_p + i}]" for i, b in enumerate(bs)],
            f"    return losses, logits, done, ({', '.join(ps + bs)},)",
        ]
        return "\n".join(lines) + "\n"

    def run(self, X: np.ndarray, T: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, Any, int]:
        """One epoch over the rows of ``X`` in ``order``: update the model and the optimiser.

        Returns the loss of each mini-batch, the logits of every row (in ``order``,
        computed before that batch's update) and the number of steps taken (fewer
        than the batches when a loss is not finite: that batch takes no step).
        """
        opt = self.optimizer
        nb = -(-len(order) // self.batch_size)
        hyper = np.array([opt.hyper(opt.step_count + 1 + k) for k in range(nb)], np.float64)
        hyper = hyper.reshape(nb, self.n_hyper)
        bufs = []
        for i, p in enumerate(self.params):
            for name in opt.buffer_names:
                b = opt.buffers[name][i]
                bufs.append(np.zeros_like(p.data) if b is None else b)
        arrays = [p.data for p in self.params]
        losses, logits, done, state = self.epoch_fn(
            X, T, np.asarray(order, np.int64), hyper, self.batch_size, *arrays, *bufs, *self.consts
        )
        n_p = len(self.params)
        if done:
            with no_grad():
                for p, new in zip(self.params, state[:n_p], strict=True):
                    p.copy_(new)
            for j, new in enumerate(state[n_p:]):
                if self.kept[j]:
                    i, name = divmod(j, self.n_bufs)
                    opt.buffers[opt.buffer_names[name]][i] = new
            opt.step_count += int(done)
        return losses[: min(int(done) + 1, nb)], logits, int(done)


def _trace_forward(model: Any, X: np.ndarray) -> Graph:
    """The graph of ``(params..., X) -> logits``: ``model`` in eval mode."""
    params = model.parameters()
    n_p = len(params)

    def forward(*flat: Any) -> Any:
        with _parameters_replaced(model, flat[:n_p]):
            return model(flat[n_p])

    was_training = getattr(model, "training", False)
    model.eval()
    try:
        return trace(forward, *[p.data for p in params], X)
    finally:
        model.train(was_training)


class CompiledEvaluation:
    """The loss and accuracy of a model on fixed rows, computed in native code: the
    validation of ``fit(..., compile="numba")``.

    It computes what :func:`~chainrule.train.evaluate` computes (the model in eval mode,
    ``batch_size`` rows at a time, the data loss without the L2 term, the mean loss and
    the fraction classified correctly), with the forward of each block of rows in one
    native function (the parameters' current values are read at each :meth:`run`). The
    loss of the block's logits is then the objective's own NumPy code, the one the tape
    runs, so the figures are the tape's: bitwise in float64 (the native forward gives the
    tape's logits; with ``tanh`` hidden layers within rounding: the native ``tanh`` is the C
    library's, not NumPy's), within rounding in float32. As the epoch function, the generated source
    reads the number of rows at run time: compiled once per architecture and loaded from
    Numba's disk cache by later processes; the functions of a setup are kept for the rest
    of the process.

    Parameters
    ----------
    model : chainrule.nn.Module
        The model (its parameters are read, never written).
    objective : Objective
        The loss.
    X : numpy.ndarray
        The rows (N, D), N >= 1; cast once to the parameters' dtype.
    y : numpy.ndarray
        Their labels or targets, as :func:`~chainrule.train.evaluate` takes them.
    batch_size : int
        Rows scored at once (bounds memory), as :func:`~chainrule.train.evaluate`.

    Attributes
    ----------
    compile_seconds : float
        Seconds spent tracing, generating and compiling (or loading) the native code.

    Raises
    ------
    NotNative
        When the forward or the loss holds an operation the native backend cannot compile.
    """

    def __init__(
        self,
        model: Any,
        objective: Objective,
        X: np.ndarray,
        y: np.ndarray,
        *,
        batch_size: int = EVAL_BATCH_SIZE,
    ) -> None:
        start = time.perf_counter()
        if len(X) == 0 or len(X) != len(y):
            raise ValueError(f"CompiledEvaluation: X has {len(X)} rows and y {len(y)}; need N >= 1")
        self.model, self.objective = model, objective
        self.params = model.parameters()
        dtype = self.params[0].dtype
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.y = np.asarray(y)
        # the targets the loss takes: class labels as the one-hot rows the loss builds from
        # them (the same values, without the labels' range check at every run)
        self.T = compiled_targets(objective, self.y, dtype)
        self.batch_size = min(batch_size, len(X))
        sizes = _batch_sizes(len(X), self.batch_size)
        key = ("evaluate", *_model_key(model, None, False), *sizes)
        self.fns: dict[int, tuple[Any, list[Any]]] = _remembered(key, lambda: self._build(sizes))
        try:
            for rows, (fn, consts) in self.fns.items():
                args = [p.data for p in self.params]
                _compile_for(fn, [*args, self.X[:rows], *consts], "evaluation")
        finally:
            self.compile_seconds = time.perf_counter() - start

    def _build(self, sizes: list[int]) -> dict[int, tuple[Any, list[Any]]]:
        """The generated function and constants of each block size (one function when their
        source is the same)."""
        fns = {}
        for rows in sizes:
            graph = _trace_forward(self.model, self.X[:rows])
            src, w = generate_native(simplify(graph), "evaluate", into_caller=False)
            fns[rows] = (load(src, w.kernels).evaluate, w.consts)
        return fns

    def run(self) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` of the model now (accuracy NaN for regression)."""
        arrays = [p.data for p in self.params]
        total, correct, bs = 0.0, 0, self.batch_size
        with no_grad():
            for start in range(0, len(self.X), bs):
                xb, tb = self.X[start : start + bs], self.T[start : start + bs]
                fn, consts = self.fns[len(xb)]
                (logits,) = fn(*arrays, xb, *consts)
                total += float(self.objective(logits, tb).data) * len(xb)
                correct += self.objective.correct(logits, self.y[start : start + bs])
        n = len(self.X)
        return {
            "loss": total / n,
            "accuracy": correct / n if self.objective.classification else float("nan"),
        }
