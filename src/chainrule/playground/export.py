"""Export a playground session as a chainrule run directory and a Python snippet.

The directory is written only under the server's export root, under a name
that is checked (letters, digits, ``.``, ``_``, ``-``; no path separators, no
``..``), so the page can never choose where files go.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from chainrule.atomic import write_bytes_atomic, write_json_atomic
from chainrule.playground.config import FieldError
from chainrule.playground.network import INIT_NAMES
from chainrule.playground.session import Session
from chainrule.train.checkpoint import save_checkpoint
from chainrule.train.history import History

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: Any) -> str:
    """The export name, or :class:`FieldError` for anything that could leave the export root.

    Examples
    --------
    >>> check_name("spiral-run")
    'spiral-run'
    >>> check_name("../etc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chainrule.playground.config.FieldError: name: '../etc' is not allowed: ...
    """
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        raise FieldError(
            "name",
            f"{name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def _table(path: Path, names: list[str], F: Any, y: Any, label: str) -> None:  # noqa: N803
    rows = [",".join(names + [label])]
    rows += [",".join(f"{v:.17g}" for v in (*f, t)) for f, t in zip(F, y, strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def epoch_history(s: Session) -> History:
    """One row per finished epoch, as ``chainrule evaluate/info`` read a run's history.

    The session records losses per frame, not per epoch; each epoch gets the
    last record taken at it (the playground's test loss as ``val_loss``), NaN
    where none was taken (an epoch passed between two frames). Accuracies
    are not measured by the playground and are NaN.

    Examples
    --------
    >>> s = Session()
    >>> _ = s.train_epochs(3)
    >>> h = epoch_history(s)
    >>> h.epoch, len(h.loss) == len(h.accuracy) == 3
    ([1, 2, 3], True)
    """
    last = {epoch: (tr, te) for epoch, tr, te in s.history}
    h = History()
    for epoch in range(1, s.epoch + 1):
        tr, te = last.get(epoch, (math.nan, math.nan))
        h.append(epoch=epoch, loss=tr, accuracy=math.nan, val_loss=te, val_accuracy=math.nan,
                 lr=s.cfg.lr, time=math.nan)  # fmt: skip
    return h


def snippet(s: Session) -> str:
    """A Python script that retrains this run's network on the exported tables.

    It builds the same ``chainrule.nn.MLP`` (layer sizes, activation, output,
    initialiser, constant bias, seed) and trains it with ``chainrule.train.fit``
    (SGD, momentum 0.9 or Adam, the L2 rate as ``lam``, the test part as
    validation data). ``train.fit`` has no L1 penalty: with L1 the script runs
    the playground's own mini-batch loop with ``chainrule.optim`` instead.
    Residual networks are not plain MLPs and are refused.
    """
    c = s.cfg
    if c.residual and any(s.skip):
        raise FieldError(
            "residual", "a network with skip connections is not an nn.MLP: no script rebuilds it"
        )
    epochs = max(s.epoch, 1)
    l1 = c.regularization == "L1"
    imports = (
        "import chainrule as cr\nfrom chainrule import nn, optim"
        if l1
        else "from chainrule import nn, train"
    )
    head = f'''"""Retrain a chainrule playground run (settings: {json.dumps(c.to_dict())})."""
import numpy as np
{imports}

train_part = np.loadtxt("train.csv", delimiter=",", skiprows=1, ndmin=2)
test = np.loadtxt("test.csv", delimiter=",", skiprows=1, ndmin=2)
X, y = train_part[:, :-1], train_part[:, -1:]  # input features {c.features}, then the label
X_test, y_test = test[:, :-1], test[:, -1:]
model = nn.MLP({s.model.layer_sizes}, activation={c.activation!r}, output={s.model.output!r},
               dtype=np.float64, rng={c.seed}, init={INIT_NAMES[c.init]!r},
               bias_init={c.bias_init!r})
'''
    if not l1:
        how = {
            "sgd": 'optimizer="sgd", momentum=0.0',
            "momentum": 'optimizer="sgd", momentum=0.9',
            "adam": 'optimizer="adam"',
        }[c.optimizer]
        lam = c.reg_rate if c.regularization == "L2" else 0.0
        return (
            head
            + f"""history = train.fit(model, (X, y, X_test, y_test), {how}, lr={c.lr!r},
                    batch_size={c.batch}, epochs={epochs}, lam={lam!r}, seed={c.seed},
                    progress=False)
print("test loss", history.val_loss[-1])
"""
        )
    opt = {
        "sgd": "optim.SGD(params, lr=LR)",
        "momentum": "optim.SGD(params, lr=LR, momentum=0.9)",
        "adam": "optim.Adam(params, lr=LR)",
    }[c.optimizer]
    return (
        head
        + f"""# train.fit has no L1 penalty: the playground's own loop, with chainrule.optim
LR, RATE, BATCH, EPOCHS = {c.lr!r}, {c.reg_rate!r}, {c.batch}, {epochs}
params = model.parameters()
opt = {opt}
loss_fn = nn.F.loss_for_output(model.output)
rng = np.random.default_rng({c.seed})
for epoch in range(EPOCHS):
    order = rng.permutation(len(X))
    for start in range(0, len(X) - BATCH + 1, BATCH):
        idx = order[start:start + BATCH]
        l1 = sum(cr.sum(cr.abs(layer.W)) for layer in model.layers)
        loss = loss_fn(model(X[idx]), y[idx]) + RATE * l1
        loss.backward()
        opt.step()
        opt.zero_grad()
with cr.no_grad():
    print("test loss", float(loss_fn(model(X_test), y_test).numpy()))
"""
    )


def export_run(s: Session, root: Path, name: Any) -> Path:
    """Write ``root/name`` as a run directory that ``chainrule evaluate/predict/info`` read.

    Holds the checkpoint (``model.safetensors``, ``config.json``,
    ``train_state.json``), ``metrics.json``, the data as ``train.csv`` and
    ``test.csv`` (the chosen input features, then the label), and
    ``reproduce.py``. Residual networks are not plain MLPs and are refused.
    """
    out = Path(root) / check_name(name)
    if s.cfg.residual and any(s.skip):
        raise FieldError(
            "residual", "a network with skip connections is not an nn.MLP and cannot be exported"
        )
    if s.epoch < 1:
        raise FieldError("epoch", "nothing to export yet: train at least one epoch (play or step)")
    if out.exists():
        raise FieldError(
            "name", f"{name!r} exists already in the export directory; choose another name"
        )
    out.mkdir(parents=True)
    label = "class" if s.task == "classification" else "target"
    _table(out / "train.csv", s.cfg.features, s.F_train, s.y_train, label)
    _table(out / "test.csv", s.cfg.features, s.F_test, s.y_test, label)
    training = {
        "dataset": "table",
        "data_dir": str(out.resolve()),
        "data_seed": s.cfg.seed,
        "optimizer": s.cfg.optimizer,
        "lr": s.cfg.lr,
        "batch_size": s.cfg.batch,
        "epochs": s.epoch,
        "playground": s.cfg.to_dict(),
    }
    history = epoch_history(s).to_dict()
    save_checkpoint(
        out,
        s.model,
        s.opt,
        {"epoch": s.epoch, "history": history, "seed": s.cfg.seed, "final": True},
        config=training,
    )
    tr, te = s.losses()
    write_json_atomic(
        out / "metrics.json",
        {
            "dataset": "table",
            "train_loss": tr,
            "test_loss": te,
            "epochs": s.epoch,
            "n_parameters": s.model.num_parameters(),
        },
    )
    # the page's loss curve (sampled per frame, not per epoch, so not a train_state history)
    curve = "epoch,train_loss,test_loss\n" + "".join(f"{e},{a!r},{b!r}\n" for e, a, b in s.history)
    write_bytes_atomic(out / "loss_curve.csv", curve.encode())
    (out / "reproduce.py").write_text(snippet(s), encoding="utf-8")
    return out
