"""Optimisers (SGD, Adam), learning-rate schedules and gradient clipping.

Examples
--------
>>> import numpy as np
>>> from chainrule import nn, optim
>>> model = nn.MLP([2, 4, 1], activation="tanh", output="linear", rng=0)
>>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> loss = nn.F.mse_loss(model(np.ones((3, 2))), np.zeros(3))
>>> loss.backward()
>>> opt.step()
>>> opt.zero_grad()
"""

from chainrule.optim.adam import Adam
from chainrule.optim.clip import clip_grad_norm_
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.schedules import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from chainrule.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "Optimizer",
    "StepLR",
    "clip_grad_norm_",
]
