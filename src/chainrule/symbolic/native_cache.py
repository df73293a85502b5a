"""The native backend's disk cache: generated modules and Numba's cache of them.

Generated source is written to a module file under :func:`cache_dir`
(``$CHAINRULE_CACHE/native``, default ``~/.cache/chainrule/native``) so that Numba
caches the machine code beside it, per source and signature (``cache=True``). What can
go wrong with a cache is handled here, never raised to the user:

- a cache directory that cannot be created or written is replaced, with one warning,
  by a temporary directory of the process (:func:`private_cache_dir`);
- a module file that differs from its text (corrupt, truncated) is written again
  (:func:`module_file`);
- a Numba cache entry that cannot be loaded is removed and compiled again
  (:func:`compile_signature`), or, where compiling would be a surprise (the
  estimators' ``backend="auto"``), reported as not there (``load_only``);
- a kernel (a primitive's own loops) edited since it was cached gets a module of its
  own: the module's text holds each kernel's :func:`kernel_fingerprint`.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import inspect
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chainrule.symbolic import native_math

__all__ = [
    "cache_dir",
    "cache_files",
    "compile_signature",
    "configured_cache_dir",
    "kernel_fingerprint",
    "load",
    "module_file",
    "private_cache_dir",
    "require_numba",
    "user_stacklevel",
]

INSTALL_HINT = 'the native backend needs Numba: pip install "chainrule[fast]"'
_NJIT_OPTIONS = "cache=True, error_model='numpy', fastmath=False, nogil=True"
_PACKAGE = str(Path(__file__).resolve().parents[1])


def user_stacklevel() -> int:
    """The ``stacklevel`` of :func:`warnings.warn`, called by this function's caller, that
    points at the first frame outside chainrule (the user's line)."""
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None  # the caller: level 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def require_numba() -> Any:
    """The ``numba`` module, or an ImportError saying how to install it."""
    try:
        import numba
    except ImportError as e:  # an optional dependency
        raise ImportError(INSTALL_HINT) from e
    return numba


def configured_cache_dir() -> Path:
    """The cache directory as configured: ``$CHAINRULE_CACHE/native`` (default
    ``~/.cache/chainrule/native``), neither created nor checked (see :func:`cache_dir`);
    for looking up what an earlier process left there without side effects."""
    root = os.environ.get("CHAINRULE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "chainrule"
    )
    return Path(root) / "native"


def cache_dir() -> Path:
    """Where generated modules (and Numba's cache of them) live: :func:`configured_cache_dir`
    (created when missing), or, with a warning, a temporary directory of this process when
    that one cannot be created or written (Numba needs to write its cache beside the
    module, even to read it)."""
    path = configured_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return private_cache_dir(path, e.strerror or str(e))
    rwx = os.W_OK | os.X_OK
    pycache = path / "__pycache__"
    if not os.access(path, rwx) or (pycache.exists() and not os.access(pycache, rwx)):
        return private_cache_dir(path, "it is not writable")
    return path


_PRIVATE: list[Path] = []


def private_cache_dir(wanted: Path, reason: str) -> Path:
    """A temporary directory of this process (removed at exit) standing in for the cache
    directory ``wanted``, which cannot be used for ``reason`` (said once per process)."""
    if not _PRIVATE:
        tmp = Path(tempfile.mkdtemp(prefix="chainrule-native-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        _PRIVATE.append(tmp)
        warnings.warn(
            f"native backend: cannot use the cache directory {wanted} ({reason}); compiled "
            f"code is kept in {tmp} for this process only, so the next process compiles it "
            "again. Set CHAINRULE_CACHE to a writable directory to cache it on disk.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return _PRIVATE[0]


def module_file(name: str, text: str) -> Path:
    """The file of module ``name`` holding ``text``: written (atomically) when missing or
    when what is there differs (a corrupt or truncated file is replaced)."""
    path = cache_dir() / f"{name}.py"
    try:
        if path.is_file() and path.read_text() == text:
            return path
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except (OSError, UnicodeDecodeError) as e:
        reason = (e.strerror or str(e)) if isinstance(e, OSError) else "unreadable"
        path = private_cache_dir(path.parent, reason) / path.name
        path.write_text(text)
    return path


_KERNELS: dict[int, Any] = {}


def kernel_fingerprint(fn: Callable[..., Any]) -> str:
    """A digest of kernel ``fn``, the same in every process: its name and the source of the
    module defining it (a kernel may call its neighbours there), or its code when it has no
    source file (defined interactively)."""
    try:
        module = inspect.getmodule(fn)
        if module is None:
            raise TypeError(fn)
        parts = [fn.__qualname__, inspect.getsource(module)]
    except (OSError, TypeError):
        code = fn.__code__
        parts = [code.co_code.hex(), repr(code.co_names)]
        parts += [repr(c) for c in code.co_consts if not inspect.iscode(c)]
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]


def load(source: str, kernels: dict[str, Callable[..., Any]], inline: Sequence[str] = ()) -> Any:
    """Write ``source`` (top-level functions) to a cached module file; every function in it
    is compiled by Numba (``njit``, cached on disk), those named in ``inline`` into their
    callers (``inline="always"``: typed and optimised as part of them, never alone).
    Returns the module."""
    numba = require_numba()
    native_math.register()
    # Numba's cache of a function does not notice edits to the functions it calls: the
    # kernels' fingerprints in the text give an edited kernel a module (and cache) of its own
    stamps = "".join(f"# {k}: {kernel_fingerprint(fn)}\n" for k, fn in sorted(kernels.items()))
    stamps += f"# math: {kernel_fingerprint(native_math.exp)}\n"
    header = (
        f"{stamps}import numba\nimport numpy as np\n\n"
        "from chainrule.symbolic import native_math as math\n\n"
    )

    def decorate(m: re.Match[str]) -> str:
        extra = ", inline='always'" if m.group(1) in inline else ""
        return f"@numba.njit({_NJIT_OPTIONS}{extra})\ndef {m.group(1)}("

    text = header + re.sub(r"^def (\w+)\(", decorate, source, flags=re.M)
    digest = hashlib.sha1(text.encode()).hexdigest()[:20]
    mod_name = f"chainrule_native_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    path = module_file(mod_name, text)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    for kname, fn in kernels.items():  # the primitives' own loops, compiled once per process
        if id(fn) not in _KERNELS:
            try:
                _KERNELS[id(fn)] = numba.njit(cache=True, error_model="numpy", nogil=True)(fn)
            except RuntimeError:  # Numba finds no writable place to cache it (a function
                # defined interactively, a read-only install): compiled in each process
                _KERNELS[id(fn)] = numba.njit(error_model="numpy", nogil=True)(fn)
        setattr(module, kname, _KERNELS[id(fn)])
    spec.loader.exec_module(module)
    sys.modules[mod_name] = module
    return module


def cache_files(fn: Any, function: str = "*") -> list[Path]:
    """Numba's disk-cache files (index ``.nbi`` and data ``.nbc``) of dispatcher ``fn``'s
    module, of every function in it or of the one named ``function``: where Numba's cache
    locator put them (``NUMBA_CACHE_DIR``, a user-wide directory), else ``__pycache__``."""
    module = Path(inspect.getfile(fn.py_func))
    where = getattr(getattr(fn, "_cache", None), "_cache_path", None)
    folder = Path(where) if where else module.parent / "__pycache__"
    return list(folder.glob(f"{module.stem}.{function}-*"))


class _CacheMiss(Exception):
    """Raised in place of compiling while :func:`compile_signature` only loads."""


class _LoadOnly:
    """Stands in for a Numba dispatcher's compiler while only loading: compiling is a miss."""

    def __init__(self, compiler: Any) -> None:
        self.compiler = compiler

    def compile(self, args: Any, return_type: Any) -> Any:
        raise _CacheMiss

    def __getattr__(self, name: str) -> Any:  # the rest of the compiler's interface
        return getattr(self.compiler, name)


def compile_signature(fn: Any, sig: tuple[Any, ...], *, load_only: bool = False) -> bool:
    """Compile Numba dispatcher ``fn`` for ``sig`` (or load it from the disk cache).

    A cache entry that cannot be loaded (a corrupt or truncated index or data file)
    would fail every process the same way: on an error the function's cache files
    are removed and it is compiled once more; the second error is raised.

    With ``load_only``, the machine code is only loaded (from this process or the disk
    cache), never compiled, and nothing is removed: returns False when it is not in
    the cache or cannot be loaded from it (a corrupt or truncated index or data file,
    an entry of another Numba version or of an edited module file).

    Returns
    -------
    bool
        Whether ``fn`` is ready for ``sig`` (always True without ``load_only``).
    """
    if load_only:
        # Numba's own path (this process's overloads, then the disk cache, then its
        # compiler) with the compiler replaced: the lock keeps other threads' compiles
        # of ``fn`` away from the stand-in
        from numba.core.compiler_lock import global_compiler_lock

        with global_compiler_lock:
            compiler = fn._compiler
            fn._compiler = _LoadOnly(compiler)
            try:
                fn.compile(sig)
            except Exception:  # _CacheMiss, or an unreadable index or data file
                return False
            finally:
                fn._compiler = compiler
        return True
    try:
        fn.compile(sig)
    except Exception:
        stale = cache_files(fn)
        if not stale:
            raise
        for f in stale:
            f.unlink(missing_ok=True)
        fn.compile(sig)
    return True
