"""Atomic file writes (a temporary file in the same directory, fsync, then rename) and the
fault-injection test hook.

Test hook
---------
``CHAINRULE_FAULT=ACTION:N`` makes the process act at the N-th *fault point* it
reaches (1-based, counted over the whole process). Fault points sit between the
steps of every write that must survive a crash: inside :func:`write_bytes_atomic`
and between the files of a checkpoint or of a run's final save. ``ACTION`` is

- ``KILL``: the process sends itself SIGKILL (as ``kill -9`` would);
- ``INT``: the process sends itself SIGINT (as Ctrl-C would);
- ``PAUSE``: the process prints ``chainrule: fault pause at POINT`` on standard
  error and waits, so that a test can kill it from outside.

``CHAINRULE_FAULT=LIST`` prints ``chainrule: fault point N NAME`` on standard
error at every point instead, to enumerate them. The hook exists for the
fault-injection tests (``tests/train/test_train_faults.py``); it is off unless
the variable is set.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = [
    "fault_point",
    "fsync_dir",
    "write_bytes_atomic",
    "write_file_synced",
    "write_json_atomic",
    "write_text_atomic",
]

_fault_counts: dict[int, int] = {}  # by process id: a forked child counts from 0


def fault_point(name: str) -> None:
    """A place where the ``CHAINRULE_FAULT`` test hook may kill or pause the process.

    Does nothing unless the environment variable is set (see the module docstring).
    """
    spec = os.environ.get("CHAINRULE_FAULT")
    if not spec:
        return
    count = _fault_counts[os.getpid()] = _fault_counts.get(os.getpid(), 0) + 1
    if spec == "LIST":
        print(f"chainrule: fault point {count} {name}", file=sys.stderr, flush=True)
        return
    action, _, n = spec.partition(":")
    if not n.isdigit() or int(n) != count:
        return
    if action == "KILL":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "INT":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the KeyboardInterrupt arrives here, at the latest
    elif action == "PAUSE":
        print(f"chainrule: fault pause at {name}", file=sys.stderr, flush=True)
        while True:
            time.sleep(1)


def write_file_synced(path: str | Path, data: bytes) -> None:
    """Create or truncate ``path``, write ``data`` and flush it to disk (not atomic by itself).

    Used for files in a directory that no reader looks at until it is complete.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_bytes_atomic(path: str | Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The data goes to a temporary file ``.NAME.*.tmp`` in the same directory, is
    flushed to disk (fsync) and renamed over ``path``; with ``sync_dir`` the
    directory is synced too, so the rename survives a crash. On an error the
    temporary file is removed and the old file is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> write_bytes_atomic(p, b"hi"); p.read_bytes()
    b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
            fault_point(f"{path.name}: temporary file created")
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        fault_point(f"{path.name}: written, before the rename")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)
    fault_point(f"{path.name}: renamed")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(directory: str | Path) -> None:
    """Make renames in ``directory`` durable (where the platform allows)."""
    # makes the rename itself durable; not possible on every platform
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Atomically write UTF-8 text (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (see :func:`write_bytes_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")
