"""The registry of data sets: name -> loader, and loading by name.

Every loader has the signature ``loader(split, data_dir=None, binarize=None, seed=0, *,
options...)`` and returns a :class:`~pyro_dgm.data.core.Dataset`. This module imports the
loaders, which import only :mod:`pyro_dgm.data.core`, so no module imports one that imports it
back.
"""

from __future__ import annotations

import inspect

from pyro_dgm.data import bars, freyfaces, mnist, multi_mnist, polyreg, semi_supervised, synthetic
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
# exact-likelihood models (issue 15): 2-D toy densities for flows
DATASETS.register("toy2d", toy2d.load_toy2d)


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
    _check_options(name, options)
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


def _check_options(name: str, options: dict) -> None:
    """Raise ``PyroDGMError`` if ``options`` holds a setting that the loader does not take."""
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        expected = ", ".join(accepted) if accepted else "none"
        raise PyroDGMError(
            f"data set {name!r} has no option {', '.join(unknown)}; its options are: {expected}."
        )
