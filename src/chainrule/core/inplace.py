"""Writing into a tensor's data in place: ``+=``, ``-=``, ``*=``, ``/=``, ``copy_``, ``t[i] = v``.

Each write checks that the tensor is not being recorded, works on NumPy data
(a ufunc with ``out=``) and on arrays of another array-API library (its own
in-place operators), and stamps the time of the write with the tape clock, so
that backward refuses a graph that saved the old values. :class:`Tensor`
inherits these methods from :class:`InPlaceMethods`.

A write is stamped twice: on the tensor written (its ``_version``) and, for NumPy
data, on the *root buffer* of its memory (the ndarray that owns it, found by
walking ``.base``) in :data:`BUFFER_STAMPS`. A tensor and its views (``x[0]``,
``x.T``, ``x.reshape(6)``, views of views) share one root, so a write through any
of them is seen by backward as a write into every tensor saved on that memory, as
PyTorch's shared version counter. The granularity is the whole root buffer: a
write into one row of a buffer counts for a saved tensor on another row of it.
Arrays of other libraries (array-api-strict, CuPy) have no ``.base`` to walk and
keep the per-tensor stamp only: a write through a view of them is not seen.
"""

from __future__ import annotations

import functools
import operator
import weakref
from typing import Any, TypeVar

import numpy as np

from chainrule.core.devices import to_like
from chainrule.core.errors import InplaceModificationError
from chainrule.core.namespace import (
    common_namespace,
    full_index,
    is_floating,
    is_foreign,
    namespace_of,
    to_namespace_index,
)
from chainrule.core.state import CLOCK, STATE, next_tick

T = TypeVar("T", bound="InPlaceMethods")


#: The clock time of the last in-place write into each live NumPy root buffer, keyed
#: by ``id(root)``. An entry is removed when its root is freed (a weak reference's
#: callback, which runs before the id can be reused), so the table holds only live
#: buffers that were written into, and a new array that reuses a freed array's id
#: never inherits its stamp.
BUFFER_STAMPS: dict[int, int] = {}
_BUFFER_REFS: dict[int, weakref.ref[np.ndarray]] = {}


def buffer_root(a: np.ndarray) -> np.ndarray:
    """The ndarray that owns the memory of ``a`` (``a`` itself when it owns it): the
    end of its ``.base`` chain, or the last ndarray on it when the memory belongs to
    another kind of object (a ``bytes``, a ``memoryview``)."""
    b = a.base
    while isinstance(b, _NDARRAY):
        a = b
        b = a.base
    return a


def _forget(key: int, _ref: Any, stamps: Any = BUFFER_STAMPS, refs: Any = _BUFFER_REFS) -> None:
    # the root buffer `key` was freed: its id may be reused by a new array
    stamps.pop(key, None)
    refs.pop(key, None)


def stamp_buffer(data: np.ndarray, tick: int) -> None:
    """Record that ``data`` (a NumPy array, a view or not) was written into at ``tick``."""
    b = data.base  # the root buffer: data, its base (NumPy collapses chains) or further
    if b is None:
        root = data
    elif type(b) is _NDARRAY and b.base is None:
        root = b
    else:
        root = buffer_root(data)
    key = id(root)
    if key not in BUFFER_STAMPS:
        _BUFFER_REFS[key] = weakref.ref(root, functools.partial(_forget, key))
    BUFFER_STAMPS[key] = tick


def written_since(data: Any, tick: int) -> bool:
    """Whether the memory of ``data`` was written in place after ``tick`` through any
    tensor or view that shares its root buffer (False for non-NumPy data)."""
    if not isinstance(data, _NDARRAY):
        return False
    return BUFFER_STAMPS.get(id(buffer_root(data)), 0) > tick


def mark_modified(*tensors: InPlaceMethods) -> None:
    """Stamp ``tensors`` as modified in place now, after code wrote into their ``data``
    directly (as an optimiser's NumPy step does), so that backward detects graphs
    that saved the old values, through these tensors or any view of their memory."""
    CLOCK.last_mutation = tick = next_tick()
    for t in tensors:
        t._version = tick
        d = t.data
        if type(d) is _NDARRAY or isinstance(d, _NDARRAY):
            stamp_buffer(d, tick)


