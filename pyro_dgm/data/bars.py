"""Sliding bars: the 4x4 toy data set of the lecture "Deep generative models" (Paquet, 2017).

Each 16-pixel image shows one vertical bar, so the data lie on a one-dimensional manifold
(the bar's position) plus pixel noise, and a model with a single latent variable can in
principle explain them. Nothing is downloaded; the images are drawn from this story:

1. a position ``t ~ Uniform(0, 4)``, the latent coordinate along the manifold;
2. column intensities that form a smooth bump centred at ``t``:
   ``intensity_c = exp(-(c + 0.5 - t)^2 / (2 * 0.35^2))`` for columns ``c = 0..3``, so that
   increasing ``t`` slides the bar smoothly from one column to the next; every one of the 4
   rows has the same intensities;
3. pixel probabilities with a noise floor, ``p = 0.05 + 0.9 * intensity``;
4. binary pixels ``x ~ Bernoulli(p)``.

The label is ``y = floor(t)``, the column (0..3) that the bar mostly covers, so that a
nearest-neighbour classifier on latent codes has something to find; the position ``t``
itself is kept in ``info["position"]``. The draws are fixed by the seed: the training split
uses ``seed`` and the test split ``seed + 1``.
"""

from __future__ import annotations

import torch

from pyro_dgm.data.core import Dataset, binarize_once, check_binarize, check_choice, SPLITS
from pyro_dgm.errors import PyroDGMError

N_ROWS = 4
N_COLUMNS = 4
BAR_WIDTH = 0.35  # standard deviation of the bump, in columns
NOISE_FLOOR = 0.05  # probability of a pixel being on far from the bar
BAR_CONTRAST = 0.9  # added probability at the bar's centre


def bar_probabilities(position: torch.Tensor) -> torch.Tensor:
    """Return pixel probabilities of shape (N, 16) for bar positions of shape (N,)."""
    column_centres = torch.arange(N_COLUMNS, dtype=position.dtype) + 0.5
    squared_distance = (column_centres - position.unsqueeze(-1)) ** 2
    intensity = torch.exp(-squared_distance / (2 * BAR_WIDTH**2))
    column_probabilities = NOISE_FLOOR + BAR_CONTRAST * intensity  # (N, columns)
    image = column_probabilities.unsqueeze(-2).expand(-1, N_ROWS, N_COLUMNS)
    return image.reshape(-1, N_ROWS * N_COLUMNS)


def sample_bars(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw ``n`` images; return (binary images (n, 16), labels (n,), positions (n,))."""
    position = torch.rand(n, generator=generator) * N_COLUMNS
    images = torch.bernoulli(bar_probabilities(position), generator=generator)
    labels = position.floor().long().clamp(max=N_COLUMNS - 1)
    return images, labels, position


def load_bars(
    split: str,
    data_dir=None,
    binarize: str | None = None,
    seed: int = 0,
    *,
    n_train: int = 5000,
    n_test: int = 1000,
) -> Dataset:
    """Return the training or test split of the sliding-bars data (``data_dir`` is unused).

    The images are binary already, so every binarization leaves them as they are.
    """
    check_choice(split, SPLITS, "split")
    binarize = check_binarize(binarize, default="none")
    n = _positive_count(n_train if split == "train" else n_test, f"n_{split}")
    split_seed = int(seed) if split == "train" else int(seed) + 1
    images, labels, position = sample_bars(n, torch.Generator().manual_seed(split_seed))
    return Dataset(
        name="bars",
        x=binarize_once(images, binarize, split_seed),
        y=labels,
        image_shape=(N_ROWS, N_COLUMNS),
        likelihood="bernoulli",
        binarize=binarize,
        info={"split": split, "seed": split_seed, "n_total": n, "position": position},
    )


def _positive_count(value, option: str) -> int:
    """Return ``value`` as a positive int (it may come from the command line as text)."""
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise PyroDGMError(f"option {option} must be a positive whole number, got {value!r}.")
    return count
