"""Partly labelled training data for semi-supervised models (M2; seed ``000``, "Semi-Supervised").

:func:`partly_labelled` keeps the labels of a fixed, class-balanced fraction of a labelled
data set (chosen by a seed) and hides the rest. The result's ``batches`` yield ``(x, y)``
tuples with ``y = -1`` where the label is hidden, which the Trainer passes on as
``model(x, y)`` / ``guide(x, y)``. As is usual for M2 (Kingma et al. 2014), each batch can
also carry ``labelled_per_batch`` extra labelled examples drawn from the labelled subset, so
that with 1 % of labels every step still sees a few.

Registered data sets: ``mnist-ssl`` and ``bars-ssl``, whose training split is partly
labelled (options ``labelled_fraction``, ``labelled_per_batch``) and whose test split is the
plain, fully labelled one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from pyro_dgm.data.bars import load_bars
from pyro_dgm.data.core import Dataset
from pyro_dgm.data.mnist import load_mnist
from pyro_dgm.errors import PyroDGMError


@dataclass(repr=False)
class PartlyLabelledDataset(Dataset):
    """A :class:`Dataset` whose ``batches`` yield ``(x, y_seen)``; ``y`` keeps every true label.

    ``labelled`` is the boolean mask of examples whose label the model may see;
    ``y_seen = where(labelled, y, -1)``.
    """

    labelled: torch.Tensor | None = None
    labelled_per_batch: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.y is None or self.labelled is None or self.labelled.shape != self.y.shape:
            raise PyroDGMError("a partly labelled data set needs labels y and a mask 'labelled' "
                               "of the same shape")

    @property
    def y_seen(self) -> torch.Tensor:
        """The labels the model sees: the true label where kept, ``-1`` where hidden."""
        return torch.where(self.labelled, self.y, torch.full_like(self.y, -1))

    @property
    def n_labelled(self) -> int:
        return int(self.labelled.sum())

    def _batch(self, indices: torch.Tensor,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y_seen)`` of the examples at ``indices`` plus ``labelled_per_batch`` labelled
        extras drawn from ``generator``, so that ``batches`` yields these tuples."""
        labelled_indices = self.labelled.nonzero().squeeze(-1)
        if self.labelled_per_batch and len(labelled_indices):
            picks = torch.randint(len(labelled_indices), (self.labelled_per_batch,),
                                  generator=generator)
            indices = torch.cat([indices, labelled_indices[picks.to(indices.device)]])
        return super()._batch(indices, generator), self.y_seen.index_select(0, indices)


def balanced_labelled_mask(y: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """A mask keeping ``round(fraction * N / C)`` labels (at least one) of each of the C classes."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise PyroDGMError(f"labelled_fraction must be a number in (0, 1], got {fraction!r}")
    classes = torch.unique(y)
    per_class = max(1, round(fraction * y.shape[0] / len(classes)))
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros_like(y, dtype=torch.bool)
    for label in classes:
        members = (y == label).nonzero().squeeze(-1)
        chosen = members[torch.randperm(len(members), generator=generator)[:per_class]]
        mask[chosen] = True
    return mask


def partly_labelled(data: Dataset, labelled_fraction: float = 0.1, labelled_per_batch: int = 10,
                    seed: int = 0) -> PartlyLabelledDataset:
    """``data`` with only a class-balanced ``labelled_fraction`` of its labels kept (fixed by ``seed``)."""
    if data.y is None:
        raise PyroDGMError(f"data set {data.name!r} has no labels to keep a fraction of")
    if isinstance(labelled_per_batch, bool) or not isinstance(labelled_per_batch, int) \
            or labelled_per_batch < 0:
        raise PyroDGMError(f"labelled_per_batch must be a whole number >= 0, got "
                           f"{labelled_per_batch!r}")
    mask = balanced_labelled_mask(data.y, labelled_fraction, seed)
    info = {**data.info, "labelled_fraction": float(labelled_fraction),
            "n_labelled": int(mask.sum())}
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(Dataset)}
    return PartlyLabelledDataset(**{**fields, "info": info}, labelled=mask,
                                 labelled_per_batch=labelled_per_batch)


def load_mnist_ssl(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
                   protocol: str = "auto", labelled_fraction: float = 0.1,
                   labelled_per_batch: int = 10) -> Dataset:
    """MNIST with a partly labelled training split (test split: all labels)."""
    data = load_mnist(split, data_dir, binarize, seed, protocol=protocol)
    if data.y is None:
        raise PyroDGMError(f"MNIST under protocol {data.info['protocol']!r} has no labels, which "
                           f"a semi-supervised model needs; use protocol 'full' or 'offline'.")
    if split != "train":
        return data
    return partly_labelled(data, labelled_fraction, labelled_per_batch, seed)


def load_bars_ssl(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
                  n_train: int = 5000, n_test: int = 1000, labelled_fraction: float = 0.1,
                  labelled_per_batch: int = 10) -> Dataset:
    """Sliding bars (label = column) with a partly labelled training split."""
    data = load_bars(split, data_dir, binarize, seed, n_train=n_train, n_test=n_test)
    if split != "train":
        return data
    return partly_labelled(data, labelled_fraction, labelled_per_batch, seed)
