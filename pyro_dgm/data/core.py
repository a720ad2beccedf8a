"""What every data set shares: where files are looked for, checks, and the ``Dataset`` container.

Data sets live in one folder, chosen in this order:

1. the ``data_dir`` argument, when a caller gives one;
2. else the ``PYRO_DGM_DATA`` environment variable, when it is set;
3. else the cache folder ``$XDG_CACHE_HOME/pyro_dgm`` (``~/.cache/pyro_dgm`` when
   ``XDG_CACHE_HOME`` is not set).

Every data set is held in memory as one float32 tensor of shape (N, D): flattened images
(with their ``image_shape`` for plotting) or plain vectors (``image_shape=None``).
``Dataset.batches`` cuts it into mini-batches by indexing, which is much faster for these
small examples than a ``torch.utils.data.DataLoader`` that collates one example at a time.
A user's own tensor becomes a data set with ``Dataset.from_tensors``; ``Dataset.split`` cuts
one into training and test sets. The loaders import this module; the registry of loaders is
``pyro_dgm.data.registry``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

import torch

from pyro_dgm.errors import PyroDGMError

DATA_DIR_ENV_VAR = "PYRO_DGM_DATA"
SPLITS = ("train", "test")
BINARIZATIONS = ("none", "dynamic", "static")
LIKELIHOODS = ("bernoulli", "gaussian")


# --------------------------------------------------------------------------- where files are


def resolve_data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Return the folders to search for data files, in the order they are searched.

    The list has one element: the explicit ``data_dir`` if given, else the folder named by
    ``PYRO_DGM_DATA`` if that variable is set and not empty, else the default cache folder.
    It is a list so that error messages can name everything that was searched.
    """
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    from_environment = os.environ.get(DATA_DIR_ENV_VAR, "")
    if from_environment:
        return [Path(from_environment).expanduser()]
    return [default_cache_dir()]


def default_cache_dir() -> Path:
    """Return ``$XDG_CACHE_HOME/pyro_dgm``, or ``~/.cache/pyro_dgm`` when the variable is unset."""
    cache_root = os.environ.get("XDG_CACHE_HOME", "")
    if cache_root:
        return Path(cache_root).expanduser() / "pyro_dgm"
    return Path.home() / ".cache" / "pyro_dgm"


def locate_file(relative_candidates: list[str], data_dir=None) -> Path | None:
    """Return the first candidate path that exists in the data folders, or None."""
    for folder in resolve_data_dirs(data_dir):
        for relative_path in relative_candidates:
            path = folder / relative_path
            if path.is_file():
                return path
    return None


def find_file(relative_candidates: list[str], data_dir, how_to_get: str) -> Path:
    """Return the first candidate path that exists in the data folders.

    ``relative_candidates`` are paths relative to a data folder, most preferred first (for
    example the gzip-compressed file in its torchvision folder, then the uncompressed one).
    When none exists, raise ``PyroDGMError`` naming the file, the folders searched and
    ``how_to_get`` (a clause saying how to obtain the file).
    """
    path = locate_file(relative_candidates, data_dir)
    if path is not None:
        return path
    file_name = Path(relative_candidates[0]).name
    searched = ", ".join(str(folder) for folder in resolve_data_dirs(data_dir))
    tried = ", ".join(relative_candidates)
    raise PyroDGMError(
        f"the data file {file_name} was not found in {searched} (looked for {tried}); "
        f"{how_to_get.rstrip('.')}."
    )


# --------------------------------------------------------------------------- checks


def check_choice(value, allowed, what: str):
    """Return ``value`` if it is one of ``allowed``; else raise ``PyroDGMError`` listing them."""
    if value not in allowed:
        choices = ", ".join(repr(choice) for choice in allowed)
        raise PyroDGMError(f"unknown {what} {value!r}; expected one of {choices}.")
    return value


def check_binarize(binarize: str | None, default: str) -> str:
    """Return the binarization to use: ``default`` when ``binarize`` is None, else a checked choice."""
    if binarize is None:
        return default
    return check_choice(binarize, BINARIZATIONS, "binarization")


