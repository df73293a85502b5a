"""An experiment's result in Jupyter: its report and its figures, inline."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from chainrule.experiments.registry import names
from chainrule.experiments.runner import default_out_dir


class ExperimentResult:
    """The files an experiment wrote (``report.md``, ``results.json``, PNG figures), for display.

    Parameters
    ----------
    out : str or Path
        The experiment's output directory, or an experiment name (its default directory).
    """

    def __init__(self, out: str | Path) -> None:
        path = Path(out)
        if not path.is_dir() and str(out) in names():
            path = default_out_dir(str(out))
        if not (path / "results.json").is_file():
            raise FileNotFoundError(
                f"{path}: no results.json; run the experiment first "
                "(chainrule experiment NAME --out DIR, or run_experiment)"
            )
        self.path = path
        self.results = json.loads((path / "results.json").read_text(encoding="utf-8"))
        self.report = (path / "report.md").read_text(encoding="utf-8")

    def _repr_markdown_(self) -> str:
        return self.report

    def _repr_html_(self) -> str:
        figures = []
        for name in self.results.get("figures", []):
            f = self.path / name
            if f.is_file():
                data = base64.b64encode(f.read_bytes()).decode()
                figures.append(
                    f"<figure><img src='data:image/png;base64,{data}' style='max-width:100%'/>"
                    f"<figcaption>{html.escape(name)}</figcaption></figure>"
                )
        return (
            f"<div class='chainrule-experiment'><pre style='white-space:pre-wrap'>"
            f"{html.escape(self.report)}</pre>{''.join(figures)}</div>"
        )

    def __repr__(self) -> str:
        held = self.results.get("claim_held")
        return f"<ExperimentResult {self.results.get('experiment')!r}: claim held {held}>"


def show(out: str | Path) -> ExperimentResult:
    """An experiment's report and figures for inline display in Jupyter.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from chainrule.experiments import show
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "report.md").write_text("# A claim held")
    >>> _ = (d / "results.json").write_text(json.dumps({"experiment": "x", "figures": []}))
    >>> "# A claim" in show(d)._repr_html_()
    True
    """
    return ExperimentResult(out)
