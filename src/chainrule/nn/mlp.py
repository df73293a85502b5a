"""The chapter's multi-layer perceptron: Linear layers with one activation between them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import chainrule.core.ops as ops
from chainrule.core import Tensor, no_grad
from chainrule.core.devices import to_like
from chainrule.core.namespace import dtype_name, is_foreign
from chainrule.nn.activations import ACTIVATIONS, canonical_activation
from chainrule.nn.init import as_rng
from chainrule.nn.linear import Linear, linear
from chainrule.nn.losses import LOSSES
from chainrule.nn.module import Module, Parameter
from chainrule.nn.state_dict import from_native, torch_names

OUTPUTS = tuple(LOSSES)


class MLP(Module):
    """Multi-layer perceptron ``z^(l) = a^(l-1) W^(l)T + b^(l)``, ``a^(l) = f(z^(l))``.

    Calling the model returns the logits ``z^(L)``: the output nonlinearity
    (softmax, logistic or none) is applied by the matching loss
    (:func:`chainrule.nn.functional.loss_for_output`) and by
    :meth:`predict_proba`.

    Parameters
    ----------
    layer_sizes : sequence of int
        Input size, hidden sizes..., output size, e.g. ``[64, 32, 10]``.
    activation : str
        Hidden activation (see :func:`chainrule.nn.functional.get_activation`).
    output : {"softmax", "logistic", "linear"}
        Output kind: multi-class, binary (or multi-label), or regression.
    dtype : dtype
        Parameter dtype; inputs are cast to it.
    rng : int or numpy.random.Generator, optional
        Seed or generator for the initial weights.
    init : str
        Weight initialiser (``"auto"``: He for ReLU-like activations, else Xavier;
        see :class:`chainrule.nn.Linear` for the others, ``"zeros"`` included).
    bias_init : float
        Initial value of every bias, in every layer (0 by default). A constant
        output bias shifts all logits alike, which leaves softmax probabilities
        unchanged; in the hidden layers a negative value switches ReLUs off.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import MLP
    >>> model = MLP([4, 8, 3], activation="tanh", rng=0)
    >>> model(np.ones((2, 4))).shape
    (2, 3)
    >>> model.predict(np.ones((2, 4))).shape
    (2,)
    """

    _act: Callable[[Any], Any]  # the hidden activation (not a registered attribute)

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        output: str = "softmax",
        dtype: Any = np.float32,
        rng: Any = None,
        init: str = "auto",
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(
                f"MLP: layer_sizes needs an input and an output size, all positive, "
                f"got {list(layer_sizes)}; e.g. [64, 32, 10]"
            )
        if output not in OUTPUTS:
            raise ValueError(f"MLP: output must be one of {list(OUTPUTS)}, got {output!r}")
        self.layer_sizes = sizes
        self.activation = canonical_activation(activation)
        self.output = output
        self.dtype = np.dtype(dtype)
        self.init = init
        self.bias_init = float(bias_init)
        gen = as_rng(rng)
        n = len(sizes) - 1
        self.layers = [
            Linear(
                sizes[i],
                sizes[i + 1],
                dtype=self.dtype,
                rng=gen,
                init=init,
                activation=self.activation if i < n - 1 else "identity",
                bias_init=self.bias_init,
            )
            for i in range(n)
        ]
        object.__setattr__(self, "_act", ACTIVATIONS[self.activation])

    def _cast(self, X: Any) -> Any:  # noqa: N803
        if is_foreign(X):  # an array of another library: a tensor in its namespace
            X = Tensor(X)
        if isinstance(X, Tensor):
            d = X.dtype
            same = d == self.dtype if isinstance(d, np.dtype) else dtype_name(d) == self.dtype.name
            return X if same else ops.astype(X, self.dtype)
        X = np.asarray(X)
        return X if X.dtype == self.dtype else X.astype(self.dtype)

    def forward(self, X: Any) -> Any:  # noqa: N803
        """The logits ``z^(L)`` for inputs ``X`` of shape (N, layer_sizes[0])."""
        return self.pre_activations(X)[-1]

    def pre_activations(self, X: Any) -> list[Any]:  # noqa: N803
        """Every layer's pre-activation ``z^(1), ..., z^(L)``; the last are the logits.

        They are recorded on the tape like the forward pass (the call is the
        forward pass), so gradients flow from any of them to the parameters.

        Examples
        --------
        >>> import numpy as np
        >>> from chainrule.nn import MLP
        >>> model = MLP([4, 8, 5, 3], rng=0)
        >>> [z.shape for z in model.pre_activations(np.ones((2, 4)))]
        [(2, 8), (2, 5), (2, 3)]
        """
        a = self._cast(X)
        if np.shape(a)[-1:] != (self.layer_sizes[0],):
            raise ValueError(
                f"MLP: input of shape {np.shape(a)} does not match the input size "
                f"{self.layer_sizes[0]}; pass X of shape (N, {self.layer_sizes[0]})"
            )
        act = self._act
        zs: list[Any] = []
        for layer in self.layers:
            if zs:
                a = act(zs[-1])
            zs.append(linear(a, layer.W, layer.b))
        return zs

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        """Output probabilities: softmax rows (N, C), or sigmoid per output (N, K).

        For ``output="linear"`` this is the prediction itself. Host data (NumPy,
        lists) go to the model's device first, as in :func:`chainrule.train.fit`;
        the result is NumPy.
        """
        like = self.parameters()[0].data
        if is_foreign(like) and not isinstance(X, Tensor) and not is_foreign(X):
            X = to_like(self._cast(X), like)
        with no_grad():
            z = self.forward(X)
            if self.output == "softmax":
                z = ops.softmax(z, axis=-1)
            elif self.output == "logistic":
                z = ops.sigmoid(z)
        return z.numpy()

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Class labels (N,) for softmax, 0/1 labels for logistic ((N,) for one output),
        values (N, out) for linear."""
        p = self.predict_proba(X)
        if self.output == "softmax":
            return p.argmax(axis=-1)
        if self.output == "logistic":
            labels = (p >= 0.5).astype(np.int64)
            return labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
        return p

    def state_parameters(self) -> dict[str, Parameter]:
        """The parameters under ``torch.nn.Sequential`` names: ``0.weight``, ``0.bias``, ...

        Layer ``l`` is module ``2 l`` of ``Sequential(Linear, Act, Linear, ...)``;
        its weight has shape (out, in) as in PyTorch. So ``state_dict()`` loads
        into such a sequential (after ``torch.as_tensor``) and back.

        Examples
        --------
        >>> from chainrule.nn import MLP
        >>> {k: v.shape for k, v in MLP([3, 4, 2], rng=0).state_dict().items()}
        {'0.weight': (4, 3), '0.bias': (4,), '2.weight': (2, 4), '2.bias': (2,)}
        """
        params = dict(self.named_parameters())
        return {t: params[n] for t, n, _ in torch_names(len(self.layers))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy weights in place from a state dict keyed by torch names.

        Arrays, nested lists and torch tensors are accepted; a dict keyed by the
        MLP's own parameter names (``layers.0.W``, older checkpoints) too.
        Errors name every missing, unexpected or mismatched key with its shapes.
        """
        super().load_state_dict(from_native(state, len(self.layers)))

    def config(self) -> dict[str, Any]:
        """The architecture as a JSON-serialisable dict (see :meth:`from_config`)."""
        return {
            "layer_sizes": list(self.layer_sizes),
            "activation": self.activation,
            "output": self.output,
            "dtype": self.dtype.name,
            "init": self.init,
            "bias_init": self.bias_init,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], rng: Any = None) -> MLP:
        """Rebuild the architecture from :meth:`config` (weights freshly initialised).

        Examples
        --------
        >>> from chainrule.nn import MLP
        >>> m = MLP([3, 5, 2], activation="elu", rng=0)
        >>> MLP.from_config(m.config()).config() == m.config()
        True
        """
        known = {"layer_sizes", "activation", "output", "dtype", "init", "bias_init"}
        unknown = sorted(set(cfg) - known)
        if unknown or "layer_sizes" not in cfg:
            raise ValueError(
                f"MLP.from_config: expected keys {sorted(known)} (layer_sizes required), "
                f"got unknown keys {unknown}"
            )
        return cls(
            cfg["layer_sizes"],
            activation=cfg.get("activation", "relu"),
            output=cfg.get("output", "softmax"),
            dtype=np.dtype(cfg.get("dtype", "float32")),
            rng=rng,
            init=cfg.get("init", "auto"),
            bias_init=cfg.get("bias_init", 0.0),
        )

    def extra_repr(self) -> str:
        return (
            f"layer_sizes={self.layer_sizes}, activation={self.activation!r}, "
            f"output={self.output!r}, dtype={self.dtype}"
        )
