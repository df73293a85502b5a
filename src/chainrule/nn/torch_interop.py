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


#: a final module that is the output nonlinearity (PyTorch classifiers often end in one)
_OUTPUT_MODULES = {"Softmax": "softmax", "Sigmoid": "logistic"}


def from_torch(sequential: Any, output: str | None = None) -> MLP:
    """An :class:`MLP` from a ``torch.nn.Sequential`` of ``Linear`` layers and one activation.

    Parameters
    ----------
    sequential : torch.nn.Sequential
        ``Linear, Act, Linear, Act, ..., Linear`` (the same activation throughout),
        optionally ending in ``Softmax(dim=-1)`` or ``Sigmoid``, which becomes the
        MLP's output (``"softmax"``, ``"logistic"``); the MLP itself returns logits.
    output : {"softmax", "logistic", "linear"}, optional
        The output kind; by default the final ``Softmax``/``Sigmoid`` module's, or
        ``"softmax"`` when the sequential ends in ``Linear`` (it does not record one).

    Raises
    ------
    TypeError
        For anything but a ``torch.nn.Sequential``.
    ValueError
        For another layout, activation constants chainrule does not use, a dtype
        NumPy has no equivalent of (bfloat16), or an ``output`` that contradicts
        the final module.
    """
    torch = _torch()
    if not isinstance(sequential, torch.nn.Sequential):
        raise TypeError(
            f"from_torch: expected a torch.nn.Sequential (Linear, activation, Linear, ...), got "
            f"{type(sequential).__name__}; rebuild the model as one, or copy its weights with "
            "MLP.load_state_dict"
        )
    mods = list(sequential)
    final = type(mods[-1]).__name__ if len(mods) % 2 == 0 and mods else None
    if final in _OUTPUT_MODULES:
        last = mods.pop()
        if final == "Softmax" and last.dim not in (-1, 1):
            raise ValueError(
                f"from_torch: module {len(mods)}: Softmax over dim={last.dim}; the MLP's softmax "
                "is over the features of each row (dim=-1)"
            )
        if output is not None and output != _OUTPUT_MODULES[final]:
            raise ValueError(
                f"from_torch: output={output!r}, but the sequential ends in {final} "
                f"(output {_OUTPUT_MODULES[final]!r})"
            )
        output = _OUTPUT_MODULES[final]
    if not mods:
        raise ValueError("from_torch: the sequential holds no Linear layer")
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
    torch_dtype = str(linears[0].weight.dtype).replace("torch.", "")
    if torch_dtype not in ("float16", "float32", "float64"):  # (ml_dtypes may register bfloat16)
        raise ValueError(
            f"from_torch: the weights are {torch_dtype}; an MLP holds float16, float32 or float64: "
            "convert first with sequential.float() or sequential.double()"
        )
    dtype = np.dtype(torch_dtype)
    sizes = [linears[0].in_features] + [m.out_features for m in linears]
    act = _FROM_TORCH[names.pop()] if names else "identity"
    model = MLP(sizes, activation=act, output=output or "softmax", dtype=dtype, rng=0)
    model.load_state_dict(sequential.state_dict())
    return model
