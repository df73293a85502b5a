"""Move an MLP to and from a ``torch.nn.Sequential`` (PyTorch is optional, imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn.mlp import MLP

# chainrule activation -> torch.nn module class name (same formula, same constants)
TORCH_ACTIVATIONS = {
    "logistic": "Sigmoid",
    "tanh": "Tanh",
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "softplus": "Softplus",
    "swish": "SiLU",
    "gelu": "GELU",
    "hard_tanh": "Hardtanh",
    "identity": "Identity",
}
_FROM_TORCH = {v: k for k, v in TORCH_ACTIVATIONS.items()}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            "PyTorch is not installed; `pip install torch`, or move weights with "
            "model.state_dict() and a plain dict of NumPy arrays"
        ) from None
    return torch


def to_torch(model: MLP) -> Any:
    """A ``torch.nn.Sequential`` of ``Linear`` and activation modules with ``model``'s weights.

    The output nonlinearity is not part of it (the MLP returns logits too).
    ``hard_logistic`` has no PyTorch module and raises ``ValueError``.
    """
    torch = _torch()
    if model.activation not in TORCH_ACTIVATIONS:
        raise ValueError(
            f"to_torch: activation {model.activation!r} has no torch.nn module; supported: "
            f"{sorted(TORCH_ACTIVATIONS)}"
        )
    sizes = model.layer_sizes
    mods: list[Any] = []
    for i in range(len(sizes) - 1):
        if i:
            mods.append(getattr(torch.nn, TORCH_ACTIVATIONS[model.activation])())
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
    seq = torch.nn.Sequential(*mods)
    dtype = getattr(torch, model.dtype.name)
    seq.to(dtype)
    seq.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return seq


def from_torch(sequential: Any, output: str = "softmax") -> MLP:
    """An :class:`MLP` from a ``torch.nn.Sequential`` of ``Linear`` layers and one activation.

    Parameters
    ----------
    sequential : torch.nn.Sequential
        ``Linear, Act, Linear, Act, ..., Linear`` (the same activation throughout).
    output : {"softmax", "logistic", "linear"}
        The output kind (a sequential does not record it).
    """
    torch = _torch()
    mods = list(sequential)
    linears = mods[0::2]
    acts = mods[1::2]
    for i, m in enumerate(linears):
        if not isinstance(m, torch.nn.Linear):
            raise ValueError(
                f"from_torch: module {2 * i} is {type(m).__name__}, expected Linear "
                "(the layout is Linear, activation, Linear, ...)"
            )
        if m.bias is None:
            raise ValueError(f"from_torch: Linear module {2 * i} has no bias; the MLP needs one")
    names = {type(a).__name__ for a in acts}
    if len(names) > 1 or not names <= set(_FROM_TORCH):
        raise ValueError(
            f"from_torch: activations {sorted(names)}; expected one of "
            f"{sorted(_FROM_TORCH)} used between every pair of Linear layers"
        )
    for i, a in enumerate(acts):
        if isinstance(a, torch.nn.LeakyReLU) and a.negative_slope != 0.01:
            raise ValueError(f"from_torch: module {2 * i + 1}: LeakyReLU slope must be 0.01")
        if isinstance(a, torch.nn.GELU) and a.approximate != "none":
            raise ValueError(f"from_torch: module {2 * i + 1}: GELU must use approximate='none'")
        if isinstance(a, torch.nn.ELU) and a.alpha != 1.0:
            raise ValueError(f"from_torch: module {2 * i + 1}: ELU alpha must be 1.0")
        if isinstance(a, torch.nn.Softplus) and a.beta != 1.0:
            raise ValueError(f"from_torch: module {2 * i + 1}: Softplus beta must be 1.0")
        if isinstance(a, torch.nn.Hardtanh) and (a.min_val, a.max_val) != (-1.0, 1.0):
            raise ValueError(f"from_torch: module {2 * i + 1}: Hardtanh must clip to [-1, 1]")
    sizes = [linears[0].in_features] + [m.out_features for m in linears]
    dtype = np.dtype(str(linears[0].weight.dtype).replace("torch.", ""))
    act = _FROM_TORCH[names.pop()] if names else "identity"
    model = MLP(sizes, activation=act, output=output, dtype=dtype, rng=0)
    model.load_state_dict(sequential.state_dict())
    return model
