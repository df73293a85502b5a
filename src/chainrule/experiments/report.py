"""Markdown reports and atomic file writes for the experiments.

A :class:`Report` collects headings, paragraphs, tables, figures and the
verdict on the chapter's claim, and renders them as Markdown. Files are
written atomically (temporary file, fsync, ``os.replace``) so an interrupted
run never leaves a half-written report behind.

Examples
--------
>>> from chainrule.experiments.report import Report
>>> r = Report("demo")
>>> r.table(["width", "error"], [[1, 0.5], [2, 0.125]])
>>> print(r.to_markdown().splitlines()[0])
# demo
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.atomic import write_text_atomic

__all__ = ["Report", "fmt", "write_json"]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically; NumPy values become plain numbers.

    Non-finite floats are written as ``null`` so the file is strict JSON.
    """
    write_text_atomic(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def fmt(x: Any, digits: int = 3) -> str:
    """Format a number for a report: ``digits`` significant figures, integers as is.

    Examples
    --------
    >>> fmt(0.000123456), fmt(12345.678), fmt(7), fmt(True)
    ('0.000123', '1.23e+04', '7', 'yes')
    """
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if 1e-4 <= abs(v) < 1e4:
        return f"{v:.{digits}g}"
    return f"{v:.{digits - 1}e}"


class Report:
    """A Markdown report built piece by piece.

    Parameters
    ----------
    title : str
        The level-1 heading.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        """Add a heading of the given level (2 = section)."""
        self._parts.append(f"{'#' * level} {text}")

    def paragraph(self, text: str) -> None:
        """Add a paragraph of text."""
        self._parts.append(text.strip())

    def bullets(self, items: Sequence[str]) -> None:
        """Add a bulleted list."""
        self._parts.append("\n".join(f"- {item}" for item in items))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Add a table; numbers are formatted with :func:`fmt`."""

        def cell(v: Any) -> str:
            return fmt(v).replace("|", "\\|")  # a bare pipe would split the cell

        lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
        for row in rows:
            lines.append("| " + " | ".join(cell(v) for v in row) + " |")
        self._parts.append("\n".join(lines))

    def figure(self, filename: str, caption: str) -> None:
        """Reference a figure file (relative to the report) with a caption."""
        self._parts.append(f"![{caption}]({filename})\n\n*{caption}*")

    def verdict(self, held: bool, text: str) -> None:
        """State whether the chapter's claim held in this run, and why."""
        word = "HELD" if held else "DID NOT HOLD"
        self._parts.append(f"**Claim {word} in this run.** {text.strip()}")

    def to_markdown(self) -> str:
        """The whole report as Markdown text."""
        return "\n\n".join([f"# {self.title}", *self._parts]) + "\n"
