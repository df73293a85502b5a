"""Training: the loop, its history, callbacks, checkpoints, metrics and plots.

Examples
--------
>>> import chainrule as cr
>>> ds = cr.data.load("iris", seed=0)
>>> model = cr.nn.MLP([4, 16, 3], rng=0)
>>> config = cr.train.FitConfig(lr=0.01, epochs=50, batch_size=16, progress=False)
>>> history = cr.train.fit(model, ds, config)
>>> round(history.val_accuracy[-1], 2) >= 0.9
True
"""

from .callbacks import Callback, EarlyStopping, LambdaCallback, Run
from .checkpoint import Checkpoint, load_checkpoint, load_config, load_model, save_checkpoint
from .config import FitConfig
from .errors import CheckpointError, TrainingDiverged
from .history import History
from .loop import fit
from .metrics import accuracy, confusion_matrix, predict_labels, predict_proba, r2_score
from .objective import Objective
from .scoring import evaluate
from .steps import make_optimizer

__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "EarlyStopping",
    "FitConfig",
    "History",
    "LambdaCallback",
    "Objective",
    "Run",
    "TrainingDiverged",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_config",
    "load_model",
    "make_optimizer",
    "predict_labels",
    "predict_proba",
    "r2_score",
    "save_checkpoint",
]
