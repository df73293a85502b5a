"""Regenerate the tutorial's figures: one key PNG per experiment in docs/figures/.

Every experiment runs in quick mode with seed 0 into a temporary directory
(``chainrule.experiments.run_experiment(name, out, quick=True, seed=0,
verbose=False)``); the figure named for it in :data:`FIGURES` is copied to
``docs/figures/<experiment>.png``. The script fails loudly (exit 1, naming the
experiment and the PNGs it did write) when a listed figure is missing, and when
an experiment of the registry has no entry in :data:`FIGURES`, so that a
renamed figure or a new experiment cannot leave the tutorial showing a stale
picture. The names are deterministic; the bytes are too, except where a figure
plots measured CPU times (differentiation-cost). Usage::

    python scripts/make_figures.py                       # every experiment
    python scripts/make_figures.py nonconvex three-ways  # only these
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from chainrule.experiments import names, run_experiment

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "figures"
SEED = 0

# experiment -> the file name of its key figure in the experiment's output directory
FIGURES: dict[str, str] = {
    "universal-approximation": "error_vs_width.png",
    "vanishing-gradients": "gradient_norms.png",
    "nonconvex": "loss_surface.png",
    "finite-differences": "error_vs_step.png",
    "differentiation-cost": "cost.png",
    "expression-swell": "expression_swell.png",
    "initialisation": "training_curves.png",
    "regularisation": "l2_sweep.png",
    "fnn-limits": "shift_accuracy.png",
    "three-ways": "graph.png",
}


class FigureError(RuntimeError):
    """A listed figure is missing, or an experiment has no listed figure."""


def target_path(name: str, target: Path = TARGET) -> Path:
    """Where the key figure of experiment ``name`` is checked in."""
    return target / f"{name}.png"


def key_figure(name: str, run_dir: Path) -> Path:
    """The key figure that experiment ``name`` wrote into ``run_dir``.

    Raises
    ------
    FigureError
        When ``name`` is not in :data:`FIGURES` or its figure was not written.
    """
    if name not in FIGURES:
        raise FigureError(
            f"make_figures: experiment {name!r} has no key figure in FIGURES; add "
            f"'{name}': '<one of its PNGs>' to scripts/make_figures.py"
        )
    path = run_dir / FIGURES[name]
    if not path.is_file():
        written = sorted(p.name for p in run_dir.glob("*.png")) or ["none"]
        raise FigureError(
            f"make_figures: experiment {name!r} did not write its key figure {FIGURES[name]!r} "
            f"(it wrote: {', '.join(written)}); update FIGURES in scripts/make_figures.py"
        )
    return path


def make_figures(selected: Sequence[str] = (), target: Path = TARGET) -> list[Path]:
    """Run the experiments in quick mode and copy their key figures into ``target``.

    Parameters
    ----------
    selected : sequence of str
        Experiment names; empty means every registered experiment.
    target : Path
        The directory of the checked-in figures.

    Returns
    -------
    list of Path
        The figures written, in the order of the experiments.
    """
    registered = names()
    unlisted = [n for n in registered if n not in FIGURES]
    stale = [n for n in FIGURES if n not in registered]
    if unlisted or stale:
        raise FigureError(
            "make_figures: FIGURES and the experiment registry differ: "
            f"no key figure listed for {unlisted}, listed but not registered {stale}"
        )
    unknown = [n for n in selected if n not in registered]
    if unknown:
        raise FigureError(f"make_figures: unknown experiments {unknown}; use some of {registered}")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="chainrule-figures-") as tmp:
        for name in selected or registered:
            run_dir = Path(tmp) / name
            start = time.perf_counter()
            run_experiment(name, run_dir, quick=True, seed=SEED, verbose=False)
            dest = target_path(name, target)
            shutil.copyfile(key_figure(name, run_dir), dest)
            written.append(dest)
            shown = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest
            print(f"{name}: {FIGURES[name]} -> {shown} ({time.perf_counter() - start:.1f} s)")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="experiments to run (default: all)")
    args = parser.parse_args(argv)
    try:
        make_figures(args.names)
    except FigureError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
