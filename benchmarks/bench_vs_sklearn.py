"""chainrule's MLP training against scikit-learn's MLPClassifier on the same splits and budgets.

Usage::

    PYTHONPATH=src python benchmarks/bench_vs_sklearn.py [--fashion-epochs 10] [--no-fashion]
        [--tasks digits breast_cancer] [--systems NAME ...]

Every system gets the same standardised split (``chainrule.data.load(name, seed=0)``),
architecture, optimiser (Adam), learning rate, batch size, number of epochs and no
L2 penalty. Systems: ``chainrule.train.fit`` (tape, or ``compile="numba"``),
``chainrule.sklearn.MLPClassifier`` (its default ``backend="auto"``, or ``"tape"`` or
``"numba"`` forced) and ``sklearn.neural_network.MLPClassifier``. On digits and
breast_cancer the estimators' time is one ``fit`` of all the epochs (early stopping
off: ``n_iter_no_change=epochs``); on Fashion-MNIST it is one ``partial_fit`` per
epoch, and the table also gives the training time until the test accuracy first
reaches 0.87 (measured after every epoch, outside the timed part).

Every system is warmed up first with one epoch on the same shapes (imports, first
calls, compiling), and ``--repeat k`` keeps the fastest of k timed runs (the machine's
noise). For a system that prepares native code (``compile="numba"``, the estimators'
``backend="numba"``, and ``"auto"`` when it picks it) the line above its row gives the
warm-up's compile time: a cold compile, or a load from Numba's disk cache under
``$CHAINRULE_CACHE`` (use an empty one for cold numbers); it is what a first fit in a
new process pays. The timed runs then find the code prepared in the process; their
setup (column "compile (s)", reported by ``History.compile_time`` and the estimators'
``compile_time_``) is part of the train time, and "w/o compile" leaves it out.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

TASKS = {  # name: (hidden sizes, batch size, epochs, learning rate)
    "digits": ((64,), 32, 40, 1e-3),
    "breast_cancer": ((32,), 32, 60, 1e-3),
}


def _threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl missing)"
    return ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info())


class _Timer:
    def __init__(self) -> None:
        self.train_s = 0.0
        self.curve: list[tuple[int, float, float]] = []  # (epoch, train seconds so far, test acc)
        self.compile_s = 0.0  # part of train_s spent preparing native code
        self.note = ""  # which backend ran, when the system chose it


def run_chainrule_fit(ds, hidden, batch, epochs, lr, target=None, compile=None):
    from chainrule import nn
    from chainrule.train import Callback, evaluate, fit

    timer = _Timer()

    class Clock(Callback):
        def on_epoch_begin(self, run):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, run, logs):
            timer.train_s += time.perf_counter() - self.t0
            if target is not None:
                acc = evaluate(run.model, ds.X_test, ds.y_test)["accuracy"]
                timer.curve.append((run.epoch, timer.train_s, acc))

    model = nn.MLP([ds.n_features, *hidden, ds.n_classes], rng=0)
    t0 = time.perf_counter()
    history = fit(
        model, ds, lr=lr, epochs=epochs, batch_size=batch, progress=False, callbacks=[Clock()],
        compile=compile,
    )  # fmt: skip
    if compile is not None:  # the setup (trace, load or compile) happens outside the epochs
        timer.train_s = time.perf_counter() - t0
        timer.compile_s = getattr(history, "compile_time", 0.0)
    return evaluate(model, ds.X_test, ds.y_test)["accuracy"], timer


def _run_estimator(clf, ds, epochs, target):
    timer = _Timer()
    classes = np.arange(ds.n_classes)
    X = ds.X_train.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if target is None:  # one fit of all the epochs
            t0 = time.perf_counter()
            clf.fit(X, ds.y_train)
            timer.train_s = time.perf_counter() - t0
            timer.compile_s = getattr(clf, "compile_time_", 0.0)
            assert clf.n_iter_ == epochs, (clf.n_iter_, epochs)
        for epoch in range(1, epochs + 1 if target is not None else 1):
            t0 = time.perf_counter()
            clf.partial_fit(X, ds.y_train, classes=classes)
            timer.train_s += time.perf_counter() - t0
            timer.compile_s += getattr(clf, "compile_time_", 0.0)
            timer.curve.append((epoch, timer.train_s, clf.score(ds.X_test, ds.y_test)))
    if getattr(clf, "backend", None) == "auto":
        timer.note = f" (ran {clf.backend_})"
    return clf.score(ds.X_test.astype(np.float32), ds.y_test), timer


def run_estimator(kind, ds, hidden, batch, epochs, lr, target=None, backend=None):
    if kind == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from chainrule.sklearn import MLPClassifier
    extra = {} if backend is None else {"backend": backend}
    clf = MLPClassifier(
        hidden,
        **extra,
        solver="adam",
        alpha=0.0,
        batch_size=batch,
        learning_rate_init=lr,
        random_state=0,
        shuffle=True,
        max_iter=epochs,
        n_iter_no_change=epochs,  # no early stop: every system runs the same epochs
    )
    return _run_estimator(clf, ds, epochs, target)


SYSTEMS = {
    "chainrule.train.fit": run_chainrule_fit,
    "chainrule.sklearn": lambda *a, **k: run_estimator("chainrule", *a, **k),
    "chainrule.sklearn backend=tape": lambda *a, **k: run_estimator(
        "chainrule", *a, **k, backend="tape"
    ),
    "sklearn MLPClassifier": lambda *a, **k: run_estimator("sklearn", *a, **k),
    "chainrule.train.fit compile=numba": lambda *a, **k: run_chainrule_fit(
        *a, **k, compile="numba"
    ),
    "chainrule.sklearn backend=numba": lambda *a, **k: run_estimator(
        "chainrule", *a, **k, backend="numba"
    ),
}


def _row(task, system, acc, timer, epochs, target, reference):
    eps = epochs / timer.train_s if timer.train_s else float("nan")
    hit = next(((e, t) for e, t, a in timer.curve if a >= target), None) if target else None
    to_target = (
        "-"
        if target is None
        else ("not reached" if hit is None else f"{hit[1]:.1f} s (epoch {hit[0]})")
    )
    ratio = f"{timer.train_s / reference:.2f}x" if reference else "-"
    compiled = timer.compile_s > 0
    return (
        f"| {task} | {system}{timer.note} | {acc:.4f} | {timer.train_s:.3f} | {ratio} | "
        f"{f'{timer.compile_s:.3f}' if compiled else '-'} | "
        f"{f'{timer.train_s - timer.compile_s:.3f}' if compiled else '-'} | "
        f"{eps:.2f} | {to_target} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-epochs", type=int, default=10)
    parser.add_argument("--no-fashion", action="store_true")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--tasks", nargs="*", default=None, help="subset of the tasks")
    parser.add_argument("--systems", nargs="*", default=None, help="subset of the systems")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs; the fastest counts")
    args = parser.parse_args()
    from chainrule import data

    print(f"BLAS threads: {_threads()}")
    print(
        "| task | system | test accuracy | train time (s) | vs sklearn | compile (s) "
        "| w/o compile (s) | epochs/s | time to 0.87 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    tasks = dict(TASKS)
    if not args.no_fashion:
        tasks["fashion-mnist"] = ((256, 128), 128, args.fashion_epochs, 1e-3)
    for task, (hidden, batch, epochs, lr) in tasks.items():
        if args.tasks and task not in args.tasks:
            continue
        ds = data.load(task, seed=0, data_dir=args.data_dir if task == "fashion-mnist" else None)
        target = 0.87 if task == "fashion-mnist" else None
        systems = [n for n in SYSTEMS if not args.systems or n in args.systems]
        # scikit-learn first: the other rows give their time as a multiple of its
        systems.sort(key=lambda n: n != "sklearn MLPClassifier")
        reference = None
        for system in systems:
            runner = SYSTEMS[system]
            t0 = time.perf_counter()  # warm-up: imports, first calls, compiling or loading
            _, warm = runner(ds, hidden, batch, 1, lr)
            if "numba" in system or warm.compile_s > 0:
                print(
                    f"  ({system}: warm-up epoch {time.perf_counter() - t0:.1f} s, "
                    f"of which compile or cache load {warm.compile_s:.1f} s)"
                )
            runs = [
                runner(ds, hidden, batch, epochs, lr, target=target) for _ in range(args.repeat)
            ]
            acc, timer = min(runs, key=lambda r: r[1].train_s)
            if system == "sklearn MLPClassifier":
                reference = timer.train_s
            print(
                _row(
                    f"{task} {'-'.join(map(str, hidden))} x{epochs} ep",
                    system,
                    acc,
                    timer,
                    epochs,
                    target,
                    reference,
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
