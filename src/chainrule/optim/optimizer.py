"""What every optimiser shares: the parameter list, ``lr``, ``zero_grad`` and state handling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.core import Tensor
from chainrule.core.devices import asnumpy, move, to_like
from chainrule.core.namespace import device_of, dtype_name


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


class Optimizer:
    """Base class: holds ``params`` and ``lr``; subclasses define :meth:`step`.

    ``state_dict`` holds the hyper-parameters and step count as Python scalars
    and the per-parameter buffers as arrays named ``"<buffer>.<index>"``.
    """

    #: names of per-parameter buffers kept in ``self.buffers[name][i]``
    buffer_names: tuple[str, ...] = ()
    #: names of float hyper-parameters saved in the state dict
    hyper_names: tuple[str, ...] = ("lr",)

    def __init__(self, params: Iterable[Any], lr: float) -> None:
        self.params = _check_params(params, type(self).__name__)
        if not float(lr) >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {lr}")
        self.lr = float(lr)
        self.step_count = 0
        self.buffers: dict[str, list[np.ndarray | None]] = {
            n: [None] * len(self.params) for n in self.buffer_names
        }

    def to(self, device: Any) -> None:
        """Move the buffers (momentum, moments) to ``device``, beside parameters moved with
        :meth:`chainrule.nn.Module.to`."""
        for bufs in self.buffers.values():
            for i, b in enumerate(bufs):
                if b is not None:
                    bufs[i] = move(b, device)

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
        raise NotImplementedError

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
