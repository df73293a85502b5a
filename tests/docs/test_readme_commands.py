"""The README's two commands work on an externally managed Python (PEP 668), and CI runs the
test command exactly as the README writes it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _first_bash_block() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block, "the README lost its commands"
    return [ln for ln in block.group(1).splitlines() if ln.strip()]


def test_both_commands_install_into_their_own_virtual_environment():
    lines = _first_bash_block()
    assert len(lines) == 2
    for line, target in zip(lines, ('".[train]"', '".[test]"'), strict=True):
        command = line.split("  #")[0].strip()
        # no pip into the system Python, no bare `chainrule`/`python3 -m pytest` outside .venv
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e "), command
        assert target in command
        steps = [s.strip() for s in command.split("&&")]
        assert all(s.startswith(("python3 -m venv", ".venv/bin/")) for s in steps), steps


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "venv-ci" not in ci and 'bash -c "$cmd"' in ci
    extract = re.search(r"cmd=\$\((sed .*?README\.md)\)", ci, re.S)
    assert extract, "'.ci/run' no longer reads the command from the README"
    sed = extract.group(1).replace("\\\n", " ")
    got = subprocess.run(["bash", "-c", sed], cwd=ROOT, capture_output=True, text=True).stdout
    readme_line = _first_bash_block()[1].split("# run the test suite")[0].strip()
    assert got.strip() == readme_line


def test_readme_gives_a_fashion_mnist_route_without_root():
    assert "apt-get download dataset-fashion-mnist" in README
    assert "dpkg-deb -x dataset-fashion-mnist_*.deb" in README
    assert re.search(r"--data-dir ~/\S+/usr/share/datasets/fashion-mnist", README)
