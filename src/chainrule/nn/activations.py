"""Activation functions by name, and the same functions as modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chainrule.core.ops as ops
from chainrule.nn.module import Module


def _identity(x: Any) -> Any:
    return x


ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "logistic": ops.sigmoid,
    "tanh": ops.tanh,
    "relu": ops.relu,
    "leaky_relu": ops.leaky_relu,
    "elu": ops.elu,
    "softplus": ops.softplus,
    "swish": ops.swish,
    "gelu": ops.gelu,
    "hard_logistic": ops.hard_logistic,
    "hard_tanh": ops.hard_tanh,
    "identity": _identity,
}
ALIASES = {
    "sigmoid": "logistic",
    "silu": "swish",
    "linear": "identity",
}
# every name an activation may be given by (command line, estimators, MLP)
ACTIVATION_NAMES: tuple[str, ...] = (*ACTIVATIONS, *ALIASES)


def canonical_activation(name: str) -> str:
    """The registered name for ``name`` (resolving aliases such as ``"sigmoid"``).

    Examples
    --------
    >>> from chainrule.nn.activations import canonical_activation
    >>> canonical_activation("sigmoid")
    'logistic'
    """
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a string, got {type(name).__name__}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)} "
            f"(aliases: {sorted(ALIASES)})"
        )
    return key


def get_activation(name: str) -> Callable[[Any], Any]:
    """The activation function called ``name`` (``"logistic"``, alias ``"sigmoid"``, ...).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn.functional import get_activation
    >>> float(get_activation("relu")(cr.tensor(-2.0)))
    0.0
    """
    return ACTIVATIONS[canonical_activation(name)]


class Activation(Module):
    """An activation function as a module.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import Activation
    >>> Activation("tanh")(cr.tensor([0.0])).tolist()
    [0.0]
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = canonical_activation(name)
        self.fn = ACTIVATIONS[self.name]

    def forward(self, x: Any) -> Any:
        return self.fn(x)

    def extra_repr(self) -> str:
        return "" if type(self) is not Activation else repr(self.name)


def _make(cls_name: str, act: str) -> type[Activation]:
    def __init__(self: Activation) -> None:  # noqa: N807
        Activation.__init__(self, act)

    doc = f"The ``{act}`` activation as a module (see :func:`get_activation`)."
    return type(cls_name, (Activation,), {"__init__": __init__, "__doc__": doc})


Logistic = _make("Logistic", "logistic")
Sigmoid = Logistic
Tanh = _make("Tanh", "tanh")
ReLU = _make("ReLU", "relu")
LeakyReLU = _make("LeakyReLU", "leaky_relu")
ELU = _make("ELU", "elu")
Softplus = _make("Softplus", "softplus")
Swish = _make("Swish", "swish")
GELU = _make("GELU", "gelu")
HardLogistic = _make("HardLogistic", "hard_logistic")
HardTanh = _make("HardTanh", "hard_tanh")
Identity = _make("Identity", "identity")
