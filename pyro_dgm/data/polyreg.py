"""Simulated polynomial-regression data sets: one example = one whole data set of (t, y) points.

Each example is drawn from :class:`pyro_dgm.models.polyreg.PolyRegression` with its default
hyper-parameters (seed ``004``'s non-conjugate polynomial regression): a number of points
``N ~ Uniform{min_points..max_points}``, inputs ``t ~ Uniform(-1, 1)``, latents ``w, sigma``
from the prior and ``y`` from the Student-t likelihood. Data sets are padded to ``max_points``
and stored as three rows ``t``, ``y``, ``mask`` of a ``(3, max_points)`` "image", so that
:class:`Dataset`'s contract holds; :meth:`PolyRegData.batches` yields the program arguments
``(t, y, mask)``. The true latents are in ``info["w"]`` and ``info["sigma"]``. The training
split uses ``seed``, the test split ``seed + 1``. Sleep training reads only the inputs ``t`` and
``mask`` of the training split (it simulates its own ``y``); the test split's ``y`` are the
held-out data sets on which importance sampling is evaluated.
"""

from __future__ import annotations

from typing import Iterator

import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize, check_choice
from pyro_dgm.errors import PyroDGMError


class PolyRegData(Dataset):
    """A :class:`Dataset` whose batches are ``(t, y, mask)`` tuples of shape ``(B, max_points)``."""

    @property
    def max_points(self) -> int:
        return self.image_shape[1]

    def arrays(self, index=slice(None)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(t, y, mask)`` of the data sets at ``index``."""
        packed = self.x[index].reshape(-1, 3, self.max_points)
        return packed[:, 0], packed[:, 1], packed[:, 2]

    def batches(self, batch_size: int, shuffle: bool = True,
                generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
        for packed in super().batches(batch_size, shuffle, generator, drop_last):
            rows = packed.reshape(-1, 3, self.max_points)
            yield rows[:, 0], rows[:, 1], rows[:, 2]


def load_polyreg(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
                 n_train: int = 10000, n_test: int = 100, min_points: int = 3,
                 max_points: int = 20) -> PolyRegData:
    """The training or test split of simulated data sets (``data_dir`` is unused)."""
    from pyro_dgm.models.polyreg import PolyRegression

    check_choice(split, SPLITS, "split")
    if check_binarize(binarize, default="none") != "none":
        raise PyroDGMError("polyreg data are continuous; binarize must be 'none'")
    n = int(n_train if split == "train" else n_test)
    if n < 1:
        raise PyroDGMError(f"option n_{split} must be a positive whole number, got {n}")
    model = PolyRegression(min_points=int(min_points), max_points=int(max_points))
    split_seed = int(seed) if split == "train" else int(seed) + 1
    sim = model.simulate(n, seed=split_seed)
    packed = torch.stack([sim["t"], sim["y"], sim["mask"]], dim=1).reshape(n, -1)
    return PolyRegData(
        name="polyreg", x=packed.float(), y=None, image_shape=(3, int(max_points)),
        likelihood="gaussian",
        info={"split": split, "seed": split_seed, "n_total": n, "min_points": int(min_points),
              "max_points": int(max_points), "w": sim["w"], "sigma": sim["sigma"]},
    )
