"""Functional transforms in JAX's style: grad, vjp, jvp, Jacobians, Hessians.

They take NumPy arrays, Python numbers or Tensors, return Tensors, never touch
``.grad``, and compose to any order: ``grad(grad(f))``, ``jacfwd(jacrev(f))``, a
``jvp`` of a ``grad``. Reverse transforms differentiate with respect to fresh
aliases of their inputs; forward transforms tag tangents with a level of their
own, so nested derivatives never confuse their perturbations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core import ops
from chainrule.core.errors import ShapeError
from chainrule.core.forward import tangent_of, with_tangent, without_level
from chainrule.core.namespace import is_floating, is_foreign, namespace_of, zeros_like_in
from chainrule.core.ops.shapes import shape_of
from chainrule.core.reverse import GradPlan, root_cotangent
from chainrule.core.state import STATE, end_level, new_level, set_grad_enabled
from chainrule.core.tensor import Tensor, from_array, tensor_like


def _input(x: Any, what: str) -> Tensor:
    t = x if isinstance(x, Tensor) else Tensor(x if is_foreign(x) else np.asarray(x))
    if not is_floating(t.dtype):
        raise TypeError(
            f"{what}: inputs to differentiate must be floating point, got dtype {t.dtype} "
            f"(shape {t.shape}). Pass floats, e.g. np.asarray(x, dtype=np.float64)."
        )
    return t


def _fresh(x: Tensor) -> Tensor:
    """A new variable for reverse mode that still depends on ``x`` for outer transforms."""
    if x.requires_grad and STATE.grad_enabled:
        return ops.identity(x)
    v = from_array(x.data, requires_grad=True)
    if x._tangents:
        v._tangents = {k: t for k, t in x._tangents.items() if k in STATE.levels} or None
    return v


def _argnums(argnums: int | Sequence[int], n: int, what: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n <= i < n:
            raise ValueError(f"{what}: argnums={argnums} out of range for {n} positional arguments")
    return tuple(i % n for i in nums)


def _output(res: Any, has_aux: bool, what: str) -> tuple[Tensor, Any]:
    if has_aux:
        if not (isinstance(res, tuple) and len(res) == 2):
            raise TypeError(f"{what}(has_aux=True): f must return a pair (output, aux)")
        out, aux = res
    else:
        out, aux = res, None
    if isinstance(out, (tuple, list, dict)):
        raise TypeError(
            f"{what}: f returned a {type(out).__name__}; it must return one tensor. Return the "
            "output to differentiate and pass has_aux=True to carry the rest along, or "
            "differentiate each output separately."
        )
    if not isinstance(out, Tensor):
        out = Tensor(out if is_foreign(out) else np.asarray(out))
    return out, aux


def _plain(out: Tensor) -> Tensor:
    """``out`` cut from the tape but keeping its forward-mode tangents."""
    if not out.requires_grad:
        return out
    v = from_array(out.data)
    v._tangents = out._tangents
    return v


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """Evaluate ``f`` and return its vector-Jacobian product function.

    Parameters
    ----------
    f : callable
        A function of tensors returning a tensor (or ``(tensor, aux)``).
    *primals
        Points at which to differentiate.

    Returns
    -------
    out : Tensor
        ``f(*primals)``.
    vjp_fn : callable
        ``vjp_fn(v)`` returns a tuple with ``v^T J`` for each primal; it may be
        called many times.
    aux : object
        Only with ``has_aux=True``.

    Examples
    --------
    >>> import chainrule as cr
    >>> out, f_vjp = cr.vjp(lambda x: x * x, cr.tensor([1.0, 2.0]))
    >>> f_vjp(cr.tensor([1.0, 1.0]))[0]
    tensor([2., 4.])
    """
    xs = [_fresh(_input(p, "vjp")) for p in primals]
    with set_grad_enabled(True):  # transforms need the tape even under no_grad
        out, aux = _output(f(*xs), has_aux, "vjp")
    plan = GradPlan(out, xs)

    def vjp_fn(ct: Any) -> tuple[Tensor, ...]:
        c = root_cotangent(out, ct, "vjp_fn")
        create = STATE.grad_enabled and (plan.needs_graph or c.requires_grad)
        gs = plan.run(c, retain_graph=True, create_graph=create)
        return tuple(_zero_if_none(g, x) for g, x in zip(gs, xs))

    result = out if plan.needs_graph else _plain(out)
    return (result, vjp_fn, aux) if has_aux else (result, vjp_fn)


def _zero_if_none(g: Any, x: Tensor) -> Tensor:
    return from_array(zeros_like_in(x.data, x.shape)) if g is None else g


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Return a function computing ``f(*args)`` and its gradient with respect to ``argnums``.

    ``f`` must return a single-element tensor. With ``has_aux=True`` it returns
    ``(out, aux)`` and the transformed function returns ``((out, aux), grad)``.

    Examples
    --------
    >>> import chainrule as cr
    >>> value, g = cr.value_and_grad(lambda x: (x ** 2).sum())(cr.tensor([1.0, 3.0]))
    >>> float(value), g
    (10.0, tensor([2., 6.]))
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), "grad")
        xs = [_fresh(_input(args[i], "grad")) for i in nums]
        full = list(args)
        for i, x in zip(nums, xs):
            full[i] = x
        with set_grad_enabled(True):
            out, aux = _output(f(*full, **kwargs), has_aux, "grad")
        if out.data.size != 1:
            raise ShapeError(
                f"grad: f must return a single number, got shape {out.shape}. Reduce it "
                "(e.g. .sum() or .mean()), or use chainrule.jacobian / vjp for vector outputs."
            )
        plan = GradPlan(out, xs)
        create = STATE.grad_enabled and plan.needs_graph
        gs = plan.run(root_cotangent(out, None, "grad"), retain_graph=create, create_graph=create)
        grads = tuple(_zero_if_none(g, x) for g, x in zip(gs, xs))
        g = grads[0] if isinstance(argnums, int) else grads
        value = out if plan.needs_graph else _plain(out)
        return ((value, aux), g) if has_aux else (value, g)

    return wrapped


def grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Gradient function by reverse-mode autodiff, giving Tensors: exact gradients of code.

    The returned function computes the gradient of scalar-valued ``f`` with
    respect to the arguments ``argnums``. Use it to train and to differentiate
    chainrule code exactly.

    See Also
    --------
    chainrule.numeric.gradient : Approximate, by finite differences: returns arrays; for checking.
    chainrule.symbolic.grad : A static graph: for inspection, simplification and compilation.

    Examples
    --------
    >>> import chainrule as cr
    >>> df = cr.grad(cr.sin)
    >>> ddf = cr.grad(cr.grad(cr.sin))
    >>> round(float(df(0.0)), 6), round(float(ddf(0.5)), 6)
    (1.0, -0.479426)
    """
    vg = value_and_grad(f, argnums, has_aux)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapped


