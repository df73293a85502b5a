"""What the ``chainrule`` subcommands do: train (or resume), evaluate, predict, info."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _cmd_train(args: argparse.Namespace) -> int:
    from chainrule.train.rundir import default_run_dir, train_run

    if args.resume is not None:
        return _cmd_resume(args)
    out = Path(args.out) if args.out else default_run_dir(args.dataset)
    _check_out_dir(out, force=args.force)
    if args.momentum is not None and args.optimizer != "sgd":
        raise ValueError(
            f"--momentum applies to --optimizer sgd, not {args.optimizer} (Adam's moments are "
            "fixed at betas 0.9, 0.999)"
        )
    progress = False if args.quiet else ("lines" if args.no_progress else True)
    res = train_run(
        out,
        dataset=args.dataset,
        layers=args.layers,
        activation=args.activation,
        output=args.output,
        dtype=args.dtype,
        data_dir=args.data_dir,
        plots=not args.no_plots,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=0.9 if args.momentum is None else args.momentum,
        clip_norm=args.clip_norm,
        lam=args.lam,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        loss=args.loss,
        augment=args.augment,
        backend=args.backend,
        progress=progress,
        early_stopping=args.patience is not None,
        patience=args.patience or 5,
        distributed=True if args.distributed else None,
    )
    _print_result(res, f"run saved in {out}", quiet=args.quiet)
    return 0


def _print_result(res, where: str, *, quiet: bool) -> None:
    if not getattr(res, "is_root", True):
        return
    if res.get("test_r2") is not None:
        print(f"test R^2 {res['test_r2']:.4f}, test loss {_fmt(res['test_loss'])}")
    else:
        print(f"test accuracy {_fmt(res['test_accuracy'])}, test loss {_fmt(res['test_loss'])}")
    if not quiet:
        print(where)


def _cmd_resume(args: argparse.Namespace) -> int:
    from chainrule.train.resume import load_run_settings, resume_run

    given = getattr(args, "given", set())
    misplaced = [f"--{d.replace('_', '-')}" for d in ("out", "force") if d in given]
    if misplaced:
        raise ValueError(
            f"{' and '.join(misplaced)} cannot be used with --resume: the run is continued "
            "in place in RUN_DIR"
        )
    saved = load_run_settings(args.resume)
    changed = _changed_settings(args, given, saved)
    if changed:
        raise ValueError(
            f"--resume continues {args.resume} with its saved settings, but these options "
            f"would change them: {', '.join(changed)}; drop them, or start a new run"
        )
    progress = False if args.quiet else ("lines" if args.no_progress else True)
    res = resume_run(
        args.resume,
        epochs=args.epochs if "epochs" in given else None,
        data_dir=args.data_dir,
        plots=not args.no_plots,
        progress=progress,
        distributed=True if args.distributed else None,
    )
    _print_result(
        res,
        f"run resumed after epoch {saved['epochs_done']}, saved in {args.resume}",
        quiet=args.quiet,
    )
    return 0


# options of `chainrule train` that fix the run's model, data or training (not --epochs)
_SETTING_OPTIONS = (
    "dataset layers activation output dtype seed augment optimizer lr momentum lam batch_size "
    "loss backend clip_norm patience"
).split()


def _show(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if value is None or isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


def _changed_settings(args: argparse.Namespace, given: set[str], saved: dict) -> list[str]:
    """``--option value (run: saved)`` for every option given that differs from the run."""
    from chainrule.train.resume import setting_conflicts

    requested = {name: getattr(args, name) for name in _SETTING_OPTIONS if name in given}
    out = []
    for name, want, have in setting_conflicts(saved, requested):
        flag = f"--{name.replace('_', '-')}"
        shown = flag if isinstance(want, bool) else f"{flag} {_show(want)}"
        out.append(f"{shown} (run: {_show(have)})")
    return out


def _check_out_dir(out: Path, *, force: bool) -> None:
    """Refuse to mix a new run with an old one's files, and say why a directory is unusable."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a directory, but {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(
            f"run directory {out} already holds files; choose a new --out, or pass --force "
            "to replace them"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        if force:  # remove what an earlier run wrote, so no stale plot or metric survives
            import shutil

            for f in [*_RUN_FILES, *(f.name for f in out.glob("*.png"))]:
                if (out / f).is_file():
                    (out / f).unlink()
            if (out / "checkpoint").is_dir():
                shutil.rmtree(out / "checkpoint")
    except OSError as e:
        raise OSError(f"cannot create run directory {out}: {e.strerror or e}") from None


_RUN_FILES = (
    "model.safetensors",
    "config.json",
    "optimizer.safetensors",
    "train_state.json",
    "metrics.json",
    "history.csv",
)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from chainrule.train.rundir import evaluate_run

    r = evaluate_run(args.run_dir, dataset=args.dataset, split=args.split, data_dir=args.data_dir)
    head = f"{r['dataset']} ({r['split']} split, {r['n']} samples): "
    if "r2" in r:
        print(head + f"R^2 {r['r2']:.4f}, loss {_fmt(r['loss'])}")
    else:
        print(head + f"accuracy {_fmt(r['accuracy'])}, loss {_fmt(r['loss'])}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from chainrule.train.rundir import load_inputs, predict_run

    pred = predict_run(args.run_dir, load_inputs(args.input), proba=args.proba, source=args.input)
    if args.output is None:
        np.savetxt(sys.stdout, pred, fmt="%d" if pred.dtype.kind in "iu" else "%.6g", delimiter=",")
        return 0
    out = Path(args.output)
    import io

    from chainrule.atomic import write_bytes_atomic

    buf = io.BytesIO()
    if out.suffix.lower() == ".npy":
        np.save(buf, pred)
    elif out.suffix.lower() == ".csv":
        np.savetxt(buf, pred, fmt="%d" if pred.dtype.kind in "iu" else "%.9g", delimiter=",")
    else:
        raise ValueError(f"{out}: unsupported output type {out.suffix!r}; use .csv or .npy")
    write_bytes_atomic(out, buf.getvalue())
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from chainrule.train.rundir import describe_run

    print(describe_run(args.run_dir))
    return 0


def _cmd_playground(args: argparse.Namespace) -> int:
    import webbrowser

    from chainrule.playground.server import LOOPBACK, make_server

    if args.host not in LOOPBACK and not args.allow_remote:
        raise ValueError(
            f"--host {args.host} is not loopback: other machines could reach the playground; "
            "add --allow-remote if you mean it"
        )
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    srv = make_server(args.host, args.port, export_dir=args.export_dir)
    if args.host not in LOOPBACK:
        print(f"warning: serving on {args.host}, reachable from other machines", file=sys.stderr)
    print(f"chainrule playground: {srv.url}  (Ctrl-C stops it)", flush=True)
    if not args.no_browser:
        webbrowser.open(srv.url)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        print("chainrule playground: stopped", file=sys.stderr)
    finally:
        srv.close()
    return 0