class InPlaceMethods:
    """The in-place methods of :class:`~chainrule.core.tensor.Tensor` (a mixin: every
    instance is a tensor, with ``data``, ``requires_grad`` and a version stamp)."""

    __slots__ = ("_version",)
    _version: int  # the clock time of the last in-place modification (0: never)
    data: Any
    requires_grad: bool

    def _inplace(self: T, name: str, fn: Any, other: Any) -> T:
        if self.requires_grad and STATE.grad_enabled:
            _refuse_traced(self, f"in-place {name}")
            raise InplaceModificationError(
                f"in-place {name} on a tensor that requires grad while recording: it would "
                "change values the tape saved. Use the out-of-place operator (x = x + y) or "
                "run the update inside `with chainrule.no_grad():`."
            )
        data = self.data
        o = other.data if isinstance(other, InPlaceMethods) else other
        if type(data) is _NDARRAY and (type(o) is _NDARRAY or not is_foreign(o)):
            fn(data, o, data)  # NumPy: the ufunc into data itself (same-kind casting, as -=)
            # mark_modified(self) without its loop: the hot path of a user's `p -= lr * g`
            CLOCK.last_mutation = self._version = tick = next_tick()
            stamp_buffer(data, tick)
        else:
            _foreign_inplace(name, fn, data, o)
            mark_modified(self)
        return self

    def __iadd__(self: T, other: Any) -> T:
        return self._inplace("+=", np.add, other)

    def __isub__(self: T, other: Any) -> T:
        return self._inplace("-=", np.subtract, other)

    def __imul__(self: T, other: Any) -> T:
        return self._inplace("*=", np.multiply, other)

    def __itruediv__(self: T, other: Any) -> T:
        return self._inplace("/=", np.divide, other)

    def copy_(self: T, other: Any) -> T:
        """Overwrite the values in place (shape, dtype and device kept); ``other`` may
        live on another device or library (it is copied here, as PyTorch's ``copy_``)."""
        return self._inplace("copy_", _copyto, other)

    def __setitem__(self, index: Any, value: Any) -> None:
        if self.requires_grad and STATE.grad_enabled:
            _refuse_traced(self, "item assignment")
            raise InplaceModificationError(
                "item assignment on a tensor that requires grad while recording; build a new "
                "tensor with chainrule.where or concatenate, or assign inside no_grad()"
            )
        index = index_data(index)
        if type(self.data) is not np.ndarray:
            xp = namespace_of(self.data)
            index = full_index(to_namespace_index(xp, index, self.data.device), self.data.ndim)
            if len(index) == 1:  # array-api-strict's setitem refuses a mask inside a tuple
                index = index[0]
            value = _foreign_value("item assignment", self.data, value)
        elif isinstance(value, InPlaceMethods):
            value = value.data
        if type(value) is not np.ndarray and is_foreign(value) and not is_foreign(self.data):
            common_namespace("item assignment", [self.data, value])  # raises, naming both
        self.data[index] = value
        mark_modified(self)


def _refuse_traced(t: Any, what: str) -> None:
    """Refuse a write into a value of a traced (jit) graph, where no_grad() cannot help."""
    if t._interp is not None:
        raise InplaceModificationError(
            f"{what} on a traced value (inside jit or trace): a static graph holds no "
            "buffers to write into; use the out-of-place form (x = x + y; chainrule.where "
            "for item assignment)"
        )


def _foreign_inplace(name: str, fn: Any, data: Any, o: Any) -> None:
    """``fn`` (a NumPy ufunc or :func:`_copyto`) into ``data`` where ``data`` or ``o`` is an
    array of another library: ``copy_`` copies across libraries and devices, other
    operations refuse a mix of places (a TypeError naming both)."""
    if fn is _copyto and (is_foreign(o) or is_foreign(data)) and hasattr(o, "shape"):
        o = to_like(o, data)  # copy_ is an explicit copy: across devices too
    if type(data) is _NDARRAY:
        if type(o) is not _NDARRAY and is_foreign(o):
            common_namespace(f"in-place {name}", [data, o])  # raises, naming both
        fn(data, o, data)
    else:  # the array API's in-place operators update the array itself
        _FOREIGN_INPLACE[fn](data, _foreign_value(f"in-place {name}", data, o))


def _foreign_value(what: str, target: Any, value: Any) -> Any:
    """``value`` ready to be written into ``target``, an array of another library: Python
    and NumPy numbers as they are, Python lists moved to ``target``'s device, floats
    cast to ``target``'s dtype (as NumPy's same-kind casting); a NumPy array or an
    array elsewhere is a TypeError naming ``what`` and both places."""
    v = value.data if isinstance(value, InPlaceMethods) else value
    if isinstance(v, (np.generic, np.ndarray)) and v.ndim == 0:
        return v.item()
    xp = namespace_of(target)
    if isinstance(v, (list, tuple)):
        return xp.asarray(np.asarray(v), dtype=target.dtype, device=target.device)
    if isinstance(v, (bool, int, float, complex)):
        return v
    common_namespace(what, [target, v])
    if v.dtype != target.dtype and is_floating(v.dtype) and is_floating(target.dtype):
        v = xp.astype(v, target.dtype)
    return v


def _copyto(a: Any, b: Any, out: Any) -> None:
    np.copyto(out, b)  # same-kind casting, as NumPy's ufuncs


def _setitem_all(a: Any, b: Any) -> None:
    a[...] = b


_NDARRAY = np.ndarray

# the array API's in-place operators, for the NumPy ufuncs used on NumPy data
_FOREIGN_INPLACE: dict[Any, Any] = {
    np.add: operator.iadd,
    np.subtract: operator.isub,
    np.multiply: operator.imul,
    np.divide: operator.itruediv,
    _copyto: _setitem_all,
}


def index_data(index: Any) -> Any:
    """An index as NumPy or the data's library takes it: tensors inside it replaced by
    their data, Python lists by NumPy arrays (read by ``getitem`` and item assignment)."""
    if isinstance(index, tuple):
        return tuple(index_data(i) for i in index)
    if isinstance(index, InPlaceMethods):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index
