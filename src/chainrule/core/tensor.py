"""The Tensor: a NumPy array with a place on the tape and forward-mode tangents."""

from __future__ import annotations

from typing import Any

import numpy as np

# ops and Tensor need each other: the operators below look ops up at call time, and
# chainrule.core imports ops (which imports this module) first
from chainrule.core import ops
from chainrule.core.devices import asnumpy, move, to_like
from chainrule.core.display import tensor_html
from chainrule.core.inplace import InPlaceMethods
from chainrule.core.namespace import (
    common_namespace,
    device_of,
    dtype_name,
    is_floating,
    is_foreign,
    namespace_of,
    numpy_dtype,
    xp_dtype,
)


def _check_differentiable_dtype(dtype: Any, what: str) -> None:
    if not is_floating(dtype):
        raise TypeError(
            f"{what}: only floating-point tensors can require gradients, got dtype {dtype}. "
            "Create it with float data or pass dtype=np.float64 (or float32)."
        )


class Tensor(InPlaceMethods):
    """An n-dimensional array that records the operations applied to it.

    Use :func:`chainrule.tensor` to create one. Arithmetic follows NumPy
    (broadcasting, dtype promotion, ``@`` for matmul); when ``requires_grad`` is
    set, operations are recorded and :meth:`backward` fills ``.grad``. The in-place
    methods (``+=``, ``copy_``, item assignment) come from
    :class:`~chainrule.core.inplace.InPlaceMethods`.

    Attributes
    ----------
    data : numpy.ndarray or array-API array
        The values (a NumPy array, or an array of another array-API library
        such as CuPy). Treat it as read-only while the tensor is on a tape.
    requires_grad : bool
        Whether operations on this tensor are recorded for reverse mode.
    grad : Tensor or None
        Accumulated gradient after :meth:`backward` (leaves only).
    """

    __slots__ = (
        "data",
        "requires_grad",
        "grad",
        "_prim",
        "_parents",
        "_params",
        "_tick",
        "_tangents",
        "__weakref__",
    )
    data: np.ndarray
    requires_grad: bool
    grad: Tensor | None
    # the tape: the primitive, operands and parameters that made this tensor, and the
    # clock time of recording (all None off the tape); forward-mode tangents by level
    _prim: Any
    _parents: Any
    _params: Any
    _tick: Any
    _tangents: Any
    _interp: Any = None  # symbolic tensors set an interpreter that builds graphs instead
    __array_ufunc__ = None  # make ndarray (op) Tensor defer to Tensor's reflected operators
    __hash__ = object.__hash__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if is_foreign(data):  # an array of another library stays in its namespace
            xp = namespace_of(data)
            arr = data if dtype is None else xp.astype(data, xp_dtype(xp, dtype), copy=False)
            if requires_grad:
                _check_differentiable_dtype(arr.dtype, "tensor(requires_grad=True)")
            _init(self, arr, bool(requires_grad))
            return
        arr = np.asarray(data, dtype=None if dtype is None else numpy_dtype(dtype))
        if arr.dtype.kind not in "biufc":
            what = "Python objects" if arr.dtype == object else "non-numeric data"
            raise TypeError(
                f"tensor: cannot make a tensor of {what}; pass numbers or a numeric array "
                f"(got dtype {arr.dtype}, shape {arr.shape})"
            )
        if requires_grad:
            _check_differentiable_dtype(arr.dtype, "tensor(requires_grad=True)")
        _init(self, arr, bool(requires_grad))

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        """The dtype (a NumPy dtype, or the array library's own dtype object)."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        s = self.data.size
        return int(s) if s is not None else 0

    @property
    def device(self) -> str:
        """Where the data lives: ``"cpu"`` for NumPy, ``"cuda:0"`` for CuPy, else the
        library's own device name."""
        return device_of(self.data)

    def to(self, device: Any) -> Tensor:
        """This tensor's values on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"`` or an
        array-API namespace module); self when already there.

        The copy is a new leaf with the same ``requires_grad`` (as PyTorch's
        ``.to`` on a leaf); the move itself is not recorded on the tape.
        """
        data = move(self.data, device)
        if data is self.data:
            return self
        return from_array(data, self.requires_grad)

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded operation."""
        return self._prim is None

    @property
    def grad_fn(self) -> str | None:
        """Name of the primitive that produced this tensor on the tape, if any."""
        return None if self._prim is None else self._prim.name

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array: the underlying array itself (no copy) for NumPy
        data, a host copy for data on another library or device."""
        if type(self.data) is np.ndarray:
            return self.data
        return asnumpy(self.data)

    def item(self) -> Any:
        """The single element as a Python number."""
        if self.size != 1:
            raise ValueError(
                f"item: only a tensor with one element converts to a Python number, "
                f"got shape {self.shape}; index it or reduce it first"
            )
        if type(self.data) is np.ndarray:
            return self.data.item()
        return self.numpy().item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # NumPy's protocol: copy=True must not alias, copy=None may share the buffer
        if type(self.data) is not np.ndarray and is_foreign(self.data):
            raise TypeError(
                f"numpy.asarray: this tensor lives on {self.device} "
                f"({type(self.data).__module__.partition('.')[0]}) and is not converted "
                "implicitly; copy it to the host with t.numpy() or chainrule.asnumpy(t)"
            )
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data

    def __len__(self) -> int:
        if type(self.data) is np.ndarray:
            return len(self.data)
        if not self.data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return int(self.data.shape[0])

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = []
        if type(self.data) is not np.ndarray:
            extra.append(f"device={self.device!r}")
        if dtype_name(self.data.dtype) != "float64" or self.size == 0:
            extra.append(f"dtype={self.data.dtype}")
        if self._prim is not None:
            extra.append(f"grad_fn={self._prim.name}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self._tangents:
            extra.append(f"tangent_levels={sorted(self._tangents)}")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    def _repr_html_(self) -> str | None:
        """Jupyter's view: shape, dtype, device, requires_grad and a compact preview.

        None for symbolic tensors, which show as LaTeX (``_repr_latex_``).
        """
        return None if self._interp is not None else tensor_html(self)

    # --------------------------------------------------------------- autograd
    def backward(
        self, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        Parameters
        ----------
        grad : array_like, optional
            Cotangent of ``self``; required unless ``self`` has one element.
        retain_graph : bool, optional
            Keep the saved tensors so backward can run again (defaults to
            ``create_graph``).
        create_graph : bool
            Record the backward computation so gradients can be differentiated.
        """
        from chainrule.core.reverse import backward  # reverse needs Tensor: a real cycle

        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def detach(self) -> Tensor:
        """A tensor sharing this data, cut from the tape and from forward tangents."""
        return from_array(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf and return self."""
        if requires_grad:
            _check_differentiable_dtype(self.dtype, "requires_grad_")
        if self._prim is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        """Reset the accumulated gradient to None."""
        self.grad = None

    # ------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __lt__(self, other: Any) -> Tensor:
        return ops.less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return ops.less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return ops.greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return ops.greater_equal(self, other)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.equal(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.not_equal(self, other)

    # --------------------------------------------------------------- methods
    @property
    def T(self) -> Tensor:  # noqa: N802
        """Axes reversed, as NumPy's ``.T``."""
        return ops.transpose(self)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.transpose(self, axes or None)

    def permute(self, *axes: Any) -> Tensor:
        return self.transpose(*axes)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.reshape(self, shape)

    def astype(self, dtype: Any) -> Tensor:
        return ops.astype(self, dtype)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.min(self, axis=axis, keepdims=keepdims)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def clip(self, lo: Any = None, hi: Any = None) -> Tensor:
        return ops.clip(self, lo, hi)

    def squeeze(self, axis: Any = None) -> Tensor:
        return ops.squeeze(self, axis)

    def flatten(self) -> Tensor:
        return ops.reshape(self, (-1,))


def _init(t: Tensor, data: Any, requires_grad: bool) -> None:
    # every field of a tensor, set once here for Tensor.__init__ and from_array alike
    t.data = data
    t.requires_grad = requires_grad
    t.grad = None
    t._prim = None
    t._parents = None
    t._params = None
    t._tick = None
    t._version = 0
    t._tangents = None


_new = object.__new__


def from_array(data: Any, requires_grad: bool = False, cls: type[Tensor] = Tensor) -> Any:
    """A tensor (of class ``cls``) holding ``data`` as is: no copy, no checks, off the tape.

    The engine's one fast constructor: :func:`chainrule.core.primitive.apply`,
    forward mode, the reverse pass, symbolic tensors and compiled code all make
    their results here; :class:`Tensor` itself checks its data first, then sets
    the same fields. ``data`` must already be a NumPy array or an array-API
    array (or, for symbolic tensors, their abstract value).
    """
    t = _new(cls)
    _init(t, data, requires_grad)
    return t


def tensor_like(value: Any, like: Tensor, what: str) -> Tensor:
    """``value`` (a cotangent or tangent) as a Tensor where ``like`` lives.

    A Tensor or array-API array is taken as it is; Python data get ``like``'s
    dtype, namespace and device; a NumPy array beside an array-API ``like`` (or
    any other mix of places) is a TypeError naming ``what`` and both.
    """
    if isinstance(value, Tensor):
        t = value
    elif is_foreign(value):
        t = Tensor(value)
    elif is_foreign(like.data) and not isinstance(value, np.ndarray):
        t = from_array(to_like(np.asarray(value, dtype=dtype_name(like.dtype)), like.data))
    elif not is_foreign(like.data):
        return Tensor(np.asarray(value, dtype=like.dtype))
    else:
        t = Tensor(value)
    if is_foreign(like.data) or is_foreign(t.data):
        common_namespace(what, [like.data, t.data])
    return t


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, device: Any = None) -> Tensor:
    """Create a :class:`Tensor`.

    Parameters
    ----------
    data : array_like
        Numbers, nested lists, a NumPy array or a Tensor. Python floats become
        float64 and the dtype of an array is kept, as in NumPy.
    requires_grad : bool
        Record operations on this tensor for reverse mode (floating dtypes only).
    dtype : dtype, optional
        Cast to this dtype.
    device : str or module, optional
        ``"cpu"`` (NumPy), ``"cuda"`` or ``"cuda:N"`` (CuPy, the ``gpu`` extra),
        or an array-API namespace module. By default the data stays where it
        is: NumPy for Python data, its own library for an array-API array.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """
    if device is not None:
        if isinstance(data, Tensor):
            data = data.data
        if not is_foreign(data):
            data = np.asarray(data, dtype=None if dtype is None else numpy_dtype(dtype))
        data = move(data, device)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)
