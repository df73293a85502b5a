"""Ctrl-C while the ``chainrule`` command starts: one line and exit status 130, no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

# a real SIGINT, sent by the process to itself while `import chainrule` is under way (when
# the import system looks for chainrule.core), then the command started as the console
# script starts it (ENTRY) or as the generated script did before (DIRECT)
INTERRUPT_DURING_IMPORT = """
import importlib.abc, os, signal, sys

class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "chainrule.core":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Interrupt())
"""
ENTRY = "import sys, chainrule_entry; sys.exit(chainrule_entry.main())"
DIRECT = "import sys; from chainrule.cli import main; sys.exit(main())"


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC},
        timeout=120,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) is POSIX")
def test_ctrl_c_while_importing_chainrule_is_one_line_and_status_130():
    proc = _run(INTERRUPT_DURING_IMPORT + ENTRY, "info", "run")
    assert (proc.returncode, proc.stderr) == (130, "chainrule: interrupted\n")
    # the interrupt does land inside the import: without the entry point, a traceback
    direct = _run(INTERRUPT_DURING_IMPORT + DIRECT, "info", "run")
    assert direct.returncode != 0 and "KeyboardInterrupt" in direct.stderr


def test_the_entry_point_runs_the_command():
    proc = _run(ENTRY, "info", "/nonexistent-run")
    assert proc.returncode == 1
    assert proc.stderr == "chainrule: error: /nonexistent-run: no such directory\n"
