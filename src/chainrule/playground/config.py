"""The playground's settings and their validation: what the page may send, and its bounds.

Every field the page sends is checked here before it reaches training; a bad
value raises :class:`FieldError` naming the field, which the server answers
with HTTP 400 and the page shows next to that field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from chainrule.playground.datasets import DATASETS, FEATURES, MAX_POINTS

MAX_LAYERS = 6
MAX_NEURONS = 8
ACTIVATIONS = ("relu", "tanh", "logistic", "linear")
OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("xavier", "he", "zeros")
REGULARIZATIONS = ("none", "L1", "L2")
PROBLEMS = ("classification", "regression")


class FieldError(ValueError):
    """A field of a request is missing or out of range; ``field`` names it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.field = name
        self.message = message


@dataclass(frozen=True)
class Config:
    """One playground setup: data, features, network, training. Defaults are TF Playground's.

    Examples
    --------
    >>> c = parse_config({"hidden": [8, 8], "activation": "tanh", "dataset": "spiral"})
    >>> c.hidden, c.lr
    ([8, 8], 0.03)
    """

    dataset: str = "circle"
    problem: str = "classification"
    noise: float = 0.0
    ratio: float = 0.5
    seed: int = 0
    features: list[str] = field(default_factory=lambda: ["x1", "x2"])
    hidden: list[int] = field(default_factory=lambda: [4, 2])
    activation: str = "tanh"
    lr: float = 0.03
    batch: int = 10
    regularization: str = "none"
    reg_rate: float = 0.0
    optimizer: str = "sgd"
    init: str = "xavier"
    bias_init: float = 0.0
    residual: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (what :func:`parse_config` reads)."""
        return asdict(self)


def _number(
    raw: dict, name: str, default: float, lo: float, hi: float, *, lo_open: bool = False
) -> float:
    v = raw.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise FieldError(name, f"expected a number, got {v!r}")
    try:
        x = float(v)
    except ValueError:
        raise FieldError(name, f"{v!r} is not a number") from None
    except OverflowError:  # an integer beyond float's range
        raise FieldError(name, "the number is too large (not a finite float)") from None
    if not math.isfinite(x):
        raise FieldError(name, f"{v!r} is not a finite number")
    if x < lo or (lo_open and x == lo) or x > hi:
        low = f"> {lo:.15g}" if lo_open else f">= {lo:.15g}"
        raise FieldError(name, f"{x:.15g} is out of range: must be {low} and <= {hi:.15g}")
    return x


def _integer(raw: dict, name: str, default: int, lo: int, hi: int) -> int:
    x = _number(raw, name, default, lo, hi)
    if x != int(x):
        raise FieldError(name, f"{x:g} is not a whole number")
    return int(x)


def _choice(raw: dict, name: str, default: str, choices: tuple[str, ...]) -> str:
    v = raw.get(name, default)
    if v not in choices:
        raise FieldError(name, f"{v!r} is not one of {', '.join(choices)}")
    return str(v)


def parse_config(raw: Any, n_points: int = 500) -> Config:
    """Validate the settings the page sent; unknown keys are refused.

    Parameters
    ----------
    raw : dict
        Field name to value (strings of numbers are accepted, as forms send them).
    n_points : int
        Points in the current dataset: the batch size may not exceed the training part.

    Raises
    ------
    FieldError
        For the first bad field.
    """
    if not isinstance(raw, dict):
        raise FieldError("config", f"expected an object of settings, got {type(raw).__name__}")
    known = set(Config.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FieldError(
            unknown[0], f"unknown setting; known settings are {', '.join(sorted(known))}"
        )
    feats = raw.get("features", ["x1", "x2"])
    if not isinstance(feats, list) or not feats or len(feats) > len(FEATURES):
        raise FieldError("features", "choose at least one input feature")
    bad = [f for f in feats if not isinstance(f, str) or f not in FEATURES]
    if bad or len(set(feats)) != len(feats):
        raise FieldError(
            "features", f"unknown or repeated feature in {feats!r}; choose from {list(FEATURES)}"
        )
    hidden = raw.get("hidden", [4, 2])
    if not isinstance(hidden, list) or len(hidden) > MAX_LAYERS:
        raise FieldError("hidden", f"expected a list of at most {MAX_LAYERS} layer widths")
    widths = [_integer({"hidden": h}, "hidden", 0, 1, MAX_NEURONS) for h in hidden]
    ratio = _number(raw, "ratio", 0.5, 0.1, 0.9)
    n_train = max(1, int(round(ratio * n_points)))
    residual = raw.get("residual", False)
    if not isinstance(residual, bool):
        raise FieldError("residual", f"expected true or false, got {residual!r}")
    batch = _integer(raw, "batch", 10, 1, MAX_POINTS)
    if batch > n_train:
        raise FieldError("batch", f"batch size {batch} exceeds the {n_train} training points")
    return Config(
        dataset=_choice(raw, "dataset", "circle", DATASETS),
        problem=_choice(raw, "problem", "classification", PROBLEMS),
        noise=_number(raw, "noise", 0.0, 0.0, 0.5),
        ratio=ratio,
        seed=_integer(raw, "seed", 0, 0, 2**31 - 1),
        features=[str(f) for f in feats],
        hidden=widths,
        activation=_choice(raw, "activation", "tanh", ACTIVATIONS),
        lr=_number(raw, "lr", 0.03, 0.0, 10.0, lo_open=True),
        batch=batch,
        regularization=_choice(raw, "regularization", "none", REGULARIZATIONS),
        reg_rate=_number(raw, "reg_rate", 0.0, 0.0, 10.0),
        optimizer=_choice(raw, "optimizer", "sgd", OPTIMIZERS),
        init=_choice(raw, "init", "xavier", INITS),
        bias_init=_number(raw, "bias_init", 0.0, -1.0, 1.0),
        residual=residual,
    )
