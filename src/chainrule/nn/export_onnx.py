"""Export an :class:`~chainrule.nn.MLP` to ONNX, and read back what was exported.

The graph is ``Gemm`` per layer (``X W^T + b``, ``transB=1``) with the hidden
activation between layers, ``Softmax``/``Sigmoid`` on the output for
classifiers, an optional standardisation ``(x - mean) / std`` in front (computed
in float64, as ``chainrule predict`` does), named inputs and outputs, and a
dynamic batch axis. Activations with no ONNX operator of the same formula are
composed from basic operators with chainrule's formulas (:data:`ONNX_ACTIVATIONS`).
Requires the ``onnx`` package (``pip install chainrule[onnx]``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.atomic import write_bytes_atomic
from chainrule.nn.mlp import MLP
from chainrule.nn.state_dict import torch_names

OPSET = 17
INPUT = "input"
META_KEY = "chainrule.mlp"
# layer weights; the other initialisers are graph constants
_LAYER_PARAM = re.compile(r"^\d+\.(weight|bias)$")

# how each activation is spelled in ONNX: the operators used (documentation and tests)
ONNX_ACTIVATIONS: dict[str, str] = {
    "logistic": "Sigmoid",
    "tanh": "Tanh",
    "relu": "Relu",
    "leaky_relu": "Where(x > 0, x, 0.01 * x)",
    "elu": "Where(x > 0, x, Exp(Min(x, 0)) - 1)",
    "softplus": "Relu(x) + Log(1 + Exp(-Abs(x)))",
    "swish": "x * Sigmoid(x)",
    "gelu": "0.5 * x * (1 + Erf(x / sqrt(2)))  (Erf in float32 for float64 models)",
    "hard_logistic": "Clip(0.25 * x + 0.5, 0, 1)",
    "hard_tanh": "Clip(x, -1, 1)",
    "identity": "(nothing)",
}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs the onnx package: pip install 'chainrule[onnx]'"
        ) from None
    return onnx


class _Builder:
    """Collects nodes and constants with unique names."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx, self.dtype = onnx, dtype
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.n = 0

    def const(self, name: str, value: Any, dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype or self.dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def scalar(self, value: float) -> str:
        self.n += 1
        return self.const(f"const_{self.n}", value)

    def op(self, op_type: str, inputs: Sequence[str], out: str | None = None, **attrs: Any) -> str:
        self.n += 1
        out = out or f"{op_type.lower()}_{self.n}"
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _softplus(b: _Builder, x: str) -> str:
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow
    e = b.op("Exp", [b.op("Neg", [b.op("Abs", [x])])])
    tail = b.op("Log", [b.op("Add", [b.scalar(1.0), e])])
    return b.op("Add", [b.op("Relu", [x]), tail])


def _gelu(b: _Builder, x: str) -> str:
    # 0.5 x (1 + erf(x / sqrt 2)); onnxruntime has no float64 Erf: float64 models take it in float32
    u = b.op("Mul", [x, b.scalar(1 / math.sqrt(2.0))])
    if b.dtype == np.float32:
        erf = b.op("Erf", [u])
    else:
        single = b.op("Cast", [u], to=b.onnx.TensorProto.FLOAT)
        erf = b.op("Cast", [b.op("Erf", [single])], to=_elem_type(b.onnx, b.dtype))
    return b.op("Mul", [b.op("Mul", [x, b.scalar(0.5)]), b.op("Add", [b.scalar(1.0), erf])])


def _leaky_relu(b: _Builder, x: str) -> str:
    # x for x > 0, else 0.01 x (LeakyRelu's alpha attribute is float32: 0.01 would round)
    positive = b.op("Greater", [x, b.scalar(0.0)])
    return b.op("Where", [positive, x, b.op("Mul", [x, b.scalar(0.01)])])


def _elu(b: _Builder, x: str) -> str:
    # x for x > 0, else exp(x) - 1 (of min(x, 0): no overflow); onnxruntime's Elu is float32 only
    zero = b.scalar(0.0)
    neg = b.op("Sub", [b.op("Exp", [b.op("Min", [x, zero])]), b.scalar(1.0)])
    return b.op("Where", [b.op("Greater", [x, zero]), x, neg])


def _hard_logistic(b: _Builder, x: str) -> str:
    # clip(x / 4 + 1/2, 0, 1) (ONNX's HardSigmoid has no float64 kernel in onnxruntime)
    lin = b.op("Add", [b.op("Mul", [x, b.scalar(0.25)]), b.scalar(0.5)])
    return b.op("Clip", [lin, b.scalar(0.0), b.scalar(1.0)])


_EMIT: dict[str, Callable[[_Builder, str], str]] = {
    "logistic": lambda b, x: b.op("Sigmoid", [x]),
    "tanh": lambda b, x: b.op("Tanh", [x]),
    "relu": lambda b, x: b.op("Relu", [x]),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "softplus": _softplus,
    "swish": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "gelu": _gelu,
    "hard_logistic": _hard_logistic,
    "hard_tanh": lambda b, x: b.op("Clip", [x, b.scalar(-1.0), b.scalar(1.0)]),
    "identity": lambda b, x: x,
}


def _input_width(model: MLP, input_shape: Any) -> int:
    d = model.layer_sizes[0]
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape or (None, d))
    if len(shape) == 1:
        shape = (None, *shape)
    if len(shape) != 2 or shape[1] != d:
        raise ValueError(
            f"export_onnx: input_shape {input_shape} does not match the model's input layer "
            f"({d} features); pass (None, {d}) (None: any batch size)"
        )
    return d


