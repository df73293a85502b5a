"""Shared fixtures of the experiment tests: each experiment runs once per session in quick mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainrule.experiments import run_experiment


class Runs:
    """Runs an experiment (quick mode, seed 0) once and returns its results.json."""

    def __init__(self, base: Path) -> None:
        self.base, self.cache = base, {}

    def __call__(self, name: str) -> dict:
        if name not in self.cache:
            run_experiment(name, self.base / name, quick=True, seed=0, verbose=False)
            self.cache[name] = json.loads((self.base / name / "results.json").read_text())
        return self.cache[name]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("experiments"))