def jvp(f: Callable[..., Any], primals: Any, tangents: Any, has_aux: bool = False) -> Any:
    """Evaluate ``f`` and its Jacobian-vector product in one forward sweep.

    Parameters
    ----------
    f : callable
        A function of tensors returning a tensor.
    primals, tangents : sequences, or one array each
        Points and tangent vectors of the same shapes. A single array, tensor
        or number is one primal (as in ``torch.autograd.functional.jvp``).

    Returns
    -------
    (out, tangent_out) : tuple of Tensor
        ``f(*primals)`` and ``J @ tangents``.

    Examples
    --------
    >>> import chainrule as cr
    >>> out, t = cr.jvp(cr.exp, (0.0,), (2.0,))
    >>> float(out), float(t)
    (1.0, 2.0)
    """
    primals, tangents = _operands(primals), _operands(tangents)
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp: got {len(primals)} primals but {len(tangents)} tangents; pass one tangent "
            "per primal"
        )
    level = new_level()
    try:
        xs = []
        for p, t in zip(primals, tangents):
            x = _input(p, "jvp")
            tt = tensor_like(t, x, "jvp (a primal and its tangent)")
            if tt.shape != x.shape:
                raise ShapeError(
                    f"jvp: tangent of shape {tt.shape} for a primal of shape {x.shape}; "
                    "each tangent must have its primal's shape"
                )
            xs.append(with_tangent(x, level, tt))
        out, aux = _output(f(*xs), has_aux, "jvp")
        t_out = tangent_of(out, level)
        if t_out is None:
            t_out = from_array(zeros_like_in(out.data, out.shape))
    finally:
        end_level(level)
    out = without_level(out, level)
    return (out, t_out, aux) if has_aux else (out, t_out)


