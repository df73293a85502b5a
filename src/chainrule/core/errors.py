"""Exceptions raised by the core, each naming the operation, shapes and the fix."""

from __future__ import annotations

import numpy as np


class ShapeError(ValueError):
    """Operands of an operation have incompatible shapes."""


class GraphFreedError(RuntimeError):
    """Backward ran through a graph whose saved tensors were already released."""


class InplaceModificationError(RuntimeError):
    """A tensor saved for backward was modified in place after it was saved."""


class AxisError(ShapeError, np.exceptions.AxisError):
    """An axis out of range for an operand: a ShapeError that is also NumPy's AxisError."""

    def __init__(self, message: str) -> None:
        ShapeError.__init__(self, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def axis_error(what: str, shape: tuple[int, ...], axis: int) -> AxisError:
    """The error for ``axis`` out of range in operation ``what`` on an operand of ``shape``."""
    ndim = len(shape)
    valid = f"valid axes: {-ndim}..{ndim - 1}" if ndim else "a 0-d operand has no axes"
    return AxisError(
        f"{what}: axis {axis} is out of range for an operand of shape {tuple(shape)} "
        f"({ndim}-D; {valid}). Fix: pass an axis that the operand has, or axis=None to "
        "reduce over all axes."
    )


def describe(values: object) -> str:
    """Return ``"float32[3,4], float64[]"`` for a sequence of operands."""
    parts = []
    for v in values:  # type: ignore[attr-defined]
        shape = getattr(v, "shape", None)
        dtype = getattr(v, "dtype", None)
        if shape is None:
            parts.append(type(v).__name__)
        else:
            parts.append(f"{dtype}[{','.join(str(s) for s in shape)}]")
    return ", ".join(parts)
