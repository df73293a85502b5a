"""The experiment command line, the registry, the report writer and determinism."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.atomic import write_text_atomic
from chainrule.experiments import cli, get, names, run_experiment
from chainrule.experiments.report import Report, fmt, write_json


def test_registry_lists_every_experiment_of_the_issue() -> None:
    assert names() == [
        "universal-approximation",
        "vanishing-gradients",
        "nonconvex",
        "finite-differences",
        "differentiation-cost",
        "expression-swell",
        "initialisation",
        "regularisation",
        "fnn-limits",
        "three-ways",
    ]
    for n in names():
        assert callable(get(n).load())


def test_unknown_experiment_names_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="valid names: universal-approximation"):
        get("no-such-thing")


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in names())


def test_cli_rejects_unknown_name() -> None:
    with pytest.raises(SystemExit):
        cli.main(["nope"])


def test_add_parser_sets_func(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    parser = argparse.ArgumentParser(prog="chainrule")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["experiment", "fnn-limits", "--quick", "--out", str(tmp_path), "--seed", "3"]
    )
    assert args.func(args) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["seed"] == 3 and res["quick"] is True
    assert "[fnn-limits]" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["three-ways", "all"])
@pytest.mark.parametrize("below", ["", "sub"])
def test_out_that_is_a_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, below: str
) -> None:
    from chainrule.cli import main as chainrule_main

    f = tmp_path / "results.txt"
    f.write_text("keep me")
    out = f / below if below else f
    for run in (cli.main, lambda argv: chainrule_main(["experiment", *argv])):
        assert run([name, "--quick", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err == f"chainrule: error: --out must be a directory: {out}\n"
    assert f.read_text() == "keep me"  # nothing was run or written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")

    def results(d: str) -> dict:
        run_experiment("nonconvex", tmp_path / d, quick=True, seed=int(d[-1]), verbose=False)
        res = json.loads((tmp_path / d / "results.json").read_text())
        assert res["timings"]["total_s"] > 0
        del res["timings"]  # wall times are the only numbers allowed to differ
        return res

    a, b, c = results("a1"), results("b1"), results("c2")
    assert a == b
    assert (tmp_path / "a1" / "report.md").read_text() == (
        tmp_path / "b1" / "report.md"
    ).read_text()
    assert c["results"]["runs"][0]["start"] != a["results"]["runs"][0]["start"]


def test_report_table_escapes_pipes_and_formats_numbers() -> None:
    r = Report("t")
    r.table(["||W||_F", "n"], [[0.000123456, 7]])
    text = r.to_markdown()
    assert "| \\|\\|W\\|\\|_F | n |" in text
    assert "| 0.000123 | 7 |" in text
    assert fmt(float("nan")) == "nan" and fmt(2.5e-7) == "2.50e-07"


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "sub" / "x.md", "hello")
    write_json(tmp_path / "r.json", {"a": float("inf"), "b": [1, 2.5]})
    assert (tmp_path / "sub" / "x.md").read_text() == "hello"
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": None, "b": [1, 2.5]}
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["r.json", "x.md"]


def test_this_directory_collects_in_one_call_with_another_that_has_a_conftest() -> None:
    # given several directories, pytest loads all their conftest.py files before collecting;
    # collected again as doctest modules, every one but the last failed ("import file
    # mismatch": they are all modules named "conftest"), so tests/conftest.py ignores them
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), *sys.path])}
    dirs = ["tests/experiments", "tests/playground", "tests/xp"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *dirs, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "import file mismatch" not in out.stdout