def _operands(xs: Any) -> tuple[Any, ...]:
    """Primals or tangents as a tuple: one array, tensor or number is a single operand."""
    if isinstance(xs, (Tensor, np.ndarray, np.generic, int, float, complex)) or is_foreign(xs):
        return (xs,)
    return tuple(xs)


def _flat_basis(like: Tensor) -> Any:
    # the standard basis of like's shape, in its dtype, namespace and device
    shape = like.shape
    n = int(np.prod(shape))
    if not is_foreign(like.data):
        eye = np.eye(n, dtype=like.dtype)
        return [eye[k].reshape(shape) for k in range(n)]
    xp = namespace_of(like.data)
    eye = xp.eye(n, dtype=like.dtype, device=like.data.device)
    return [xp.reshape(eye[k, ...], shape) for k in range(n)]


LAYOUTS = ("numerator", "denominator")


def layout_axes(out_ndim: int, in_ndim: int, layout: str, who: str = "jacobian") -> tuple[int, ...]:
    """The axis order that puts a numerator-layout Jacobian into ``layout``.

    A Jacobian of ``y = f(x)`` in the **numerator** layout (JAX, PyTorch, the
    default) has shape ``y.shape + x.shape``: row ``i`` is the gradient of
    ``y_i``. The **denominator** layout (the chapter's) has shape
    ``x.shape + y.shape``: for vectors, the transpose ``dy/dx`` in R^{M x N}
    for ``x`` in R^M, ``y`` in R^N. For matrix inputs or outputs the input's
    axes simply come first, in their own order.

    Examples
    --------
    >>> layout_axes(1, 2, "denominator")
    (1, 2, 0)
    >>> layout_axes(1, 2, "numerator")
    (0, 1, 2)
    """
    if layout not in LAYOUTS:
        raise ValueError(f"{who}: layout must be 'numerator' or 'denominator', got {layout!r}")
    n = out_ndim + in_ndim
    if layout == "numerator":
        return tuple(range(n))
    return (*range(out_ndim, n), *range(out_ndim))


def _in_layout(jac: Any, out_ndim: int, layout: str) -> Any:
    axes = layout_axes(out_ndim, jac.ndim - out_ndim, layout)
    return jac if axes == tuple(range(jac.ndim)) else ops.transpose(jac, axes)


def jacfwd(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, layout: str = "numerator"
) -> Callable[..., Any]:
    """Jacobian by forward mode: one JVP sweep per input element.

    The result has shape ``out.shape + x.shape`` (a tuple for several argnums),
    or ``x.shape + out.shape`` with ``layout="denominator"`` (see :func:`layout_axes`).
    """
    layout_axes(0, 0, layout, "jacfwd")

    def wrapped(*args: Any) -> Any:
        nums = _argnums(argnums, len(args), "jacfwd")
        xs = [_input(a, "jacfwd") if i in nums else a for i, a in enumerate(args)]
        jacs = []
        for i in nums:
            x = xs[i]

            def fi(xi: Any, i: int = i) -> Any:
                return f(*xs[:i], xi, *xs[i + 1 :])

            cols = [jvp(fi, (x,), (e,))[1] for e in _flat_basis(x)]
            if not cols:
                raise ValueError("jacfwd: the input has no elements")
            out_shape = cols[0].shape
            jac = ops.stack(cols, axis=-1)
            jac = ops.reshape(jac, out_shape + x.shape)
            jacs.append(_in_layout(jac, len(out_shape), layout))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapped


def jacrev(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, layout: str = "numerator"
) -> Callable[..., Any]:
    """Jacobian by reverse mode: one VJP sweep per output element.

    The result has shape ``out.shape + x.shape`` (a tuple for several argnums),
    or ``x.shape + out.shape`` with ``layout="denominator"`` (see :func:`layout_axes`).
    """
    layout_axes(0, 0, layout, "jacrev")

    def wrapped(*args: Any) -> Any:
        nums = _argnums(argnums, len(args), "jacrev")

        def fx(*sel: Any) -> Any:
            full = list(args)
            for i, s in zip(nums, sel):
                full[i] = s
            return f(*full)

        out, pull = vjp(fx, *[args[i] for i in nums])
        rows = [pull(e) for e in _flat_basis(out)]
        jacs = []
        for k, i in enumerate(nums):
            x_shape = shape_of(args[i])
            if not rows:
                jac = from_array(zeros_like_in(out.data, out.shape + x_shape))
            else:
                jac = ops.reshape(ops.stack([r[k] for r in rows], axis=0), out.shape + x_shape)
            jacs.append(_in_layout(jac, len(out.shape), layout))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapped


