"""The registry of data sets: name -> loader, and loading by name.

Every loader has the signature ``loader(split, data_dir=None, binarize=None, seed=0, *,
options...)`` and returns a :class:`~pyro_dgm.data.core.Dataset`. This module imports the
loaders, which import only :mod:`pyro_dgm.data.core`, so no module imports one that imports it
back.
"""

from __future__ import annotations

import inspect

from pyro_dgm.data import bars, freyfaces, mnist, multi_mnist, polyreg, semi_supervised, synthetic
from pyro_dgm.data import caltech_silhouettes, fashion_mnist, omniglot, svhn, user
from pyro_dgm.data import toy2d
from pyro_dgm.data.core import SPLITS, Dataset, check_choice
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.registry import Registry

DATASETS: Registry = Registry("data set")
for _name, _loader in (
        ("bars", bars.load_bars), ("mnist", mnist.load_mnist),
        ("freyfaces", freyfaces.load_freyfaces),
        ("gaussian-clusters", synthetic.load_gaussian_clusters), ("polyreg", polyreg.load_polyreg),
        ("mnist-ssl", semi_supervised.load_mnist_ssl), ("bars-ssl", semi_supervised.load_bars_ssl),
        ("multi-mnist", multi_mnist.load_multi_mnist)):
    DATASETS.register(_name, _loader)

# -- the papers' image sets and the user's own (issue 19) -----------------------------------
for _name, _loader in (
        ("fashion-mnist", fashion_mnist.load_fashion_mnist), ("omniglot", omniglot.load_omniglot),
        ("caltech101-silhouettes", caltech_silhouettes.load_caltech_silhouettes),
        ("svhn", svhn.load_svhn), ("tensors", user.load_tensors), ("folder", user.load_folder)):
    DATASETS.register(_name, _loader)

# -- 2-D toy densities for the exact-likelihood models (issue 15) ----------------------------
DATASETS.register("toy2d", toy2d.load_toy2d)

# Data sets given with a path, as "tensors:FILE" or "folder:PATH".
PATH_DATASETS = ("tensors", "folder")
# Flat-image data sets: one float tensor (N, D) of pixels (or any vectors), batches of rows.
# They differ only in their values, image shape and likelihood, which the models read from the
# Dataset, so a model that takes one of them takes them all (see ``model_takes``).
FLAT_IMAGE_DATASETS = ("bars", "mnist", "freyfaces", "fashion-mnist", "omniglot",
                       "caltech101-silhouettes", "svhn", *PATH_DATASETS)


def parse_dataset_name(name: str) -> tuple[str, str | None]:
    """``"tensors:x.npy"`` -> ``("tensors", "x.npy")``; a registered name -> ``(name, None)``.

    An unknown name (or a path given to a data set that takes none) is one sentence.
    """
    registered, separator, path = str(name).partition(":")
    if separator and registered not in PATH_DATASETS:
        raise PyroDGMError(f"unknown data set {name!r}; only {' and '.join(PATH_DATASETS)} take "
                           f"a path, as tensors:FILE.npy or folder:PATH.")
    DATASETS[registered]  # an unknown name lists the valid ones
    if separator and not path:
        raise PyroDGMError(f"data set {name!r} names no path; write {registered}:PATH.")
    return registered, (path if separator else None)


def model_takes(listed, name: str) -> bool:
    """Whether a model whose zoo entry lists the data sets ``listed`` takes data set ``name``.

    It does when it lists ``name`` (without its path), and, for a flat-image data set, when it
    lists any flat-image data set: your own arrays and image folders, and every built-in image
    set, go to every image model without being listed ten times.
    """
    registered, _ = parse_dataset_name(name)
    if registered in listed:
        return True
    return registered in FLAT_IMAGE_DATASETS and any(n in FLAT_IMAGE_DATASETS for n in listed)


def dataset_description(name: str) -> str:
    """The first line of the loader's docstring: what the data set is and how it is scored."""
    loader = DATASETS[parse_dataset_name(name)[0]]
    return (inspect.getdoc(inspect.getmodule(loader)) or "").splitlines()[0]


def load_dataset(
    name: str,
    split: str,
    data_dir=None,
    binarize: str | None = None,
    seed: int = 0,
    **options,
) -> Dataset:
    """Load one split (``"train"`` or ``"test"``) of the data set registered as ``name``.

    ``name`` is a registered name, or ``"tensors:FILE"`` / ``"folder:PATH"`` for your own
    data (the path becomes the ``path`` option). ``binarize=None`` keeps the data set's
    default; ``seed`` fixes anything random in the loading (a static binarization, the draws of a synthetic data set). ``options`` are the
    data set's own settings, e.g. ``protocol="offline"`` for MNIST or ``n_train=1000`` for bars.
    """
    registered, path = parse_dataset_name(name)
    if path is not None:
        options = {**options, "path": path}
    loader = DATASETS[registered]
    check_choice(split, SPLITS, "split")
    _check_options(registered, options)
    return loader(split, data_dir=data_dir, binarize=binarize, seed=seed, **options)


def available_datasets() -> list[str]:
    """Return the registered data set names, sorted."""
    return DATASETS.names()


def dataset_options(name: str) -> list[str]:
    """The settings a data set takes besides ``binarize`` and ``seed``: its loader's keyword-only
    parameters (e.g. ``protocol`` for MNIST, ``n_train`` for bars)."""
    return sorted(
        parameter.name
        for parameter in inspect.signature(DATASETS[parse_dataset_name(name)[0]]).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


def _check_options(name: str, options: dict) -> None:
    """Raise ``PyroDGMError`` if ``options`` holds a setting that the loader does not take."""
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        expected = ", ".join(accepted) if accepted else "none"
        raise PyroDGMError(
            f"data set {name!r} has no option {', '.join(unknown)}; its options are: {expected}."
        )
