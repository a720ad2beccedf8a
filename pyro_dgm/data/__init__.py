"""Data sets for the model zoo: loading, locating files, and mini-batches.

``load_dataset(name, split, ...)`` returns a ``Dataset`` held in memory; see
``available_datasets()`` for the names and ``resolve_data_dirs`` for where files are looked for.
Your own arrays in a file and images in a folder load as ``load_dataset("tensors:FILE.npy",
split)`` and ``load_dataset("folder:PATH", split)`` (:mod:`pyro_dgm.data.user`); a tensor of
shape (N, D) in memory becomes a data set with ``Dataset.from_tensors(x, y)``, and
``Dataset.split`` holds out a test set. ``Dataset.observed`` gives data as the model sees them.
"""

from pyro_dgm.data.core import Dataset, resolve_data_dirs
from pyro_dgm.data.mnist import read_idx
from pyro_dgm.data.registry import (
    DATASETS,
    available_datasets,
    dataset_description,
    dataset_options,
    load_dataset,
    model_takes,
)

__all__ = [
    "DATASETS", "Dataset", "available_datasets", "dataset_description", "dataset_options",
    "load_dataset", "model_takes", "read_idx", "resolve_data_dirs",
]