def export_onnx(
    model: MLP,
    path: str | Path,
    input_shape: Any = None,
    *,
    mean: Any = None,
    std: Any = None,
) -> Path:
    """Write ``model`` as an ONNX graph to ``path`` (atomically).

    Parameters
    ----------
    model : MLP
    path : str or pathlib.Path
    input_shape : tuple, optional
        ``(None, D)`` or ``(D,)``; must match the model's input size. The batch
        axis is always dynamic (named ``batch``).
    mean, std : array_like, optional
        Standardisation of raw inputs, ``(x - mean) / std``, made part of the graph
        (in float64, then cast to the model's dtype).

    Returns
    -------
    pathlib.Path
        ``path``. The graph has input ``"input"`` (batch, D) in the model's dtype;
        outputs ``"probabilities"`` and ``"logits"`` for classifiers (softmax rows,
        or a sigmoid per output for ``output="logistic"``), ``"values"`` for
        regression (``output="linear"``).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from chainrule.nn import MLP, export_onnx, load_onnx
    >>> m = MLP([3, 4, 2], activation="tanh", rng=0)
    >>> p = export_onnx(m, pathlib.Path(tempfile.mkdtemp()) / "m.onnx", (None, 3))
    >>> bool(np.array_equal(load_onnx(p).layers[1].W.numpy(), m.layers[1].W.numpy()))
    True
    """
    if not isinstance(model, MLP):
        raise TypeError(
            f"export_onnx: expected an nn.MLP, got {type(model).__name__}; a single layer is "
            "MLP([in, out], output='linear') with its weights loaded by load_state_dict"
        )
    onnx = _onnx()
    helper = onnx.helper
    d = _input_width(model, input_shape)
    dtype = model.dtype
    b = _Builder(onnx, dtype)
    x = INPUT
    if (mean is None) != (std is None):
        raise ValueError("export_onnx: pass both mean and std, or neither")
    if mean is not None:
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        if mean.shape != (d,) or std.shape != (d,):
            raise ValueError(
                f"export_onnx: mean {mean.shape} and std {std.shape} must have shape ({d},)"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError(
                "export_onnx: mean must be finite and std finite and > 0 (a constant feature's "
                f"std is 1, as data.Standardizer stores it); got mean {mean}, std {std}"
            )
        x64 = x if dtype == np.float64 else b.op("Cast", [x], to=onnx.TensorProto.DOUBLE)
        centred = b.op("Sub", [x64, b.const("input_mean", mean, np.float64)])
        z = b.op("Div", [centred, b.const("input_std", std, np.float64)])
        x = z if dtype == np.float64 else b.op("Cast", [z], to=_elem_type(onnx, dtype))
    state = model.state_dict()
    names = torch_names(len(model.layers))
    last = len(model.layers) - 1
    for i in range(len(model.layers)):
        (w_name, _, _), (b_name, _, _) = names[2 * i], names[2 * i + 1]
        w, bias = b.const(w_name, state[w_name]), b.const(b_name, state[b_name])
        out = "logits" if i == last else None
        if i == last and model.output == "linear":
            out = "values"
        x = b.op("Gemm", [x, w, bias], out=out, transB=1)
        if i < last:
            x = _EMIT[model.activation](b, x)
    outputs = ["values"] if model.output == "linear" else ["probabilities", "logits"]
    if model.output == "softmax":
        b.op("Softmax", ["logits"], out="probabilities", axis=-1)
    elif model.output == "logistic":
        b.op("Sigmoid", ["logits"], out="probabilities")
    elem = _elem_type(onnx, dtype)
    k = model.layer_sizes[-1]
    graph = helper.make_graph(
        b.nodes,
        "chainrule_mlp",
        [helper.make_tensor_value_info(INPUT, elem, ["batch", d])],
        [helper.make_tensor_value_info(o, elem, ["batch", k]) for o in outputs],
        initializer=b.inits,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="chainrule"
    )
    proto.ir_version = 8
    helper.set_model_props(proto, {META_KEY: json.dumps(model.config())})
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    write_bytes_atomic(path, proto.SerializeToString())
    return path


def _elem_type(onnx: Any, dtype: np.dtype) -> int:
    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def load_onnx(path: str | Path) -> MLP:
    """Read back an :class:`MLP` written by :func:`export_onnx` (weights bit for bit).

    Raises
    ------
    ValueError
        For a file that is not ONNX (truncated, foreign bytes), an ONNX model not
        written by chainrule, or weights whose names or shapes do not fit the
        recorded architecture (naming the layer and both shapes).
    """
    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load_model_from_string(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError
        raise ValueError(f"{path}: not a valid ONNX model (truncated or not ONNX): {exc}") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if META_KEY not in props:
        raise ValueError(
            f"{path}: an ONNX model without chainrule's '{META_KEY}' metadata (producer "
            f"{proto.producer_name or 'unknown'!r}): foreign or truncated; only complete files "
            "written by export_onnx can be read"
        )
    model = MLP.from_config(json.loads(props[META_KEY]))
    weights = {
        t.name: onnx.numpy_helper.to_array(t)
        for t in proto.graph.initializer
        if _LAYER_PARAM.match(t.name)
    }
    try:
        model.load_state_dict(weights)
        onnx.checker.check_model(proto)
    except Exception as exc:  # our ValueError naming the layer, or onnx's ValidationError
        raise ValueError(f"{path}: {str(exc).splitlines()[0]}") from None
    return model
