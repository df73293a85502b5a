"""Exceptions raised by the core, each naming the operation, shapes and the fix."""

from __future__ import annotations


class ShapeError(ValueError):
    """Operands of an operation have incompatible shapes."""


class GraphFreedError(RuntimeError):
    """Backward ran through a graph whose saved tensors were already released."""


class InplaceModificationError(RuntimeError):
    """A tensor saved for backward was modified in place after it was saved."""


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