def binarize_once(x: torch.Tensor, binarize: str, seed: int) -> torch.Tensor:
    """Apply a static binarization (one Bernoulli draw, fixed by ``seed``); return other data unchanged.

    Dynamic binarization is not done here: ``Dataset.batches`` draws afresh for every batch.
    """
    if binarize != "static":
        return x
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


# --------------------------------------------------------------------------- the container


@dataclass
class Dataset:
    """One split of a data set, held in memory.

    Attributes:
        name: the registry name, e.g. ``"mnist"``, or the name given to ``from_tensors``.
        x: float32 tensor of shape (N, D): one example per row (an image flattened row by row,
            or any vector).
        y: int64 labels of shape (N,), or None for unlabelled data.
        image_shape: (rows, columns) of one image, with rows * columns == D, for plotting;
            None for data that are not images (the plots then draw vectors).
        likelihood: ``"bernoulli"`` for data in [0, 1] scored by a Bernoulli cross-entropy,
            ``"gaussian"`` for continuous data.
        binarize: ``"none"`` (use ``x`` as it is), ``"dynamic"`` (``batches`` yields a fresh
            Bernoulli draw with probabilities ``x``) or ``"static"`` (``x`` already holds one
            fixed draw).
        info: free-form provenance, e.g. ``{"split": "train", "protocol": "offline"}``.

    Every tensor field holds one row per example (subclasses add fields such as a label mask),
    so ``to``, ``split`` and ``batches`` treat them all alike.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None
    image_shape: tuple[int, int] | None
    likelihood: str
    binarize: str = "none"
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.x.dim() != 2 or self.x.dtype != torch.float32:
            raise PyroDGMError(
                f"data set {self.name!r} needs x as a float32 tensor of shape (N, D), "
                f"got {self.x.dtype} of shape {tuple(self.x.shape)}."
            )
        if self.y is not None and tuple(self.y.shape) != (self.x.shape[0],):
            raise PyroDGMError(
                f"data set {self.name!r} has {self.x.shape[0]} examples but labels of shape "
                f"{tuple(self.y.shape)}; expected one label per example."
            )
        if self.image_shape is not None:
            self.image_shape = _checked_image_shape(self.image_shape, self.x.shape[1], self.name)
        check_choice(self.likelihood, LIKELIHOODS, "likelihood")
        check_choice(self.binarize, BINARIZATIONS, "binarization")

    @classmethod
    def from_tensors(cls, x, y=None, *, likelihood: str | None = None,
                     image_shape: tuple[int, int] | None = None, name: str = "tensors",
                     binarize: str = "none", info: dict | None = None) -> "Dataset":
        """Your own data as a data set: examples ``x`` of shape (N, D), optional labels ``y`` (N,).

        ``x`` and ``y`` are torch tensors or numpy arrays; ``x`` becomes float32 and ``y``
        (whole numbers) int64. ``likelihood`` defaults to ``"bernoulli"`` when every value of
        ``x`` lies in [0, 1] (binary data, grey levels) and to ``"gaussian"`` otherwise.
        ``image_shape=(rows, columns)`` makes the plots draw images; the default ``None`` draws
        each example as a vector. ``binarize`` is ``"none"``, ``"dynamic"`` (every mini-batch a
        fresh Bernoulli draw with probabilities ``x``) or ``"static"`` (one draw made here,
        fixed by seed 0); both need values in [0, 1]. Bad input (not two dimensions, NaN or
        infinite values, labels that are not one whole number per example, values outside
        [0, 1] under a Bernoulli likelihood) raises ``PyroDGMError``. To hold out a test set,
        cut the result with :meth:`split`.
        """
        x = _as_tensor(x, "x").to(torch.float32)
        if x.dim() != 2 or x.numel() == 0:
            raise PyroDGMError(
                f"x must have shape (examples, values per example) with at least one of each, "
                f"got shape {tuple(x.shape)}; flatten images with x.reshape(len(x), -1).")
        if not bool(torch.isfinite(x).all()):
            raise PyroDGMError("x holds NaN or infinite values; remove or replace them first.")
        in_unit_interval = bool(((x >= 0) & (x <= 1)).all())
        if likelihood is None:
            likelihood = "bernoulli" if in_unit_interval else "gaussian"
        check_choice(likelihood, LIKELIHOODS, "likelihood")
        check_choice(binarize, BINARIZATIONS, "binarization")
        if (likelihood == "bernoulli" or binarize != "none") and not in_unit_interval:
            raise PyroDGMError(
                f"a Bernoulli likelihood and binarization need values in [0, 1], but x holds "
                f"values from {x.min().item():g} to {x.max().item():g}; use "
                f"likelihood='gaussian' or rescale x.")
        if binarize != "none" and likelihood != "bernoulli":
            raise PyroDGMError(f"binarize={binarize!r} makes binary data, which need "
                               f"likelihood='bernoulli', not {likelihood!r}.")
        labels = None if y is None else _as_labels(y, x.shape[0])
        return cls(name, binarize_once(x, binarize, seed=0), labels, image_shape, likelihood,
                   binarize, dict(info or {}))

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        """Number of values per example (pixels of a flattened image)."""
        return self.x.shape[1]

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.info.get('split')!r}, n={self.n}, "
            f"dim={self.dim}, labelled={self.y is not None}, likelihood={self.likelihood!r}, "
            f"binarize={self.binarize!r})"
        )

    def observed(self, n: int | None = None, *, seed: int = 0,
                 device: torch.device | str = "cpu") -> torch.Tensor:
        """The first ``n`` examples (all when None) as the model sees them, on ``device``.

        Under dynamic binarization that is one Bernoulli draw with probabilities ``x``, fixed
        by ``seed`` (drawn on the CPU, so the same on every device); otherwise it is ``x``.
        """
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise PyroDGMError(f"observed(n) needs a positive whole number or None, got {n!r}.")
        x = self.x[:n]
        if self.binarize == "dynamic":
            x = torch.bernoulli(x.cpu(), generator=torch.Generator().manual_seed(seed))
        return x.to(device)

    def split(self, test_fraction: float, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """``(train, test)``: a random ``test_fraction`` of the examples, chosen by ``seed``, held
        out for testing and the rest for training, each part in the original order.

        Both parts keep every setting of this data set; ``info["split"]`` says which is which
        (tensors in ``info`` are copied as they are, not cut).
        """
        n_test = round(test_fraction * self.n) if isinstance(test_fraction, (int, float)) else 0
        if isinstance(test_fraction, bool) or not 0 < n_test < self.n:
            raise PyroDGMError(
                f"test_fraction must be a number in (0, 1) that leaves at least one example in "
                f"each part of {self.n}, got {test_fraction!r}.")
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))
        test_indices, train_indices = order[:n_test].sort().values, order[n_test:].sort().values
        return self._subset(train_indices, "train"), self._subset(test_indices, "test")

    def head(self, n: int | None) -> "Dataset":
        """The first ``n`` examples (all of them when ``n`` is None or at least ``len``)."""
        if n is None or n >= self.n:
            return self
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PyroDGMError(f"head(n) needs a positive whole number or None, got {n!r}.")
        return self._subset(torch.arange(n), self.info.get("split", "test"))

    def _subset(self, indices: torch.Tensor, split: str) -> "Dataset":
        """The examples at ``indices`` (every tensor field cut alike), with ``info["split"]``."""
        cut = {name: value.index_select(0, indices.to(value.device))
               for name, value in self._tensor_fields().items()}
        return dataclasses.replace(self, **cut, info={**self.info, "split": split})

    def _tensor_fields(self) -> dict[str, torch.Tensor]:
        """The fields that are tensors (``x``, and ``y`` and subclass fields when present)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {name: value for name, value in fields.items() if isinstance(value, torch.Tensor)}

    def batches(
        self,
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[torch.Tensor]:
        """Yield one epoch of mini-batches of ``x`` (tensors of shape (B, D)).

        With ``shuffle`` the order is a fresh random permutation (drawn from ``generator``);
        every example appears exactly once per epoch, the last batch being smaller unless
        ``drop_last``. Labels are not yielded: read them from ``y``. With dynamic
        binarization each batch is a new Bernoulli draw, also from ``generator``. Subclasses
        whose batches are tuples of program arguments override ``_batch``.
        """
        if int(batch_size) < 1:
            raise PyroDGMError(f"batch_size must be a positive integer, got {batch_size!r}.")
        batch_size = int(batch_size)
        order = self._epoch_order(shuffle, generator)
        stop = self.n - self.n % batch_size if drop_last else self.n
        for start in range(0, stop, batch_size):
            yield self._batch(order[start : start + batch_size], generator)

    def _batch(self, indices: torch.Tensor, generator: torch.Generator | None):
        """The mini-batch of the examples at ``indices`` (a fresh draw under dynamic binarization)."""
        x_batch = self.x.index_select(0, indices)
        if self.binarize == "dynamic":
            x_batch = _bernoulli_draw(x_batch, generator)
        return x_batch

    def _epoch_order(self, shuffle: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Return the indices of one epoch, on the device of ``x``."""
        if not shuffle:
            return torch.arange(self.n, device=self.x.device)
        device = generator.device if generator is not None else "cpu"
        return torch.randperm(self.n, generator=generator, device=device).to(self.x.device)

    def to(self, device) -> "Dataset":
        """Return a copy whose tensors (every tensor field and any tensors in ``info``) are on ``device``."""
        moved = {name: value.to(device) for name, value in self._tensor_fields().items()}
        moved_info = {
            key: value.to(device) if isinstance(value, torch.Tensor) else value
            for key, value in self.info.items()
        }
        return dataclasses.replace(self, **moved, info=moved_info)


def _bernoulli_draw(probabilities: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draw binary values with the given probabilities, on the generator's device if it has one."""
    if generator is None or generator.device == probabilities.device:
        return torch.bernoulli(probabilities, generator=generator)
    drawn = torch.bernoulli(probabilities.to(generator.device), generator=generator)
    return drawn.to(probabilities.device)


def _checked_image_shape(image_shape, dim: int, name: str) -> tuple[int, int]:
    """``image_shape`` as a pair of ints whose product is ``dim``; else one PyroDGMError sentence."""
    is_pair = isinstance(image_shape, (tuple, list)) and len(image_shape) == 2
    if not is_pair or not all(isinstance(side, int) and side > 0 for side in image_shape):
        raise PyroDGMError(f"image_shape must be None or (rows, columns), got {image_shape!r}.")
    rows, columns = image_shape
    if rows * columns != dim:
        raise PyroDGMError(
            f"data set {name!r} has image_shape {tuple(image_shape)}, which does not hold its "
            f"{dim} values per example.")
    return rows, columns


def _as_tensor(values, what: str) -> torch.Tensor:
    """``values`` (a torch tensor or numpy array of numbers) as a tensor, detached."""
    if not isinstance(values, (torch.Tensor, np.ndarray)):
        raise PyroDGMError(f"{what} must be a torch tensor or a numpy array, got "
                           f"{type(values).__name__}.")
    if isinstance(values, np.ndarray) and not (values.dtype.kind in "biuf"):
        raise PyroDGMError(f"{what} must hold numbers, got a numpy array of {values.dtype}.")
    return torch.as_tensor(values).detach()


def _as_labels(y, n: int) -> torch.Tensor:
    """``y`` as int64 labels, one per example; else one PyroDGMError sentence."""
    labels = _as_tensor(y, "y")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise PyroDGMError(f"labels y must be whole numbers (an integer tensor or array), got "
                           f"{labels.dtype}.")
    if tuple(labels.shape) != (n,):
        raise PyroDGMError(f"y has shape {tuple(labels.shape)} but x has {n} examples; give one "
                           f"label per example.")
    return labels.to(torch.int64)
