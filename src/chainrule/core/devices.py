"""Devices: moving arrays between NumPy (``"cpu"``), CuPy (``"cuda:N"``) and other libraries."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from chainrule.core.namespace import (
    device_of,
    is_foreign,
    named_device,
    namespace_name,
    namespace_of,
)


def asnumpy(x: Any) -> np.ndarray:
    """The values of ``x`` (a Tensor or any array) as a NumPy array, copied to the host
    when they live elsewhere.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.asnumpy(cr.tensor([1.0, 2.0]))
    array([1., 2.])
    """
    x = getattr(x, "data", x) if hasattr(x, "requires_grad") else x
    if not is_foreign(x):
        return np.asarray(x)
    get = getattr(x, "get", None)  # CuPy: an explicit copy from the device
    if callable(get) and namespace_name(namespace_of(x)) == "cupy":
        return np.asarray(get())
    return np.from_dlpack(x)


def device_name(text: str) -> str:
    """``text`` as one of chainrule's device names: ``"cpu"``, ``"auto"``, ``"cuda"`` or
    ``"cuda:N"`` (case and surrounding spaces ignored); a ValueError names the choices.

    Examples
    --------
    >>> device_name(" CUDA:1 ")
    'cuda:1'
    """
    name = str(text).strip().lower()
    kind, colon, num = name.partition(":")
    if name in ("cpu", "auto", "cuda") or (kind == "cuda" and colon and num.isdigit()):
        return name
    raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got {text!r}")


def cuda_namespace(device: str) -> tuple[Any, int]:
    """CuPy (through ``array_api_compat``) and the GPU number of ``"cuda"``/``"cuda:N"``.

    Raises a RuntimeError in one line when CuPy or a GPU is missing.
    """
    _, _, num = device.partition(":")
    if num and not num.isdigit():
        raise ValueError(f"device: expected 'cuda' or 'cuda:N', got {device!r}")
    try:
        import cupy
    except ImportError:
        raise RuntimeError(
            f"device {device!r}: CuPy is not installed; install the GPU extra with "
            "`pip install 'chainrule[gpu]'` (cupy-cuda12x; cupy-cuda13x for CUDA 13 drivers)"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken: CuPy raises its own errors
        raise RuntimeError(f"device {device!r}: CuPy finds no usable GPU ({e})") from None
    n = int(num or 0)
    if n >= count:
        raise RuntimeError(
            f"device {device!r}: CuPy finds {count} GPU(s); pick one of cuda:0..cuda:{count - 1}"
            if count
            else f"device {device!r}: CuPy finds no GPU on this machine; use device='cpu'"
        )
    import array_api_compat.cupy as xp

    if _PRECISION["applied"] != _PRECISION["current"]:
        apply_cupy_precision()
    return xp, n


def cuda_available() -> bool:
    """True when CuPy is installed and finds at least one GPU."""
    try:
        cuda_namespace("cuda")
    except (RuntimeError, ImportError):
        return False
    return True


def move(x: Any, device: Any) -> Any:
    """``x`` (a NumPy or array-API array) on ``device``; ``x`` itself when already there.

    ``device`` is ``"cpu"`` (NumPy), ``"cuda"``/``"cuda:N"`` (CuPy), ``"auto"``
    (CUDA when CuPy finds a GPU, else CPU) or an array-API namespace module
    (its default device) or a device object of such a library (``x.device``).
    """
    if isinstance(device, str):
        dev = device.lower()
        if dev == "auto":
            dev = "cuda" if cuda_available() else "cpu"
        if dev == "cpu":
            return asnumpy(x) if is_foreign(x) else x
        if dev == "cuda" or dev.startswith("cuda:"):
            xp, n = cuda_namespace(dev)
            if device_of(x) == f"cuda:{n}":
                return x
            import cupy

            with cupy.cuda.Device(n):
                return cupy.asarray(asnumpy(x) if not hasattr(x, "get") else x)
        named = named_device(device)  # the text of another library's device (t.device)
        if named is not None:
            return move(x, named)
        raise ValueError(
            f"device: unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'"
        )
    if hasattr(device, "asarray") and hasattr(device, "__name__"):  # a namespace module
        if is_foreign(x) and namespace_of(x) is device:
            return x
        return device.asarray(asnumpy(x))
    library = sys.modules.get(type(device).__module__.partition(".")[0])
    if library is not None and hasattr(library, "asarray"):  # a device object of a library
        if library.__name__ == "cupy":
            return move(x, f"cuda:{device.id}")
        if is_foreign(x) and namespace_name(namespace_of(x)) == library.__name__:
            return x if x.device == device else x.to_device(device)
        return library.asarray(asnumpy(x), device=device)
    raise TypeError(
        f"device: expected 'cpu', 'cuda', 'cuda:N', 'auto' or an array namespace, got {device!r}"
    )


def to_like(a: Any, like: Any) -> Any:
    """Array ``a`` (NumPy or another library) in the namespace and on the device of ``like``."""
    if not is_foreign(like):
        return asnumpy(a)
    xp = namespace_of(like)
    if namespace_name(xp) == "cupy":
        return move(a, device_of(like))
    if is_foreign(a) and namespace_of(a) is xp and a.device == like.device:
        return a
    return xp.asarray(asnumpy(a), device=like.device)


# ------------------------------------------------------------ matmul precision
_ALIASES = {
    "highest": "highest",
    "high": "high",
    "tf32": "high",
    "medium": "medium",
    "bf16": "medium",
}
_PRECISION = {"current": "highest", "applied": "highest"}


def set_matmul_precision(precision: str) -> None:
    """The internal precision of float32 matrix products on the GPU, as in PyTorch's
    ``torch.set_float32_matmul_precision``.

    Parameters
    ----------
    precision : {"highest", "high", "medium"}
        ``"highest"`` (the default): float32 arithmetic. ``"high"`` (alias
        ``"tf32"``): cuBLAS rounds the factors to TensorFloat-32, 10 mantissa bits,
        so a product is off by about 1e-3 relative. ``"medium"`` (alias
        ``"bf16"``): bfloat16 factors, 8 significant bits, about 1e-2 relative.
        Sums are accumulated in float32 and results stay float32 in every mode.

    Notes
    -----
    It acts on CuPy (cuBLAS compute type of float32 products, GPUs of compute
    capability 8.0 and newer, such as A100 and H100/H200; older ones keep float32
    with CuPy's warning), at once if CuPy is imported, else when chainrule first
    moves an array to CUDA. NumPy and the other namespaces on the CPU have no such
    mode: there it has no effect, as PyTorch's setting has none on the CPU.
    float64 products are never affected. Use it for large float32 layers where
    the matrix products dominate (workload G2 of ``benchmarks/bench_gpu.py``), not
    for gradient checks.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.set_matmul_precision("tf32")
    >>> cr.get_matmul_precision()
    'high'
    >>> cr.set_matmul_precision("highest")
    """
    key = _ALIASES.get(str(precision).lower())
    if key is None:
        raise ValueError(
            f"set_matmul_precision: unknown precision {precision!r}; use 'highest' (float32), "
            "'high' or 'tf32' (TensorFloat-32), 'medium' or 'bf16' (bfloat16)"
        )
    _PRECISION["current"] = key
    if "cupy" in sys.modules:
        apply_cupy_precision()


def get_matmul_precision() -> str:
    """The current float32 matrix product precision: ``"highest"``, ``"high"`` or ``"medium"``."""
    return _PRECISION["current"]


@contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Set the float32 matrix product precision inside a ``with`` block (see
    :func:`set_matmul_precision`); the previous one is restored on leaving it.

    Examples
    --------
    >>> import chainrule as cr
    >>> with cr.matmul_precision("bf16"):
    ...     cr.get_matmul_precision()
    'medium'
    >>> cr.get_matmul_precision()
    'highest'
    """
    before = get_matmul_precision()
    set_matmul_precision(precision)
    try:
        yield
    finally:
        set_matmul_precision(before)


def cupy_compute_type(linalg: Any, precision: str) -> Any:
    """CuPy's cuBLAS compute type for ``precision`` from its linear-algebra core module."""
    name = {"highest": "COMPUTE_TYPE_DEFAULT", "high": "COMPUTE_TYPE_TF32"}.get(
        precision, "COMPUTE_TYPE_BF16"
    )
    return getattr(linalg, name)


def apply_cupy_precision() -> None:
    """Give CuPy the current precision for float32 matrix products (its cuBLAS compute
    type: ``cupy._core._routines_linalg.set_compute_type``, the setting that the
    ``CUPY_TF32=1`` environment variable also selects)."""
    import cupy

    try:
        from cupy._core import _routines_linalg as linalg  # CuPy's own setting, no public name
    except ImportError:
        raise RuntimeError(
            "set_matmul_precision: this CuPy version has no cupy._core._routines_linalg; "
            "set the environment variable CUPY_TF32=1 before the first product instead"
        ) from None
    current = _PRECISION["current"]
    linalg.set_compute_type(cupy.float32, cupy_compute_type(linalg, current))
    _PRECISION["applied"] = current
