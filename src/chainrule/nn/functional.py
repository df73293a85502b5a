"""Functional forms: losses, activations by name and the affine map (``chainrule.nn.F``).

Examples
--------
>>> import numpy as np
>>> from chainrule.nn import functional as F
>>> round(float(F.mse_loss(np.zeros(3), np.ones(3))), 3)
1.0
"""

from chainrule.nn.activations import get_activation
from chainrule.nn.linear import linear
from chainrule.nn.losses import (
    binary_cross_entropy_with_logits,
    loss_for_output,
    mse_loss,
    softmax_cross_entropy,
)

__all__ = [
    "binary_cross_entropy_with_logits",
    "get_activation",
    "linear",
    "loss_for_output",
    "mse_loss",
    "softmax_cross_entropy",
]
