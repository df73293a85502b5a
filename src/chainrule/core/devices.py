"""Devices: moving arrays between NumPy (``"cpu"``), CuPy (``"cuda:N"``) and other libraries."""

from __future__ import annotations

import sys
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
