"""Running one experiment: the context it fills in, and the files it writes.

:func:`run_experiment` creates a :class:`Context`, calls the experiment's
``run(ctx)``, and writes ``report.md``, ``results.json`` and the figures into
the output directory. Everything in ``results.json`` except the ``timings``
section is identical for identical seeds.

Examples
--------
>>> import tempfile
>>> from chainrule.experiments import run_experiment
>>> res = run_experiment("finite-differences", out=tempfile.mkdtemp(), quick=True,
...                      verbose=False)  # doctest: +SKIP
>>> res["claim_held"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import platform
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.atomic import write_text_atomic
from chainrule.experiments import plotting
from chainrule.experiments.registry import get
from chainrule.experiments.report import Report, write_json

__all__ = ["Context", "default_out_dir", "run_experiment"]


def default_out_dir(name: str) -> Path:
    """``runs/experiments/<name>`` relative to the working directory."""
    return Path("runs") / "experiments" / name


@dataclass
class Context:
    """What an experiment receives and fills in.

    Attributes
    ----------
    name, out, quick, seed
        The experiment's name, output directory, quick flag and seed.
    report : Report
        The Markdown report to add sections to.
    results : dict
        Machine-readable numbers, written to ``results.json`` (deterministic).
    timings : dict
        Wall-clock times in seconds (the only non-deterministic numbers).
    summary : list of str
        Short lines printed at the end of the run.
    claim_held : bool or None
        Whether the chapter's claim held in this run; set with :meth:`verdict`.
    """

    name: str
    out: Path
    quick: bool
    seed: int
    report: Report
    results: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    claim_held: bool | None = None

    def rng(self, key: str = "") -> np.random.Generator:
        """A generator seeded by the run's seed and ``key`` (independent streams per key)."""
        return np.random.default_rng([self.seed, zlib.crc32(key.encode())])

    def figure(self, fig: Any, filename: str, caption: str) -> None:
        """Save ``fig`` as ``out/filename`` and reference it in the report."""
        plotting.save_figure(fig, self.out / filename)
        self.figures.append(filename)
        self.report.figure(filename, caption)

    def plot(self, draw: Any, filename: str, caption: str) -> None:
        """Call ``draw()`` (returning a figure) and save it, unless matplotlib is missing."""
        try:
            fig = draw()
        except plotting.PlottingUnavailable as exc:
            note = f"Figure `{filename}` skipped: {exc}."
            self.notes.append(note)
            self.report.paragraph(note)
            return
        self.figure(fig, filename, caption)

    def verdict(self, held: bool, text: str) -> None:
        """Record whether the claim held and explain why, in the report and the results."""
        self.claim_held = bool(held)
        self.report.verdict(held, text)
        self.summary.append(("claim held: " if held else "claim did NOT hold: ") + text)


def _header(ctx: Context, claim: str) -> None:
    mode = "quick" if ctx.quick else "full"
    ctx.report.paragraph(f"**The chapter's claim.** {claim}")
    ctx.report.paragraph(
        f"Run: `chainrule experiment {ctx.name}{' --quick' if ctx.quick else ''} "
        f"--seed {ctx.seed}` ({mode} mode), Python {platform.python_version()}, "
        f"NumPy {np.__version__}. Every number below was measured in this run; "
        "`results.json` beside this file holds them in machine-readable form."
    )


def run_experiment(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the experiment ``name`` and write its report, results and figures.

    Parameters
    ----------
    name : str
        An experiment name (see :func:`chainrule.experiments.registry.names`).
    out : str or Path, optional
        Output directory; default ``runs/experiments/<name>``.
    quick : bool
        Smaller sizes, a few seconds per experiment.
    seed : int
        Seed of every random choice; the same seed gives the same numbers.
    verbose : bool
        Print a short summary.

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    exp = get(name)
    out_dir = Path(out) if out is not None else default_out_dir(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(name=name, out=out_dir, quick=quick, seed=int(seed), report=Report(exp.title))
    _header(ctx, exp.claim)
    start = time.perf_counter()
    exp.load()(ctx)
    ctx.timings["total_s"] = time.perf_counter() - start
    payload = {
        "experiment": name,
        "title": exp.title,
        "claim": exp.claim,
        "claim_held": ctx.claim_held,
        "quick": quick,
        "seed": int(seed),
        "results": ctx.results,
        "figures": ctx.figures,
        "notes": ctx.notes,
        "timings": ctx.timings,
    }
    write_json(out_dir / "results.json", payload)
    write_text_atomic(out_dir / "report.md", ctx.report.to_markdown())
    if verbose:
        print(f"[{name}] {exp.title} ({ctx.timings['total_s']:.1f} s)")
        for line in ctx.summary:
            print(f"  {line}")
        print(f"  report: {out_dir / 'report.md'}")
    return payload
