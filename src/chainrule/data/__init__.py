"""Offline datasets, splits, standardisation, mini-batches and image augmentation.

Examples
--------
>>> from chainrule import data
>>> ds = data.load("iris", seed=0)
>>> ds.X_train.shape[1], ds.n_classes
(4, 3)
"""

from .augment import augment_images, shift_images
from .batches import (
    Batch,
    BatchDraws,
    MiniBatches,
    batch_indices,
    epoch_permutation,
    iterate_minibatches,
    shard,
    shard_bounds,
    shard_weight,
)
from .checks import require_finite
from .datasets import Dataset, dataset_shape, list_datasets, load
from .errors import DataError
from .idx import read_idx, write_idx
from .mnist import load_idx_dataset
from .splits import Standardizer, stratified_subsample, train_val_test_split
from .synthetic import (
    make_circles,
    make_moons,
    make_regression_1d,
    make_spiral,
    make_xor,
    make_xor_cloud,
    regression_function,
)
from .tables import load_inputs

__all__ = [
    "Batch",
    "BatchDraws",
    "DataError",
    "Dataset",
    "dataset_shape",
    "MiniBatches",
    "Standardizer",
    "augment_images",
    "batch_indices",
    "epoch_permutation",
    "iterate_minibatches",
    "list_datasets",
    "load",
    "load_idx_dataset",
    "load_inputs",
    "make_circles",
    "make_moons",
    "make_regression_1d",
    "make_spiral",
    "make_xor",
    "make_xor_cloud",
    "read_idx",
    "regression_function",
    "require_finite",
    "shard",
    "shard_bounds",
    "shard_weight",
    "shift_images",
    "stratified_subsample",
    "train_val_test_split",
    "write_idx",
]
