"""Array namespaces: NumPy directly, any other array-API library (CuPy, array-api-strict).

A tensor holds a NumPy array or an array of another library that follows the
Python array API standard. NumPy is the fast path: :func:`chainrule.core.primitive.apply`
calls a primitive's ``impl`` on NumPy operands as before. When an operand is an
array of another library, :func:`foreign_apply` checks that every array operand
lives in the same namespace and on the same device, then runs the primitive's
``array_api`` spelling (see :class:`chainrule.core.primitive.Primitive`) in that
namespace, so results stay where the operands live (no copy to the host).

The namespace of a non-NumPy array comes from ``array_api_compat`` (the
``array-api`` extra), imported the first time such an array is seen: the core
needs NumPy alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

_SCALARS = (bool, int, float, complex)
_NAMESPACES: dict[type, Any] = {}


def is_foreign(x: Any) -> bool:
    """True for an array of a library other than NumPy that follows the array API (NumPy's
    own subclasses, ``np.memmap`` and ``np.matrix``, are NumPy arrays)."""
    return (
        type(x) is not np.ndarray
        and not isinstance(x, (np.ndarray, np.generic, *_SCALARS))
        and hasattr(x, "__array_namespace__")
    )


def _compat() -> Any:
    try:
        import array_api_compat
    except ImportError:  # an optional dependency: only non-NumPy arrays need it
        raise ImportError(
            "chainrule: arrays of libraries other than NumPy need the array-api-compat "
            "package; install it with `pip install 'chainrule[array-api]'`"
        ) from None
    return array_api_compat


def namespace_of(x: Any) -> Any:
    """The array namespace of ``x``: :mod:`numpy` for NumPy data, else the array-API one.

    CuPy arrays get ``array_api_compat``'s CuPy namespace, so that every
    non-NumPy library is spelled with the standard's names.

    Examples
    --------
    >>> import numpy as np
    >>> namespace_of(np.ones(2)).__name__
    'numpy'
    """
    if not is_foreign(x):
        return np
    xp = _NAMESPACES.get(type(x))
    if xp is None:
        xp = _NAMESPACES[type(x)] = _compat().array_namespace(x)
    return xp


def namespace_name(xp: Any) -> str:
    """A short name for a namespace: ``numpy``, ``cupy``, ``array_api_strict``."""
    name = getattr(xp, "__name__", str(xp))
    return name.removeprefix("array_api_compat.")


def device_of(x: Any) -> str:
    """The device of an array as text: ``"cpu"``, ``"cuda:0"``, or the library's own name."""
    if not is_foreign(x):
        return "cpu"
    dev = _compat().device(x)
    if namespace_name(namespace_of(x)) == "cupy":
        return f"cuda:{dev.id}"
    return "cpu" if str(dev) == "cpu" else str(dev)


def named_device(name: str) -> Any:
    """The device object of an array library already in use whose text (as
    :func:`device_of` writes it) is ``name``, or None: ``t.to(other.device)``."""
    for xp in _NAMESPACES.values():
        info = getattr(xp, "__array_namespace_info__", None)
        if info is None:
            continue
        for dev in info().devices():
            if str(dev) == name:
                return dev
    return None


def common_namespace(what: str, arrays: Sequence[Any]) -> tuple[Any, Any]:
    """The one namespace and device of ``arrays`` (Python scalars are neutral).

    Raises a TypeError naming ``what`` (the operation) and both namespaces or
    devices when operands live in different libraries or on different devices.
    """
    xp = dev = None
    first: Any = None
    for a in arrays:
        if isinstance(a, _SCALARS) or a is None:
            continue
        if isinstance(a, (np.generic, np.ndarray)) and a.ndim == 0 and not is_foreign(a):
            continue  # a NumPy scalar constant is a number
        axp = namespace_of(a)
        if xp is None:
            xp, first, dev = axp, a, _device(a)
            continue
        if axp is not xp:
            raise TypeError(
                f"{what}: operands live in different array libraries: {namespace_name(xp)} "
                f"({describe_array(first)}) and {namespace_name(axp)} ({describe_array(a)}); "
                "move them to one place first with Tensor.to(device) or chainrule.asnumpy"
            )
        d = _device(a)
        if d != dev:
            raise TypeError(
                f"{what}: operands live on different devices: {dev} and {d} "
                f"({namespace_name(xp)}); move them to one device with Tensor.to(device)"
            )
    return (np if xp is None else xp), dev


