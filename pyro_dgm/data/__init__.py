"""Data sets for the model zoo: loading, locating files, and mini-batches.

``load_dataset(name, split, ...)`` returns a ``Dataset`` held in memory; see
``available_datasets()`` for the names and ``resolve_data_dirs`` for where files are looked for.
Your own tensor of shape (N, D) becomes one with ``Dataset.from_tensors(x, y)``, and
``Dataset.split`` holds out a test set. ``Dataset.observed`` gives data as the model sees them.
"""

from pyro_dgm.data.core import Dataset, resolve_data_dirs
from pyro_dgm.data.mnist import read_idx
from pyro_dgm.data.registry import DATASETS, available_datasets, dataset_options, load_dataset

__all__ = [
    "DATASETS", "Dataset", "available_datasets", "dataset_options", "load_dataset", "read_idx",
    "resolve_data_dirs",
]
