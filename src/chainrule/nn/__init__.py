"""Networks: modules, layers, activations, initialisers, losses and the textbook backprop.

Examples
--------
>>> import numpy as np
>>> import chainrule as cr
>>> from chainrule import nn
>>> model = nn.MLP([4, 8, 3], activation="relu", rng=0)
>>> X, y = np.ones((5, 4), dtype=np.float32), np.array([0, 1, 2, 0, 1])
>>> loss = nn.F.softmax_cross_entropy(model(X), y) + nn.l2_penalty(model, 1e-3)
>>> loss.backward()
>>> model.layers[0].W.grad.shape
(8, 4)
"""

from chainrule.nn import functional, init, textbook
from chainrule.nn.activations import (
    ELU,
    GELU,
    Activation,
    HardLogistic,
    HardTanh,
    Identity,
    LeakyReLU,
    Logistic,
    ReLU,
    Sigmoid,
    Softplus,
    Swish,
    Tanh,
)
from chainrule.nn.export_onnx import export_onnx, load_onnx
from chainrule.nn.linear import Linear
from chainrule.nn.mlp import MLP
from chainrule.nn.module import Module, Parameter, Sequential
from chainrule.nn.regularization import l2_penalty
from chainrule.nn.sklearn_interop import from_sklearn
from chainrule.nn.torch_interop import from_torch, to_torch

F = functional

__all__ = [
    "ELU",
    "F",
    "GELU",
    "MLP",
    "Activation",
    "HardLogistic",
    "HardTanh",
    "Identity",
    "LeakyReLU",
    "Linear",
    "Logistic",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softplus",
    "Swish",
    "Tanh",
    "export_onnx",
    "from_sklearn",
    "from_torch",
    "functional",
    "init",
    "l2_penalty",
    "load_onnx",
    "textbook",
    "to_torch",
]
