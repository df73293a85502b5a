"""The chapter's claims as runnable experiments with reports and figures.

``chainrule experiment NAME [--quick] [--out DIR] [--seed N]`` or, from Python,
:func:`run_experiment`. Each experiment writes ``report.md``, ``results.json``
and PNG figures.

Examples
--------
>>> from chainrule.experiments import names
>>> names()[:2]
['universal-approximation', 'vanishing-gradients']
"""

from chainrule.experiments.display import ExperimentResult, show
from chainrule.experiments.registry import EXPERIMENTS, Experiment, get, names
from chainrule.experiments.runner import Context, default_out_dir, run_experiment

__all__ = [
    "EXPERIMENTS",
    "Context",
    "ExperimentResult",
    "Experiment",
    "default_out_dir",
    "get",
    "names",
    "run_experiment",
    "show",
]
