"""Execute docs/tutorial.ipynb, render its first figures to HTML and shoot them with Chromium.

Needs nbclient, ipykernel, nbconvert and a headless Chromium (``/usr/bin/chromium``)::

    python scripts/notebook_screenshot.py docs/tutorial_notebook.png

The executed notebook is rendered by nbconvert (``executed.html`` beside the PNG
is kept with ``--keep-html``); the screenshot shows the cells with rich output
(the model's table, the tape's picture, the training curves), each with the
markdown cell before it. Nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
RICH = {"text/html", "image/png", "image/svg+xml"}


def executed(path: Path, workdir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def first_figures(nb: nbformat.NotebookNode, count: int) -> nbformat.NotebookNode:
    """The first ``count`` code cells with rich output, each after its markdown cell."""
    keep: list[int] = []
    for i, cell in enumerate(nb.cells):
        outs = cell.get("outputs", []) if cell.cell_type == "code" else []
        if any(RICH & set(o.get("data", {})) for o in outs):
            if i and nb.cells[i - 1].cell_type == "markdown":
                keep.append(i - 1)
            keep.append(i)
            if sum(nb.cells[k].cell_type == "code" for k in keep) == count:
                break
    part = nbformat.v4.new_notebook(cells=[nb.cells[k] for k in keep])
    part.metadata = nb.metadata
    return part


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--figures", type=int, default=3, help="rich-output cells to show")
    parser.add_argument("--height", type=int, default=2150, help="window height in pixels")
    parser.add_argument("--keep-html", action="store_true", help="keep executed.html")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium found: apt-get install -y chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        nb = executed(ROOT / "docs" / "tutorial.ipynb", Path(tmp))
        body, _ = HTMLExporter(template_name="lab").from_notebook_node(
            first_figures(nb, args.figures)
        )
        html = Path(tmp) / "executed.html"
        html.write_text(body, encoding="utf-8")
        if args.keep_html:
            shutil.copy(html, args.png.with_name("executed.html"))
        args.png.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--window-size=1000,{args.height}",
            "--virtual-time-budget=5000",
            f"--screenshot={args.png.resolve()}",
            html.as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
