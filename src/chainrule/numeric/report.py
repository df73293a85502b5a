"""The readable table a failed gradient check raises: input, element, expected, actual, errors."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.numeric.derivatives import jacobian


class GradcheckError(AssertionError):
    """Automatic and numerical derivatives disagree; the message holds the comparison table."""


def input_names(f: Callable[..., Any], n: int) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [f"{i} ({names[i]})" if i < len(names) else str(i) for i in range(n)]


def function_label(f: Callable[..., Any]) -> str:
    return getattr(f, "__name__", None) or type(f).__name__


def _fmt_index(index: tuple[int | np.integer, ...]) -> str:
    return "[" + ", ".join(map(str, index)) + "]"


def _jacobian_table(
    names: list[str],
    xs: tuple[np.ndarray, ...],
    out_shape: tuple[int, ...],
    expected: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    rtol: float,
    atol: float,
) -> str:
    header = (
        f"{'input':<12} {'shape':<10} {'worst element':<22} {'expected (numeric)':>19} "
        f"{'actual (automatic)':>19} {'max abs err':>11} {'max rel err':>11}  status"
    )
    lines = [header, "-" * len(header)]
    n_out = len(out_shape)
    for name, x, e, a in zip(names, xs, expected, actual, strict=True):
        if e.size == 0:
            lines.append(f"{name:<12} {str(x.shape):<10} (empty)")
            continue
        err = np.abs(a - e)
        allowed = atol + rtol * np.abs(e)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(np.abs(e) > 0, err / np.abs(e), np.where(err > 0, np.inf, 0.0))
        worst = np.unravel_index(
            int(np.nanargmax(np.nan_to_num(err / allowed, nan=np.inf))), e.shape
        )
        where = f"out{_fmt_index(worst[:n_out])} in{_fmt_index(worst[n_out:])}"
        status = "ok" if np.all(err <= allowed) else "FAIL"
        lines.append(
            f"{name:<12} {str(x.shape):<10} {where:<22} {e[worst]:>19.10e} {a[worst]:>19.10e} "
            f"{np.nanmax(err):>11.3e} {np.nanmax(rel):>11.3e}  {status}"
        )
    return "\n".join(lines)


def failure(
    context: str,
    summary: str,
    f: Callable[..., Any],
    xs: tuple[np.ndarray, ...],
    out_shape: tuple[int, ...],
    actual: Sequence[np.ndarray],
    opts: dict[str, Any],
    names: list[str] | None,
) -> GradcheckError:
    nums = tuple(range(len(xs)))
    expected = jacobian(f, *xs, argnums=nums, method=opts["method"])
    table = _jacobian_table(
        names or [str(i) for i in nums], xs, out_shape, expected, actual, opts["rtol"], opts["atol"]
    )
    return GradcheckError(
        f"gradcheck failed for {context}\n{summary}\n"
        f"Full Jacobians, element by element (numeric: {opts['method']} differences, "
        f"rtol={opts['rtol']:g}, atol={opts['atol']:g}):\n{table}"
    )
