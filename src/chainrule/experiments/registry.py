"""The experiments by name: what each one tests and where its code lives.

Each entry names a module ``chainrule.experiments.<module>`` with a function
``run(ctx: Context) -> None``; modules load only when their experiment runs,
so listing the experiments is instant.

Examples
--------
>>> from chainrule.experiments.registry import get, names
>>> "vanishing-gradients" in names()
True
>>> get("nonconvex").module
'nonconvex'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["EXPERIMENTS", "Experiment", "get", "names"]


@dataclass(frozen=True)
class Experiment:
    """One runnable check of a claim of the chapter.

    Attributes
    ----------
    name : str
        The command-line name, e.g. ``"finite-differences"``.
    module : str
        Module in ``chainrule.experiments`` holding ``run(ctx)``.
    title : str
        One-line title of the report.
    claim : str
        The chapter's claim the experiment checks.
    """

    name: str
    module: str
    title: str
    claim: str

    def load(self) -> Callable[[Any], None]:
        """Import the experiment's module and return its ``run`` function."""
        return importlib.import_module(f"chainrule.experiments.{self.module}").run


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "universal-approximation",
        "universal_approximation",
        "Universal approximation: one hidden layer, growing width",
        "A network with one hidden layer approximates any continuous function on a bounded "
        "interval to any precision, given enough hidden units.",
    ),
    Experiment(
        "vanishing-gradients",
        "vanishing_gradients",
        "Vanishing gradients in deep networks",
        "Each layer of the backward recursion multiplies by f'(z); the logistic's derivative "
        "is at most 0.25, so gradients shrink layer by layer, while ReLU's do not.",
    ),
    Experiment(
        "nonconvex",
        "nonconvex",
        "A non-convex loss surface: y = sigma(w2 sigma(w1 x))",
        "Even the tiny network y = sigma(w2 sigma(w1 x)) has a non-convex loss surface.",
    ),
    Experiment(
        "finite-differences",
        "finite_differences",
        "Finite differences: truncation against rounding error",
        "Finite differences trade truncation error (large steps) against rounding error "
        "(small steps); central differences have the smaller truncation error.",
    ),
    Experiment(
        "differentiation-cost",
        "differentiation_cost",
        "The cost of a gradient: numerical, forward mode, reverse mode",
        "Numerical differentiation of a loss with N parameters costs O(N^2); forward mode "
        "needs one sweep per input and reverse mode one sweep per output.",
    ),
    Experiment(
        "expression-swell",
        "expression_swell",
        "Expression swell of symbolic derivatives",
        "Symbolic derivatives written as expression trees grow quickly; sharing common "
        "sub-expressions (graphs, CSE) keeps them small.",
    ),
    Experiment(
        "initialisation",
        "initialisation",
        "Initialisation: symmetry and dying ReLUs",
        "All-zero initialisation keeps hidden units identical; ReLUs with very negative "
        "biases never activate and stop learning, which leaky ReLU avoids.",
    ),
    Experiment(
        "regularisation",
        "regularisation",
        "L2 regularisation: weight norm and test accuracy against lambda",
        "The (lambda/2)||W||_F^2 penalty (weights only) pushes W towards 0 as lambda grows; "
        "on a small, noisy training set this improves the test accuracy.",
    ),
    Experiment(
        "fnn-limits",
        "fnn_limits",
        "Limits of fully-connected networks: parameters and translation invariance",
        "Fully-connected networks need many parameters on images and are not invariant to "
        "translation; data augmentation is the usual remedy.",
    ),
    Experiment(
        "three-ways",
        "three_ways",
        "Three ways to differentiate f(x; w, b) = 1/(exp(-(w x + b)) + 1)",
        "Numerical, symbolic and automatic (forward and reverse mode) differentiation agree "
        "on the chapter's worked example.",
    ),
)

_BY_NAME = {e.name: e for e in EXPERIMENTS}


def names() -> list[str]:
    """Names of all experiments, in the chapter's order."""
    return [e.name for e in EXPERIMENTS]


def get(name: str) -> Experiment:
    """The experiment called ``name``.

    Raises
    ------
    KeyError
        With the list of valid names when ``name`` is unknown.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"unknown experiment {name!r}; valid names: {', '.join(names())} (or `all`, `list`)"
        ) from None
