"""What every optimiser shares: the parameter list, ``lr``, ``step``, ``zero_grad`` and state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from chainrule.core import Tensor, no_grad
from chainrule.core.devices import asnumpy, move, to_like
from chainrule.core.inplace import mark_modified
from chainrule.core.namespace import device_of, dtype_name, namespace_of, zeros_like_in
from chainrule.optim.update_ops import InPlaceOps


def run_time_settings(optimizer: Any) -> tuple[str, ...]:
    """The settings of ``optimizer`` that its ``update`` takes through ``hyper(t)`` alone, as
    the class defining ``update`` declares them (:attr:`Optimizer.run_time_settings`): a
    subclass overriding ``update`` (which may read ``self.lr``) declares none unless it says."""
    for cls in type(optimizer).__mro__:
        if "update" in vars(cls):
            return tuple(vars(cls).get("run_time_settings", ()))
    return ()


def _check_params(params: Iterable[Any], who: str) -> list[Tensor]:
    if isinstance(params, Tensor):
        raise TypeError(f"{who}: params must be an iterable of tensors (e.g. model.parameters())")
    ps = list(params)
    if not ps:
        raise ValueError(f"{who}: got an empty parameter list; pass model.parameters()")
    for i, p in enumerate(ps):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError(
                f"{who}: parameter {i} is {type(p).__name__}"
                f"{'' if not isinstance(p, Tensor) else ' without requires_grad'}; "
                "optimisers update tensors that require grad (model.parameters())"
            )
        if not dtype_name(p.dtype).startswith("float"):
            raise TypeError(f"{who}: parameter {i} has dtype {p.dtype}; use a float dtype")
    return ps


class InPlaceStep:
    """How a NumPy parameter steps in place: its data ``param``, the in-place operations
    (with a scratch array like it) and the :meth:`Optimizer.uses_buffers` they were
    prepared for; valid while the parameter keeps that data array."""

    __slots__ = ("param", "ops", "uses_buffers")

    def __init__(self, param: np.ndarray, uses_buffers: bool) -> None:
        self.param = param
        self.ops = InPlaceOps(np.empty_like(param))
        self.uses_buffers = uses_buffers


class Optimizer:
    """Base class: holds ``params`` and ``lr``; subclasses define ``hyper`` and ``update``.

    An optimiser's rule is its ``update(xp, p, g, *buffers, *hyper(t))``, written
    once with the operations of :func:`chainrule.optim.update_ops.update_ops`:
    :meth:`step` applies it in place to NumPy parameters (no temporaries) and
    out of place in the parameter's namespace otherwise, and compiled training
    traces it. A subclass may instead override :meth:`step` alone (it is then
    not compiled).

    ``state_dict`` holds the hyper-parameters and step count as Python scalars
    and the per-parameter buffers as arrays named ``"<buffer>.<index>"``.
    """

    #: names of per-parameter buffers kept in ``self.buffers[name][i]``
    buffer_names: tuple[str, ...] = ()
    #: names of float hyper-parameters saved in the state dict
    hyper_names: tuple[str, ...] = ("lr",)
    # The rule, defined by subclasses (an optimiser of the user's may define step()
    # alone; compiled training checks for both): hyper(t) -> the scalars of step t
    # (1-based); update(xp, p, g, *buffers, *hyper(t)) -> (p, *buffers), with xp an
    # array namespace (new values) or an InPlaceOps (results written into p, the
    # buffers and the scratch array).
    hyper: Callable[[int], tuple[float, ...]]
    update: Callable[..., tuple[Any, ...]]
    #: settings that ``update`` takes through ``hyper(t)`` alone, never from ``self``:
    #: compiled training reads them at run time, so a change of them reuses its machine
    #: code (see :func:`run_time_settings`; only the class defining ``update`` declares them)
    run_time_settings: tuple[str, ...] = ()
    #: True when ``update`` is written with :func:`~chainrule.optim.update_ops.update_ops`,
    #: so that :meth:`step` may run it in place on NumPy arrays (else always out of place)
    update_in_place: bool = False

    def __init__(self, params: Iterable[Any], lr: float) -> None:
        self.params = _check_params(params, type(self).__name__)
        if not float(lr) >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {lr}")
        self.lr = float(lr)
        self.step_count = 0
        self.buffers: dict[str, list[np.ndarray | None]] = {
            n: [None] * len(self.params) for n in self.buffer_names
        }
        # per parameter, how it steps in place (None: not prepared yet, or not NumPy)
        self.inplace_steps: list[InPlaceStep | None] = [None] * len(self.params)

    def uses_buffers(self) -> bool:
        """Whether :meth:`update` uses the buffers now: if so, :meth:`step` creates missing
        ones (zeros); if not, it passes None for each."""
        return True

    def to(self, device: Any) -> None:
        """Move the buffers (momentum, moments) to ``device``, beside parameters moved with
        :meth:`chainrule.nn.Module.to`."""
        for bufs in self.buffers.values():
            for i, b in enumerate(bufs):
                if b is not None:
                    bufs[i] = move(b, device)
        self.inplace_steps = [None] * len(self.params)

    def check_buffer(self, name: str, i: int, buf: Any, p: Tensor) -> None:
        """Raise a TypeError when buffer ``name`` of parameter ``i`` lives elsewhere than the
        parameter (the model moved with :meth:`chainrule.nn.Module.to` after a step)."""
        d = p.data
        if type(buf) is type(d) and (type(d) is np.ndarray or buf.device == d.device):
            return
        raise TypeError(
            f"{type(self).__name__}.step: the {name} of parameter {i} lives on "
            f"{device_of(buf)} ({type(buf).__module__.partition('.')[0]}) but the parameter "
            f"on {device_of(d)} ({type(d).__module__.partition('.')[0]}); after "
            "model.to(device), move the optimiser too with optimizer.to(device)"
        )

    def zero_grad(self) -> None:
        """Set every parameter's gradient to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient with :meth:`update`, in place."""
        t = self.step_count + 1
        scalars = self.hyper(t)
        uses = bool(self.uses_buffers())
        names, n = self.buffer_names, len(self.params)
        if uses and names:  # per parameter, its buffers in the order of buffer_names
            buffers = list(zip(*[self.buffers[k] for k in names]))
        else:
            buffers = [(None,) * len(names)] * n
        update, steps, ndarray = self.update, self.inplace_steps, np.ndarray
        written: list[Tensor] = []  # parameters whose data the NumPy path wrote into
        try:
            for i, p in enumerate(self.params):
                grad = p.grad
                if grad is None:
                    continue
                d, g = p.data, grad.data
                fast = steps[i]
                if (
                    fast is None
                    or fast.param is not d
                    or fast.uses_buffers is not uses
                    or type(g) is not ndarray
                    or g.dtype != d.dtype
                ):
                    fast, bufs = self.prepare(i, p, g, uses)
                else:
                    bufs = buffers[i]
                if fast is None:
                    self._update_out_of_place(p, g, bufs, scalars)
                    continue
                update(fast.ops, d, g, *bufs, *scalars)  # NumPy: in place, nothing to record
                written.append(p)
        finally:
            mark_modified(*written)
        self.step_count = t

    def _update_out_of_place(
        self, p: Tensor, g: Any, bufs: tuple[Any, ...], scalars: tuple[float, ...]
    ) -> None:
        # the rule on new values in the parameter's namespace, copied into p and the buffers
        d = p.data
        with no_grad():
            new_p, *new_bufs = self.update(namespace_of(d), d, g, *bufs, *scalars)
            for b, nb in zip(bufs, new_bufs, strict=True):
                if b is not None:
                    b[...] = nb  # in place: the buffers' arrays are the optimiser's state
            p.copy_(new_p)

    def prepare(
        self, i: int, p: Tensor, g: Any, uses_buffers: bool
    ) -> tuple[InPlaceStep | None, tuple[Any, ...]]:
        """The buffers of parameter ``i`` for :meth:`update` (made when missing and
        checked to live where the parameter does; all None unless ``uses_buffers``),
        and how it steps in place: None unless the parameter, its gradient ``g`` and
        the buffers are NumPy arrays of one dtype."""
        d, bufs = p.data, []
        for name in self.buffer_names:
            b = self.buffers[name][i] if uses_buffers else None
            if b is None and uses_buffers:
                b = self.buffers[name][i] = zeros_like_in(d, p.shape)
            elif b is not None:
                self.check_buffer(name, i, b, p)
            bufs.append(b)
        fast = None
        numpy = type(d) is np.ndarray and type(g) is np.ndarray and g.dtype == d.dtype
        if numpy and self.update_in_place:
            if all(b is None or type(b) is np.ndarray for b in bufs):
                fast = InPlaceStep(d, uses_buffers)
        self.inplace_steps[i] = fast
        return fast, tuple(bufs)

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters, step count and buffers (copies), serialisable."""
        state: dict[str, Any] = {n: float(getattr(self, n)) for n in self.hyper_names}
        state["step"] = int(self.step_count)
        for name, bufs in self.buffers.items():
            for i, b in enumerate(bufs):
                if b is not None:  # NumPy copies: a state saved on a GPU loads anywhere
                    state[f"{name}.{i}"] = b.copy() if type(b) is np.ndarray else asnumpy(b)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; checks buffer names, shapes and dtypes."""
        who = f"{type(self).__name__}.load_state_dict"
        expected = {f"{n}.{i}" for n in self.buffer_names for i in range(len(self.params))}
        scalars = set(self.hyper_names) | {"step"}
        unexpected = sorted(k for k in state if k not in expected and k not in scalars)
        if unexpected:
            raise ValueError(
                f"{who}: unexpected keys {unexpected}; the state belongs to another optimiser "
                f"or a model with another number of parameters ({len(self.params)} here)"
            )
        bufs: dict[str, list[np.ndarray | None]] = {
            n: [None] * len(self.params) for n in self.buffer_names
        }
        for key in expected & set(state):
            name, idx = key.rsplit(".", 1)
            p, a = self.params[int(idx)], asnumpy(state[key])
            if a.shape != p.shape or a.dtype.name != dtype_name(p.dtype):
                raise ValueError(
                    f"{who}: {key} has shape {a.shape} and dtype {a.dtype} but parameter "
                    f"{idx} has shape {p.shape} and dtype {p.dtype}"
                )
            bufs[name][int(idx)] = a.copy() if type(p.data) is np.ndarray else to_like(a, p.data)
        for n in self.hyper_names:
            if n in state:
                setattr(self, n, float(state[n]))
        self.step_count = int(state.get("step", 0))
        self.buffers = bufs
        self.inplace_steps = [None] * len(self.params)
