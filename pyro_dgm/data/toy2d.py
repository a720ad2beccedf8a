r"""Two-dimensional toy densities, to see what a density model (a normalizing flow) learns.

Three shapes, chosen by the ``shape`` option, each scaled to lie within about [-3, 3]^2:

- ``"moons"``: two interleaved half circles (angle :math:`t \sim U(0, \pi)`, the upper one
  :math:`(\cos t, \sin t)`, the lower one :math:`(1 - \cos t, \tfrac12 - \sin t)`), centred and
  scaled by 1.5, plus Gaussian noise of scale ``noise`` (default 0.1); ``y`` is the moon;
- ``"rings"``: two concentric circles of radii 1 and 2.5, uniform in angle, radial noise of
  scale ``noise``; ``y`` is the ring;
- ``"mixture"``: eight Gaussians of scale ``2 * noise`` with means
  evenly spaced on the circle of radius 2; ``y`` is the component.

Every class is equally frequent. The points of each split come from their own stream, fixed
by ``seed`` and the split. Each example is a 2-vector (``image_shape`` None), the likelihood
is ``"gaussian"`` (continuous data, no dequantization).
"""

from __future__ import annotations

import math

import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_choice
from pyro_dgm.errors import PyroDGMError

SHAPES = ("moons", "rings", "mixture")


def _moons(n: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 2
    t = math.pi * torch.rand(n, generator=generator)
    upper = torch.stack([t.cos(), t.sin()], -1)
    lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], -1)
    points = torch.where(labels[:, None] == 0, upper, lower) - torch.tensor([0.5, 0.25])
    return 1.5 * points + noise * torch.randn(n, 2, generator=generator), labels


def _rings(n: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 2
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    radius = torch.where(labels == 0, 1.0, 2.5) + noise * torch.randn(n, generator=generator)
    return radius[:, None] * torch.stack([angle.cos(), angle.sin()], -1), labels


def _mixture(n: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 8
    angle = 2 * math.pi * labels / 8
    means = 2.0 * torch.stack([angle.cos(), angle.sin()], -1)
    return means + 2 * noise * torch.randn(n, 2, generator=generator), labels


DRAW = {"moons": _moons, "rings": _rings, "mixture": _mixture}


def load_toy2d(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
               shape: str = "moons", n_train: int = 2000, n_test: int = 1000,
               noise: float = 0.1) -> Dataset:
    """One split of a 2-D toy density (see the module docstring); nothing is read from
    ``data_dir``, and the points cannot be binarized."""
    check_choice(split, SPLITS, "split")
    check_choice(shape, SHAPES, "toy2d shape")
    if binarize not in (None, "none"):
        raise PyroDGMError(f"toy2d points are continuous and cannot be binarized; got "
                           f"binarize={binarize!r}.")
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PyroDGMError(f"toy2d option {name} must be a whole number >= 1, got {value!r}.")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise > 0:
        raise PyroDGMError(f"toy2d option noise must be a positive number, got {noise!r}.")
    stream = torch.Generator().manual_seed(seed * 2 + SPLITS.index(split) + 1)
    n = n_train if split == "train" else n_test
    x, labels = DRAW[shape](n, float(noise), stream)
    return Dataset("toy2d", x.float(), labels, None, "gaussian", "none",
                   {"split": split, "shape": shape, "noise": float(noise)})