def _device(a: Any) -> Any:
    return "cpu" if not is_foreign(a) else _compat().device(a)


def describe_array(a: Any) -> str:
    """``shape dtype`` of an array, for error messages."""
    return f"shape {tuple(a.shape)}, dtype {a.dtype}"


def scalar_operands(datas: Sequence[Any]) -> list[Any]:
    """Operands for a non-NumPy namespace: NumPy scalar constants become Python numbers."""
    out = []
    for a in datas:
        if isinstance(a, (np.generic, np.ndarray)) and not is_foreign(a) and a.ndim == 0:
            a = a.item()
        out.append(a)
    return out


def xp_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype of namespace ``xp`` that corresponds to ``dtype`` (a NumPy or ``xp`` dtype)."""
    if xp is np:
        return np.dtype(dtype)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return dtype  # already one of xp's dtypes
    return getattr(xp, name)


def dtype_name(dtype: Any) -> str:
    """The dtype's standard name (``float32``), for NumPy and array-API dtypes alike."""
    if isinstance(dtype, np.dtype):
        return dtype.name
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype).rsplit(".", 1)[-1]


def numpy_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of ``dtype``, a NumPy or another library's dtype (by its name)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(dtype_name(dtype))


def is_foreign_dtype(dtype: Any) -> bool:
    """True for a dtype object of another array library (one NumPy does not understand)."""
    try:
        np.dtype(dtype)
    except TypeError:
        return True
    return False


def is_floating(dtype: Any) -> bool:
    """True for a real or complex floating dtype of any namespace."""
    if isinstance(dtype, np.dtype):  # the fast path: NumPy's own dtypes
        return dtype.kind in "fc"
    return dtype_name(dtype).startswith(("float", "complex"))


def promote(xp: Any, *xs: Any, true_divide: bool = False) -> list[Any]:
    """Operands of a binary arithmetic op in a strict namespace, with mixed kinds cast.

    NumPy promotes bool and integer arrays to float beside a float array, beside
    a Python float, and in a true division; the array API leaves mixed kinds
    undefined, so they are cast here: to the floating operand's dtype (a
    multiplication by a mask keeps the cotangent's dtype), else to float64.
    """
    floats = [x for x in xs if not isinstance(x, _SCALARS) and is_floating(x.dtype)]
    if floats:
        target = floats[0].dtype
    elif true_divide or any(isinstance(x, float) for x in xs):
        target = xp.float64  # NumPy's result for integers divided or beside a float
    else:
        return list(xs)
    return [
        xp.astype(x, target) if not isinstance(x, _SCALARS) and not is_floating(x.dtype) else x
        for x in xs
    ]


def binary(name: str) -> Any:
    """The ``array_api`` spelling of a binary arithmetic primitive: ``xp.<name>`` promoted."""

    def call(xp: Any, x: Any, y: Any) -> Any:
        return getattr(xp, name)(*promote(xp, x, y, true_divide=name == "divide"))

    call.__name__ = f"xp_{name}"
    return call


