"""Fault injection: a run killed or starved of disk space at any moment of a write stays usable.

Every fault point inside checkpoint writes and the final save (see the
``CHAINRULE_FAULT`` test hook in :mod:`chainrule.atomic`) is hit in turn by a
forked training process that then dies of SIGKILL or stops on SIGINT; two real
``chainrule train`` subprocesses are paused in a checkpoint write and killed
from outside; and every file write of a run fails in turn with ENOSPC (simulated,
and on a real 100 KB tmpfs where the test may mount one). Each time ``info`` and
``evaluate`` work on what is left, ``chainrule train --resume`` finishes the run,
and the result equals an uninterrupted run bit for bit.
"""

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.train.checkpoint import current_dir, load_arrays
from chainrule.train.rundir import train_run

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

# early stopping that never triggers: its best weights are a fourth checkpoint file
RUN = {
    "dataset": "iris",
    "layers": [8],
    "epochs": 2,
    "batch_size": 32,
    "lr": 0.02,
    "early_stopping": True,
    "patience": 50,
    "plots": False,
    "progress": False,
}


def _in_child(out: Path, env: dict[str, str], log: Path) -> int:
    """Train into ``out`` in a forked process with ``env``; its wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.environ.update(env)
            sys.stderr = open(log, "w", buffering=1)  # noqa: SIM115 (closed by _exit)
            train_run(out, **RUN)
            code = 0
        except KeyboardInterrupt:
            code = 130
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


@pytest.fixture
def tmp_path(tmp_path):
    """A directory in memory where there is one (fsync is then nearly free), else on disk."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="chainrule-faults-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "straight"
    train_run(out, **RUN)
    return out


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    """The fault points one run reaches, in order."""
    tmp = tmp_path_factory.mktemp("points")
    assert _in_child(tmp / "run", {"CHAINRULE_FAULT": "LIST"}, tmp / "log") == 0
    lines = (tmp / "log").read_text().splitlines()
    return [ln.split(" ", 4)[4] for ln in lines if ln.startswith("chainrule: fault point")]


def _history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(fh)]


def _same(x, y) -> bool:
    """Equal nested structures; arrays equal in dtype, shape and every bit."""
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return isinstance(y, list) and len(x) == len(y) and all(map(_same, x, y))
    if isinstance(x, np.ndarray):
        return isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)
    return x == y


def _same_arrays(a: Path, b: Path) -> bool:
    return _same(load_arrays(a), load_arrays(b))


