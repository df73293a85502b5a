"""Modules and parameters: the containers that networks are built from (PyTorch style)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.core import Tensor, no_grad
from chainrule.core.devices import asnumpy, move, to_like
from chainrule.core.namespace import dtype_name
from chainrule.nn.display import module_html
from chainrule.nn.state_dict import as_array


class Parameter(Tensor):
    """A leaf tensor that requires grad and that a :class:`Module` registers.

    Parameters
    ----------
    data : array_like
        Initial values (floating point).
    dtype : dtype, optional
        Cast to this dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import Parameter
    >>> p = Parameter(np.zeros(3))
    >>> p.requires_grad
    True
    """

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _is_module_list(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, Module) for v in value)
    )


class Module:
    """Base class of layers and networks.

    Attributes holding a :class:`Parameter`, a :class:`Module` or a list of
    modules are registered on assignment, in order, so that
    :meth:`named_parameters` finds them with dotted names (``layers.0.W``).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import Module, Parameter
    >>> class Scale(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.s = Parameter(np.ones(1))
    ...     def forward(self, x):
    ...         return x * self.s
    >>> [name for name, _ in Scale().named_parameters()]
    ['s']
    """

    _param_names: dict[str, None]  # set in __init__, around __setattr__'s registration
    _module_names: dict[str, None]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_param_names", {})
        object.__setattr__(self, "_module_names", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_param_names" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        self._param_names.pop(name, None)
        self._module_names.pop(name, None)
        if isinstance(value, Parameter):
            self._param_names[name] = None
        elif isinstance(value, Module) or _is_module_list(value):
            self._module_names[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._param_names.pop(name, None)
        self._module_names.pop(name, None)
        object.__delattr__(self, name)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules with their names (``layers.0`` for list entries)."""
        for name in self._module_names:
            value = getattr(self, name)
            if isinstance(value, Module):
                yield name, value
            else:
                for i, m in enumerate(value):
                    yield f"{name}.{i}", m

    def children(self) -> Iterator[Module]:
        """Direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with dotted names."""
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            yield name, m
            kids = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a shared parameter is listed once.

        Examples
        --------
        >>> from chainrule.nn import MLP
        >>> [n for n, _ in MLP([2, 3, 1], rng=0).named_parameters()]
        ['layers.0.W', 'layers.0.b', 'layers.1.W', 'layers.1.b']
        """
        seen: set[int] = set()
        for mname, m in self.named_modules(prefix):
            for pname in m._param_names:
                p = getattr(m, pname)
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> list[Parameter]:
        """Every parameter, in registration order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """Total number of scalar parameters."""
        return sum(p.size for p in self.parameters())

    # -------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every sub-module; returns self."""
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to None."""
        for p in self.parameters():
            p.grad = None

    # -------------------------------------------------------------- calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -------------------------------------------------------------- state
    def state_parameters(self) -> dict[str, Parameter]:
        """The parameters under the names :meth:`state_dict` uses (dotted names here)."""
        return dict(self.named_parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's values, keyed as in :meth:`state_parameters`.

        The copies are NumPy arrays wherever the parameters live (copied from
        the device), so a state saved on a GPU loads on a CPU and back, bit for bit.
        """
        return {name: asnumpy(p.data).copy() for name, p in self.state_parameters().items()}

    def to(self, device: Any) -> Module:
        """Move every parameter (and its gradient) to ``device`` in place; returns self.

        ``device`` is ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or an
        array-API namespace or device (see :meth:`chainrule.Tensor.to`). The
        parameters stay the same objects, so an optimiser built on them keeps
        working (move its buffers with ``Optimizer.to``).
        """
        for p in self.parameters():
            p.data = move(p.data, device)
            if p.grad is not None:
                p.grad = p.grad.to(device)
        return self

    @property
    def device(self) -> str | None:
        """The device of the first parameter (None for a module without parameters)."""
        params = self.parameters()
        return params[0].device if params else None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy values from ``state`` into the parameters, in place.

        Raises
        ------
        ValueError
            Naming the missing and unexpected keys, or every parameter whose
            shape or dtype differs from the stored array.
        """
        params = self.state_parameters()
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            raise ValueError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}. The state was saved from a different "
                "architecture; rebuild the model from its config first."
            )
        bad = []
        arrays = {}
        for k, p in params.items():
            a = as_array(state[k], k)
            if a.shape != p.shape:
                bad.append(f"{k}: stored shape {a.shape}, parameter shape {p.shape}")
            elif dtype_name(a.dtype) != dtype_name(p.dtype):
                bad.append(f"{k}: stored dtype {a.dtype}, parameter dtype {p.dtype}")
            arrays[k] = a if type(p.data) is np.ndarray else to_like(a, p.data)
        if bad:
            raise ValueError(
                f"load_state_dict for {type(self).__name__}: mismatched entries: "
                + "; ".join(bad)
                + ". Build the model with the same layer sizes and dtype as the saved one."
            )
        with no_grad():
            for k, p in params.items():
                p.copy_(arrays[k])

    # -------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        """Text inside the parentheses of this module's one-line repr."""
        return ""

    def _repr_lines(self) -> list[str]:
        kids = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not kids:
            return [head + ")"]
        lines = [head]
        for name, m in kids:
            sub = m._repr_lines()
            n = m.num_parameters()
            sub[-1] += f"  # {n:,} params" if n else ""
            lines.append(f"  ({name}): " + sub[0])
            lines.extend("  " + s for s in sub[1:])
        lines.append(")")
        return lines

    def _repr_html_(self) -> str:
        """Jupyter's view: a table of layers, parameter shapes and counts."""
        return module_html(self)

    def __repr__(self) -> str:
        lines = self._repr_lines()
        if len(lines) == 1:  # a leaf layer: one line, as PyTorch prints it
            return lines[0]
        return "\n".join(lines) + f"\nTotal parameters: {self.num_parameters():,}"


class Sequential(Module):
    """Modules applied one after the other; parameters are named ``0.W``, ``1.W``...

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule import nn
    >>> net = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Tanh(), nn.Linear(3, 1, rng=1))
    >>> net(np.ones((4, 2), dtype=np.float32)).shape
    (4, 1)
    """

    modules_: list[Module]

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for m in modules:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: every entry must be a Module, got {type(m).__name__}")
        object.__setattr__(self, "modules_", list(modules))

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, m in enumerate(self.modules_):
            yield str(i), m

    def __getitem__(self, i: int) -> Module:
        return self.modules_[i]

    def __len__(self) -> int:
        return len(self.modules_)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.modules_)

    def forward(self, x: Any) -> Any:
        for m in self.modules_:
            x = m(x)
        return x