def scatter_add_sorted(xp: Any, g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``g`` added at ``index``, repeated positions accumulating.

    CuPy has ``cupyx.scatter_add``; the standard has no scatter-add, so the
    generic route gathers each selected element's flat position, sorts the
    positions and sums each run of equal positions from a cumulative sum.
    """
    n = math.prod(shape)
    dev = _device(g)
    pos = xp_getitem(xp, xp.reshape(xp.arange(n, device=dev), shape), index)
    vals = xp.reshape(xp.broadcast_to(g, pos.shape), (-1,))
    pos = xp.reshape(pos, (-1,))
    if pos.shape[0] == 0:  # nothing selected
        return xp.zeros(shape, dtype=g.dtype, device=dev)
    order = xp.argsort(pos)
    ps, vs = xp.take(pos, order), xp.take(vals, order)
    cs = xp.cumulative_sum(vs, include_initial=True)
    is_end = xp.concat([ps[1:] != ps[:-1], xp.ones(1, dtype=xp.bool, device=dev)])
    ends = xp.nonzero(is_end)[0]
    starts = xp.concat([xp.zeros(1, dtype=ends.dtype, device=dev), ends[:-1] + 1])
    sums = xp.take(cs, ends + 1) - xp.take(cs, starts)
    uniq = xp.take(ps, ends)
    slot = xp.clip(xp.searchsorted(uniq, xp.arange(n, device=dev)), 0, max(uniq.shape[0] - 1, 0))
    hit = xp.take(uniq, slot) == xp.arange(n, device=dev)
    flat = xp.where(hit, xp.take(sums, slot), xp.zeros((), dtype=g.dtype, device=dev))
    return xp.reshape(flat, shape)


def _is_array(i: Any) -> bool:
    return hasattr(i, "shape") and hasattr(i, "dtype")


def full_index(index: Any, ndim: int) -> tuple[Any, ...]:
    """``index`` as a tuple that names every axis: NumPy's implicit trailing ``...`` made
    explicit, as the array API requires."""
    items = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis for i in items):
        return items
    named = sum(1 for i in items if i is not None)
    if any(_is_array(i) and dtype_name(i.dtype) == "bool" for i in items):
        return items  # a boolean mask names several axes at once
    return items + (Ellipsis,) if named < ndim else items


def xp_getitem(xp: Any, x: Any, index: Any) -> Any:
    """``x[index]`` in namespace ``xp`` with NumPy's indexing rules where the standard has
    narrower ones: the trailing ``...`` is implicit, and one integer array of any shape
    may sit among slices (applied as ``take`` along its axis after the slices, its
    shape replacing that axis)."""
    items = full_index(index, x.ndim)
    arrays = [k for k, i in enumerate(items) if _is_array(i)]
    if (
        len(arrays) == 1
        and all(
            isinstance(i, slice) or i is Ellipsis or k == arrays[0] for k, i in enumerate(items)
        )
        and dtype_name(items[arrays[0]].dtype) != "bool"
    ):
        k, idx = arrays[0], items[arrays[0]]
        basic = tuple(slice(None) if j == k else i for j, i in enumerate(items))
        # slices keep their axis; an ellipsis before the array stands for the unnamed axes
        before_ell = any(i is Ellipsis for i in items[:k])
        axis = k - 1 + (x.ndim - (len(items) - 1)) if before_ell else k
        if idx.ndim == 1:
            return xp.take(x[basic], idx, axis=axis)
        out = xp.take(x[basic], xp.reshape(idx, (-1,)), axis=axis)
        return xp.reshape(out, out.shape[:axis] + tuple(idx.shape) + out.shape[axis + 1 :])
    return x[items]


def zeros_like_in(like: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with the dtype, namespace and device of array ``like``."""
    if not is_foreign(like):
        return np.zeros(shape, dtype=like.dtype)
    return namespace_of(like).zeros(shape, dtype=like.dtype, device=like.device)


def ones_like_in(like: Any) -> Any:
    """Ones with the shape, dtype, namespace and device of array ``like``."""
    if not is_foreign(like):
        return np.ones(like.shape, dtype=like.dtype)
    return namespace_of(like).ones_like(like)


def copy_array(a: Any, dtype: Any) -> Any:
    """A copy of array ``a`` cast to ``dtype``, in ``a``'s namespace and device."""
    if not is_foreign(a):
        return np.array(a, dtype=dtype, copy=True)
    xp = namespace_of(a)
    return xp.asarray(xp.astype(a, xp_dtype(xp, dtype)), copy=True)


def to_namespace_index(xp: Any, index: Any, device: Any) -> Any:
    """An index with its NumPy (or list) arrays moved into namespace ``xp`` on ``device``."""
    if isinstance(index, tuple):
        return tuple(to_namespace_index(xp, i, device) for i in index)
    if isinstance(index, (np.ndarray, list)):
        return xp.asarray(np.asarray(index), device=device)
    if isinstance(index, np.generic):  # a NumPy integer (from np.arange) or bool
        return index.item()
    return index
