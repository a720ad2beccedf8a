r"""Simulated polynomial-regression data sets: one example = one whole data set of (t, y) points.

The generative story of seed ``004`` (*Non-conjugate polynomial regression*), kept here as
:class:`PolyRegPrior` so that the data need no model; :class:`pyro_dgm.models.polyreg.PolyRegression`
is the same story as a Pyro program and takes its defaults and simulator from here:

.. math::

    N &\sim \mathrm{Uniform}\{N_{\min}, \dots, N_{\max}\}, \qquad
    t_n \sim \mathrm{Uniform}(-1, 1), \\
    w_k &\sim \mathcal N(0, s_k^2),\ s_k = s\, d^k, \qquad
    \sigma \sim \mathrm{LogNormal}(\mu_\sigma, s_\sigma^2), \qquad
    y_n \mid w, \sigma \sim \mathrm{StudentT}\big(\nu,\ \textstyle\sum_k w_k t_n^k,\ \sigma\big).

Data sets are padded to ``max_points``: a :class:`PolyRegData` holds the responses ``y`` as its
``x`` (shape ``(N, max_points)``, 0 at padding), and the inputs ``t`` and the ``mask`` (1 for a
real point, 0 for padding) as fields of the same shape; :meth:`PolyRegData.batches` yields the
program arguments ``(t, y, mask)``. The true latents are in ``info["w"]`` and
``info["sigma"]``. The training split uses ``seed``, the test split ``seed + 1``. Sleep training
reads only the inputs ``t`` and ``mask`` of the training split (it simulates its own ``y``);
the test split's ``y`` are the held-out data sets on which importance sampling is evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_binarize, check_choice
from pyro_dgm.errors import PyroDGMError


def polynomial_features(t: torch.Tensor, degree: int) -> torch.Tensor:
    """``[1, t, t^2, ..., t^D]`` along a new last dimension."""
    return t.unsqueeze(-1) ** torch.arange(degree + 1, dtype=t.dtype, device=t.device)


def polynomial(w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``f_w(t) = sum_k w_k t^k``: ``w`` (..., D+1) and ``t`` (..., N) broadcast to (..., N)."""
    return (polynomial_features(t, w.shape[-1] - 1) * w.unsqueeze(-2)).sum(-1)


@dataclass(frozen=True)
class PolyRegPrior:
    """The settings of the generative story (module docstring): the polynomial's ``degree``,
    the Student-t degrees of freedom ``df`` (None: Gaussian noise), ``s = coef_scale``,
    ``d = coef_decay``, ``mu_sigma = noise_loc``, ``s_sigma = noise_scale`` and the range of
    the number of points."""

    degree: int = 3
    df: float | None = 4.0
    coef_scale: float = 1.0
    coef_decay: float = 0.7
    noise_loc: float = math.log(0.15)
    noise_scale: float = 0.5
    min_points: int = 3
    max_points: int = 20

    def __post_init__(self):
        if not 1 <= self.min_points <= self.max_points:
            raise PyroDGMError(f"need 1 <= min_points <= max_points, got {self.min_points} and "
                               f"{self.max_points}")

    def coef_scales(self) -> torch.Tensor:
        """``s_k = coef_scale * coef_decay^k``: higher powers get smaller coefficients a priori."""
        return self.coef_scale * self.coef_decay ** torch.arange(self.degree + 1.0)

    def simulate_inputs(self, n: int, generator: torch.Generator | None = None):
        """``(t, mask)`` of ``n`` data sets: ``N ~ Uniform{min_points..max_points}`` points each,
        ``t ~ Uniform(-1, 1)``, padded to ``max_points`` (padding has t = 0, mask = 0)."""
        counts = torch.randint(self.min_points, self.max_points + 1, (n,), generator=generator)
        mask = (torch.arange(self.max_points) < counts.unsqueeze(-1)).float()
        t = (2 * torch.rand(n, self.max_points, generator=generator) - 1) * mask
        return t, mask

    @torch.no_grad()
    def simulate(self, n: int, seed: int = 0) -> dict:
        """``n`` data sets drawn from the joint: ``{"t", "y", "mask", "w", "sigma"}``."""
        generator = torch.Generator().manual_seed(seed)
        t, mask = self.simulate_inputs(n, generator)
        w = self.coef_scales() * torch.randn(n, self.degree + 1, generator=generator)
        sigma = torch.exp(self.noise_loc + self.noise_scale * torch.randn(n, generator=generator))
        noise = torch.randn(n, self.max_points, generator=generator)
        if self.df is not None:  # t_nu = z / sqrt(chi2_nu / nu), chi2_nu = 2 Gamma(nu/2, 1)
            gamma = torch._standard_gamma(torch.full((n, self.max_points), self.df / 2),
                                          generator=generator)
            noise = noise / torch.sqrt(2 * gamma / self.df)
        y = (polynomial(w, t) + sigma.unsqueeze(-1) * noise) * mask
        return {"t": t, "y": y, "mask": mask, "w": w, "sigma": sigma}


@dataclass(repr=False)
class PolyRegData(Dataset):
    """Padded regression data sets: ``x`` holds the responses ``y``, ``t`` the inputs and
    ``mask`` the real points, all of shape ``(N, max_points)``; ``batches`` yields ``(t, y, mask)``."""

    t: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def __post_init__(self):
        super().__post_init__()
        for name in ("t", "mask"):
            value = getattr(self, name)
            if value is None or value.shape != self.x.shape:
                raise PyroDGMError(f"polyreg data need {name} of the shape of the responses x, "
                                   f"{tuple(self.x.shape)}")

    @property
    def max_points(self) -> int:
        """The padded number of points per data set."""
        return self.x.shape[1]

    def arrays(self, index=slice(None)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(t, y, mask)`` of the data sets at ``index`` (a slice or a tensor of indices)."""
        return self.t[index], self.x[index], self.mask[index]

    def _batch(self, indices: torch.Tensor, generator: torch.Generator | None):
        return self.arrays(indices)


def load_polyreg(split: str, data_dir=None, binarize: str | None = None, seed: int = 0, *,
                 n_train: int = 10000, n_test: int = 100, min_points: int = 3,
                 max_points: int = 20) -> PolyRegData:
    """The training or test split of data sets simulated from :class:`PolyRegPrior` with its
    default prior and the given numbers of points (``data_dir`` is unused)."""
    check_choice(split, SPLITS, "split")
    if check_binarize(binarize, default="none") != "none":
        raise PyroDGMError("polyreg data are continuous; binarize must be 'none'")
    n = int(n_train if split == "train" else n_test)
    if n < 1:
        raise PyroDGMError(f"option n_{split} must be a positive whole number, got {n}")
    prior = PolyRegPrior(min_points=int(min_points), max_points=int(max_points))
    split_seed = int(seed) if split == "train" else int(seed) + 1
    sim = prior.simulate(n, seed=split_seed)
    return PolyRegData(
        name="polyreg", x=sim["y"].float(), y=None, image_shape=None, likelihood="gaussian",
        t=sim["t"].float(), mask=sim["mask"].float(),
        info={"split": split, "seed": split_seed, "n_total": n, "min_points": int(min_points),
              "max_points": int(max_points), "w": sim["w"], "sigma": sim["sigma"]},
    )
