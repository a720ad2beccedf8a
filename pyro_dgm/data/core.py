"""What every data set shares: where files are looked for, the ``Dataset`` container, and the registry.

Data sets live in one folder, chosen in this order:

1. the ``data_dir`` argument, when a caller gives one;
2. else the ``PYRO_DGM_DATA`` environment variable, when it is set;
3. else the cache folder ``$XDG_CACHE_HOME/pyro_dgm`` (``~/.cache/pyro_dgm`` when
   ``XDG_CACHE_HOME`` is not set).

Every data set is held in memory as one float32 tensor of flattened images, and
``Dataset.batches`` cuts it into mini-batches by indexing, which is much faster for these
small images than a ``torch.utils.data.DataLoader`` that collates one example at a time.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.registry import Registry

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
        name: the registry name, e.g. ``"mnist"``.
        x: float32 tensor of shape (N, D), each image flattened row by row.
        y: int64 labels of shape (N,), or None for unlabelled data.
        image_shape: (rows, columns) of one image, for plotting; rows * columns == D.
        likelihood: ``"bernoulli"`` for data in [0, 1] scored by a Bernoulli cross-entropy,
            ``"gaussian"`` for continuous data.
        binarize: ``"none"`` (use ``x`` as it is), ``"dynamic"`` (``batches`` yields a fresh
            Bernoulli draw with probabilities ``x``) or ``"static"`` (``x`` already holds one
            fixed draw).
        info: free-form provenance, e.g. ``{"split": "train", "protocol": "offline"}``.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor | None
    image_shape: tuple[int, int]
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
        rows, columns = self.image_shape
        if rows * columns != self.x.shape[1]:
            raise PyroDGMError(
                f"data set {self.name!r} has image_shape {self.image_shape}, which does not "
                f"hold its {self.x.shape[1]} values per example."
            )
        check_choice(self.likelihood, LIKELIHOODS, "likelihood")
        check_choice(self.binarize, BINARIZATIONS, "binarization")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        """Number of values per example (pixels of the flattened image)."""
        return self.x.shape[1]

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.info.get('split')!r}, n={self.n}, "
            f"dim={self.dim}, labelled={self.y is not None}, likelihood={self.likelihood!r}, "
            f"binarize={self.binarize!r})"
        )

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
        binarization each batch is a new Bernoulli draw, also from ``generator``.
        """
        if int(batch_size) < 1:
            raise PyroDGMError(f"batch_size must be a positive integer, got {batch_size!r}.")
        batch_size = int(batch_size)
        order = self._epoch_order(shuffle, generator)
        stop = self.n - self.n % batch_size if drop_last else self.n
        for start in range(0, stop, batch_size):
            x_batch = self.x.index_select(0, order[start : start + batch_size])
            if self.binarize == "dynamic":
                x_batch = _bernoulli_draw(x_batch, generator)
            yield x_batch

    def _epoch_order(self, shuffle: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Return the indices of one epoch, on the device of ``x``."""
        if not shuffle:
            return torch.arange(self.n, device=self.x.device)
        device = generator.device if generator is not None else "cpu"
        return torch.randperm(self.n, generator=generator, device=device).to(self.x.device)

    def to(self, device) -> "Dataset":
        """Return a copy whose tensors (``x``, ``y`` and any tensors in ``info``) are on ``device``."""
        moved_info = {
            key: value.to(device) if isinstance(value, torch.Tensor) else value
            for key, value in self.info.items()
        }
        return dataclasses.replace(
            self,
            x=self.x.to(device),
            y=None if self.y is None else self.y.to(device),
            info=moved_info,
        )


def _bernoulli_draw(probabilities: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draw binary values with the given probabilities, on the generator's device if it has one."""
    if generator is None or generator.device == probabilities.device:
        return torch.bernoulli(probabilities, generator=generator)
    drawn = torch.bernoulli(probabilities.to(generator.device), generator=generator)
    return drawn.to(probabilities.device)


# --------------------------------------------------------------------------- the registry


def load_dataset(
    name: str,
    split: str,
    data_dir=None,
    binarize: str | None = None,
    seed: int = 0,
    **options,
) -> Dataset:
    """Load one split (``"train"`` or ``"test"``) of the data set registered as ``name``.

    ``binarize=None`` keeps the data set's default; ``seed`` fixes anything random in the
    loading (a static binarization, the draws of a synthetic data set). ``options`` are the
    data set's own settings, e.g. ``protocol="offline"`` for MNIST or ``n_train=1000`` for bars.
    """
    loader = DATASETS[name]
    check_choice(split, SPLITS, "split")
    _check_options(name, loader, options)
    return loader(split, data_dir=data_dir, binarize=binarize, seed=seed, **options)


def available_datasets() -> list[str]:
    """Return the registered data set names, sorted."""
    return DATASETS.names()


def dataset_options(name: str) -> list[str]:
    """The settings a data set takes besides ``binarize`` and ``seed``: its loader's keyword-only
    parameters (e.g. ``protocol`` for MNIST, ``n_train`` for bars)."""
    return sorted(
        parameter.name
        for parameter in inspect.signature(DATASETS[name]).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


def _check_options(name: str, loader: Callable, options: dict) -> None:
    """Raise ``PyroDGMError`` if ``options`` holds a setting that the loader does not take."""
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        expected = ", ".join(accepted) if accepted else "none"
        raise PyroDGMError(
            f"data set {name!r} has no option {', '.join(unknown)}; its options are: {expected}."
        )


# The loaders import Dataset and find_file from this module, so they are imported after them.
from pyro_dgm.data import bars, freyfaces, mnist, multi_mnist, polyreg, semi_supervised, synthetic  # noqa: E402,E501

DATASETS: Registry = Registry("data set")
for _name, _loader in (
        ("bars", bars.load_bars), ("mnist", mnist.load_mnist),
        ("freyfaces", freyfaces.load_freyfaces),
        ("gaussian-clusters", synthetic.load_gaussian_clusters), ("polyreg", polyreg.load_polyreg),
        ("mnist-ssl", semi_supervised.load_mnist_ssl), ("bars-ssl", semi_supervised.load_bars_ssl),
        ("multi-mnist", multi_mnist.load_multi_mnist)):
    DATASETS.register(_name, _loader)
