"""An MLP's weights under the names a ``torch.nn.Sequential`` of ``Linear`` layers uses.

``MLP([D, H, K])`` corresponds to ``Sequential(Linear(D, H), Act(), Linear(H, K))``:
layer ``l`` of the MLP is module ``2 l`` of the sequential, so its weight is
``"{2l}.weight"`` of shape (out, in) (the chapter's ``W``, as PyTorch stores it)
and its bias ``"{2l}.bias"``. A state dict is a plain ``dict`` of NumPy arrays, so
``torch.save``/``torch.load`` carry it both ways.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core.devices import asnumpy
from chainrule.core.namespace import is_foreign


def torch_names(n_layers: int) -> list[tuple[str, str, str]]:
    """``(torch_name, native_name, role)`` for every parameter of an MLP of ``n_layers``.

    Examples
    --------
    >>> torch_names(2)[2]
    ('2.weight', 'layers.1.W', 'weight')
    """
    out = []
    for i in range(n_layers):
        out.append((f"{2 * i}.weight", f"layers.{i}.W", "weight"))
        out.append((f"{2 * i}.bias", f"layers.{i}.b", "bias"))
    return out


def as_array(value: Any, key: str) -> np.ndarray:
    """``value`` (a NumPy array, a torch tensor, a nested list) as a NumPy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if is_foreign(value):  # CuPy or another array library: a host copy
        return asnumpy(value)
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"state dict entry {key!r}: not an array ({type(value).__name__}: {exc})"
        ) from None


def from_native(state: dict[str, Any], n_layers: int) -> dict[str, Any]:
    """Rename a state dict keyed by the MLP's parameter names (``layers.0.W``) to torch names.

    Checkpoints written before the torch naming hold the MLP's own names; a
    dict keyed by torch names is returned unchanged, and keys that are neither
    stay as they are, so the loader reports them as unexpected.

    Examples
    --------
    >>> sorted(from_native({"layers.0.W": 1, "layers.0.b": 2}, 1))
    ['0.bias', '0.weight']
    """
    if not isinstance(state, dict):
        raise TypeError(f"load_state_dict: expected a dict of arrays, got {type(state).__name__}")
    rename = {n: t for t, n, _ in torch_names(n_layers)}
    if any(k in rename for k in state):
        return {rename.get(k, k): v for k, v in state.items()}
    return state
