"""Data sets for the model zoo: loading, locating files, and mini-batches.

``load_dataset(name, split, ...)`` returns a ``Dataset`` held in memory; see
``available_datasets()`` for the names and ``resolve_data_dirs`` for where files are looked for.
"""

from pyro_dgm.data.core import (
    Dataset,
    available_datasets,
    dataset_options,
    load_dataset,
    resolve_data_dirs,
)
from pyro_dgm.data.mnist import read_idx

__all__ = [
    "Dataset", "available_datasets", "dataset_options", "load_dataset", "read_idx",
    "resolve_data_dirs",
]