def _metrics(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    m.pop("train_time_s")
    return m


def _assert_same_run(run: Path, ref: Path) -> None:
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert _same_arrays(run / name, ref / name), name
        a, b = (current_dir(d / "checkpoint") / name for d in (run, ref))
        assert _same_arrays(a, b), f"checkpoint/{name}"
    assert _history(run) == _history(ref)
    assert _metrics(run) == _metrics(ref)


def _leftovers(run: Path) -> list[str]:
    return [p.name for d in (run, run / "checkpoint") if d.is_dir() for p in d.glob(".*.tmp")]


def _check_and_resume(run: Path, ref: Path, capsys) -> str:
    """info, evaluate and resume on an interrupted ``run``; what was left behind.

    ``"none"``: no checkpoint was complete yet (the commands say so and how to
    start again); ``"resumed"``: resumed to the end; ``"complete"``: the kill
    came after the final save. Any other outcome fails the test.
    """
    capsys.readouterr()
    code = main(["info", str(run)])
    out, err = capsys.readouterr()
    if code == 1:  # no checkpoint yet: one line that says so and how to start again
        assert err == (
            f"chainrule: error: {run}: training was interrupted before its first checkpoint "
            f"was complete, so the run holds no model; train it again with `chainrule train "
            f"--out {run} --force`\n"
        )
        assert main(["evaluate", str(run)]) == 1
        assert main(["train", "--resume", str(run)]) == 1
        assert "before its first checkpoint was complete" in capsys.readouterr().err
        return "none"
    assert code == 0, err
    interrupted = "status:" in out
    if interrupted:
        assert f"`chainrule train --resume {run}`" in out
    assert main(["evaluate", str(run)]) == 0
    err = capsys.readouterr().err
    assert (f"chainrule: note: {run}: " in err) == interrupted, err
    code = main(["train", "--resume", str(run), "--quiet", "--no-plots"])
    err = capsys.readouterr().err
    if code == 1:  # the final save had completed: nothing to resume
        assert not interrupted and "already finished its 2 epochs" in err, err
        outcome = "complete"
    else:
        assert code == 0 and interrupted, err
        outcome = "resumed"
    assert not _leftovers(run)
    _assert_same_run(run, ref)
    assert main(["info", str(run)]) == 0 and "status:" not in capsys.readouterr().out
    return outcome


@pytest.mark.parametrize("sig", ["KILL", "INT"])
def test_a_kill_at_any_point_of_a_write_leaves_a_resumable_run(
    sig, points, reference, tmp_path, capsys
):
    assert len(points) >= 30  # 2 checkpoints of 5 files and the final save of 5
    outcomes = []
    for n in range(1, len(points) + 1):
        run = tmp_path / f"run{n}"
        status = _in_child(run, {"CHAINRULE_FAULT": f"{sig}:{n}"}, tmp_path / f"log{n}")
        if sig == "KILL":
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, n
        else:  # KeyboardInterrupt ran every cleanup on its way out
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 130, n
        outcomes.append(_check_and_resume(run, reference, capsys))
    counts = {k: outcomes.count(k) for k in ("none", "resumed", "complete")}
    print(f"{sig}: {len(points)} kill points: {counts}; unresumable: 0")
    # before the first checkpoint's switch there is nothing to resume; after it, always
    first = next(i for i, name in enumerate(points) if name.startswith("CURRENT: renamed"))
    assert outcomes[:first] == ["none"] * first
    assert "none" not in outcomes[first:]
    assert outcomes[-1] == "complete" and counts["resumed"] >= 20


def _cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "chainrule", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_chainrule_train_killed_from_outside_in_a_checkpoint_write(
    sig, points, reference, tmp_path, capsys
):
    # pause between the files of the second checkpoint, after its optimizer state
    second = [i for i, p in enumerate(points, 1) if p.startswith("checkpoint gen-000002")]
    n = next(i for i in second if "optimizer.safetensors written" in points[i - 1])
    run = tmp_path / "run"
    opts = "--dataset iris --layers 8 --epochs 2 --batch-size 32 --lr 0.02 --patience 50"
    proc = _cli(
        "train", *opts.split(), "--no-plots", "--quiet", "--out", str(run),
        env={"CHAINRULE_FAULT": f"PAUSE:{n}"},
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith("chainrule: fault pause at checkpoint gen-000002"), line
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and err == "chainrule: interrupted\n"
        assert not _leftovers(run)  # Ctrl-C cleans up after itself
    else:
        assert proc.returncode == -signal.SIGKILL
        assert _leftovers(run)  # kill -9 cannot; the next command does
    assert _check_and_resume(run, reference, capsys) == "resumed"


def _failing_write(fail_at: int, calls: list[int]):
    real = os.write

    def write(fd, data):
        calls[0] += 1
        if calls[0] == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    return write


def test_a_full_disk_at_any_write_leaves_a_resumable_run(reference, tmp_path, monkeypatch, capsys):
    calls = [0]
    monkeypatch.setattr(os, "write", _failing_write(0, calls))
    train_run(tmp_path / "count", **RUN)
    total = calls[0]
    assert total >= 15
    outcomes = []
    for k in range(1, total + 1):
        run, calls[0] = tmp_path / f"run{k}", 0
        monkeypatch.setattr(os, "write", _failing_write(k, calls))
        with pytest.raises(OSError, match="No space left on device") as info:
            train_run(run, **RUN)
        monkeypatch.undo()
        msg = str(info.value)
        assert any(s in msg for s in ("checkpoint is kept", "none was written", "--resume")), msg
        assert not _leftovers(run)  # the failed write removed its temporary files
        outcomes.append(_check_and_resume(run, reference, capsys))
    assert "complete" not in outcomes and outcomes.count("resumed") >= total - 6
    print(f"ENOSPC: {total} writes failed in turn: {outcomes.count('resumed')} resumed")


@pytest.fixture
def tiny_fs(tmp_path):
    """A 100 KB tmpfs (needs root and mount); skipped where it cannot be mounted."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    cmd = ["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(mnt)]
    if os.geteuid() != 0 or subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the simulated ENOSPC test covers full disks")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_real_full_disk(tiny_fs, tmp_path, capsys):
    # about 68 KB a checkpoint (weights, Adam's two moments, best weights, 4203 float32
    # each): the second checkpoint cannot be written beside the first on 100 KB
    big = {**RUN, "layers": [600], "epochs": 3}
    ref, run = tmp_path / "ref", tiny_fs / "run"
    train_run(ref, **big)
    with pytest.raises(OSError, match="No space left on device.*previous checkpoint is kept"):
        train_run(run, **big)
    assert current_dir(run / "checkpoint").name == "gen-000001" and not _leftovers(run)
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    assert "training was interrupted after epoch 1 of 3" in capsys.readouterr().out
    subprocess.run(["mount", "-o", "remount,size=10m", str(tiny_fs)], check=True)
    start = time.perf_counter()
    assert main(["train", "--resume", str(run), "--quiet", "--no-plots"]) == 0
    assert time.perf_counter() - start < 60
    _assert_same_run(run, ref)