def jacobian(
    f: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    mode: str = "auto",
    layout: str = "numerator",
) -> Callable[..., Any]:
    """Jacobian function by forward or reverse autodiff, giving Tensors: exact, for code.

    The mode is chosen by the chapter's rule.

    With ``mode="auto"``, forward mode is used when the inputs have fewer
    elements than the output (one sweep per input), reverse mode otherwise (one
    sweep per output). ``mode`` may also be ``"fwd"`` or ``"rev"``.
    ``layout="numerator"`` (default, as JAX and PyTorch) gives shape
    ``out.shape + x.shape``; ``layout="denominator"`` (the chapter's) gives
    ``x.shape + out.shape``, the transpose for vectors (:func:`layout_axes`).

    See Also
    --------
    chainrule.numeric.jacobian : Approximate, by finite differences: returns arrays; for checking.
    chainrule.symbolic.jacobian : A static graph: for inspection, simplification and compilation.

    Examples
    --------
    >>> import chainrule as cr
    >>> J = cr.jacobian(lambda x: x * 2.0)(cr.tensor([1.0, 2.0]))
    >>> J.numpy()
    array([[2., 0.],
           [0., 2.]])
    >>> A = cr.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # y = A x: R^2 -> R^3
    >>> cr.jacobian(lambda x: A @ x, layout="denominator")(cr.tensor([1.0, 1.0])).numpy()
    array([[1., 3., 5.],
           [2., 4., 6.]])
    """
    if mode not in ("auto", "fwd", "rev"):
        raise ValueError(f"jacobian: mode must be 'auto', 'fwd' or 'rev', got {mode!r}")
    layout_axes(0, 0, layout)

    def wrapped(*args: Any) -> Any:
        chosen = mode
        if mode == "auto":
            nums = _argnums(argnums, len(args), "jacobian")
            n_in = sum(int(np.prod(shape_of(args[i]))) for i in nums)
            with set_grad_enabled(False):
                n_out = int(np.prod(shape_of(f(*args))))
            chosen = "fwd" if n_in < n_out else "rev"
        transform = jacfwd if chosen == "fwd" else jacrev
        return transform(f, argnums, layout)(*args)

    return wrapped


def hessian(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """Hessian function by forward-over-reverse autodiff, giving Tensors: exact, for code.

    It is ``jacfwd(jacrev(f))`` for scalar ``f``.

    The result has shape ``x.shape + x.shape`` for the argument ``argnums``.
    For several arguments, concatenate them into one, or nest ``jacfwd`` and
    ``jacrev`` with the argnums you need.

    See Also
    --------
    chainrule.numeric.hessian : Approximate, by finite differences: returns arrays; for checking.
    chainrule.symbolic.hessian : A static graph: for inspection, simplification and compilation.
    """
    if not isinstance(argnums, int):
        raise TypeError(
            f"hessian: argnums must be one int, got {argnums!r}; for mixed second derivatives "
            "nest jacfwd(jacrev(f, argnums=i), argnums=j)"
        )
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f: Callable[..., Any], primals: Any, tangents: Any) -> Any:
    """Hessian-vector product ``H v`` of scalar ``f``, forward-over-reverse, without forming H.

    ``primals`` and ``tangents`` are sequences of operands, or one array (or
    tensor, or number) each for a function of one argument, as in
    ``torch.autograd.functional.hvp``. Returns a tensor shaped like the
    primal, or a tuple for several primals.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> cr.hvp(lambda x: (x ** 3).sum(), (cr.tensor([1.0, 2.0]),), (cr.tensor([1.0, 0.0]),))
    tensor([6., 0.])
    >>> cr.hvp(lambda x: (x ** 3).sum(), np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    tensor([6., 0.])
    """
    primals, tangents = _operands(primals), _operands(tangents)
    g = grad(f, argnums=tuple(range(len(primals))))

    def flat_grad(*xs: Any) -> Any:
        return ops.concatenate([ops.reshape(v, (-1,)) for v in g(*xs)])

    _, t = jvp(flat_grad, primals, tangents)
    parts, start = [], 0
    for p in primals:
        shape = shape_of(p)
        n = int(np.prod(shape))
        parts.append(ops.reshape(t[start : start + n], shape))
        start += n
    return parts[0] if len(parts) == 1 else tuple(parts)
