"""Generate docs/tutorial.ipynb from docs/tutorial.md (the one source of truth).

Every ```python block becomes a code cell, the prose between them a markdown
cell; other fenced blocks (shell commands) stay in the markdown. The output is
deterministic (cell ids numbered, no outputs), so a test can regenerate it and
compare. Usage::

    python scripts/make_notebook.py            # rewrite docs/tutorial.ipynb
    python scripts/make_notebook.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "docs" / "tutorial.md"
TARGET = ROOT / "docs" / "tutorial.ipynb"
BLOCK = re.compile(r"^```python\n(.*?)^```\n?", re.S | re.M)


def notebook(markdown: str) -> nbformat.NotebookNode:
    """The notebook for the tutorial's text: markdown and code cells in order."""
    cells = []
    pos = 0
    for m in BLOCK.finditer(markdown):
        prose = markdown[pos : m.start()].strip("\n")
        if prose.strip():
            cells.append(nbformat.v4.new_markdown_cell(prose))
        cells.append(nbformat.v4.new_code_cell(m.group(1).rstrip("\n")))
        pos = m.end()
    tail = markdown[pos:].strip("\n")
    if tail.strip():
        cells.append(nbformat.v4.new_markdown_cell(tail))
    for k, cell in enumerate(cells):
        cell["id"] = f"cell-{k:03d}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def render(markdown: str) -> str:
    """The notebook as the JSON text that is checked in."""
    nb = notebook(markdown)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check it is up to date")
    args = parser.parse_args(argv)
    text = render(SOURCE.read_text(encoding="utf-8"))
    if args.check:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run python scripts/make_notebook.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
