r"""Gaussian clusters: synthetic data from a known mixture, to check that a DP mixture finds it.

The generating density is a mixture of ``n_components`` axis-aligned Gaussians in ``dim``
dimensions,

.. math::

    p^\star(x) = \sum_{k=1}^{K} w_k\, \mathcal N\big(x;\ m_k,\ \mathrm{diag}(s_k^2)\big),

drawn once from ``seed`` (the same for both splits):

1. weights ``w ~ Dirichlet(5, ..., 5)``, so that every component keeps a visible share;
2. means ``m_k`` uniform in the cube ``[0, 2 separation K^(1/dim)]^dim``, each redrawn until it
   is at least ``separation`` from the ones before (so the clusters are "well separated" when
   ``separation`` is several component scales);
3. scales ``s_{k,d} ~ Uniform(0.5, 1)``.

The training split draws ``n_train`` points and the test split ``n_test`` points, each from
its own stream (``seed`` and split). ``y`` is the generating component. The truth is kept in
``info`` (``"weights"``, ``"means"``, ``"scales"``), and :func:`true_log_density` scores points
under it, which is the best held-out log-likelihood any model can reach on average.
Each example is a ``dim``-vector, not an image (``image_shape`` is None); the likelihood is
``"gaussian"``.
"""

from __future__ import annotations

import torch

from pyro_dgm.data.core import SPLITS, Dataset, check_choice
from pyro_dgm.errors import PyroDGMError

WEIGHT_CONCENTRATION = 5.0
SCALE_RANGE = (0.5, 1.0)
MAX_MEAN_DRAWS = 10_000


def _check_count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PyroDGMError(f"gaussian-clusters option {name} must be a whole number >= {minimum}, "
                           f"got {value!r}.")
    return value


def mixture_truth(n_components: int, dim: int, separation: float, seed: int) -> dict:
    """The generating mixture: ``{"weights": (K,), "means": (K, D), "scales": (K, D)}``."""
    generator = torch.Generator().manual_seed(seed)
    # Dirichlet(5, ..., 5) from the generator: normalized Gamma(5, 1) variates, each a sum of
    # five Exp(1) variates made by inversion
    gammas = -torch.log(torch.rand(n_components, int(WEIGHT_CONCENTRATION), generator=generator))
    weights = gammas.sum(-1) / gammas.sum()
    side = 2 * separation * n_components ** (1.0 / dim)
    means = []
    for _ in range(MAX_MEAN_DRAWS):  # one candidate at a time, kept if far from the others
        candidate = side * torch.rand(dim, generator=generator)
        if all((candidate - mean).norm() >= separation for mean in means):
            means.append(candidate)
        if len(means) == n_components:
            break
    else:  # pragma: no cover - the cube is large enough for this not to happen
        raise PyroDGMError(f"could not place {n_components} means {separation} apart in {dim} "
                           f"dimensions; lower the separation.")
    means = torch.stack(means)
    low, high = SCALE_RANGE
    scales = low + (high - low) * torch.rand(n_components, dim, generator=generator)
    return {"weights": weights, "means": means, "scales": scales}


def sample_mixture(truth: dict, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points and their components from the mixture ``truth``."""
    components = torch.multinomial(truth["weights"], n, replacement=True, generator=generator)
    noise = torch.randn(n, truth["means"].shape[1], generator=generator)
    x = truth["means"][components] + truth["scales"][components] * noise
    return x.float(), components


def mixture_log_density(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                        scales: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \sum_k w_k \mathcal N(x; m_k, \mathrm{diag}(s_k^2))` for each row of ``x``."""
    component = torch.distributions.Normal(means, scales)  # batch (K, D)
    log_joint = component.log_prob(x.unsqueeze(-2)).sum(-1) + weights.log()  # (N, K)
    return log_joint.logsumexp(-1)


def true_log_density(data: Dataset) -> torch.Tensor:
    """Log-density of each example under the generating mixture stored in ``data.info``."""
    if "means" not in data.info:
        raise PyroDGMError(f"data set {data.name!r} carries no generating mixture; "
                           f"only 'gaussian-clusters' does.")
    return mixture_log_density(data.x.double(), data.info["weights"].double(),
                               data.info["means"].double(), data.info["scales"].double())


def load_gaussian_clusters(
    split: str,
    data_dir=None,
    binarize: str | None = None,
    seed: int = 0,
    *,
    n_train: int = 2000,
    n_test: int = 1000,
    n_components: int = 5,
    dim: int = 2,
    separation: float = 6.0,
) -> Dataset:
    """One split of points from a known Gaussian mixture (see the module docstring).

    ``data_dir`` is unused (nothing is read); ``binarize`` may only be None or ``"none"``.
    """
    check_choice(split, SPLITS, "split")
    if binarize not in (None, "none"):
        raise PyroDGMError(f"gaussian-clusters are continuous points and cannot be binarized; "
                           f"got binarize={binarize!r}.")
    for name, value in (("n_train", n_train), ("n_test", n_test), ("n_components", n_components),
                        ("dim", dim)):
        _check_count(value, name)
    if isinstance(separation, bool) or not isinstance(separation, (int, float)) or not separation > 0:
        raise PyroDGMError(f"gaussian-clusters option separation must be a positive number, "
                           f"got {separation!r}.")
    truth = mixture_truth(n_components, dim, float(separation), seed)
    stream = torch.Generator().manual_seed(seed * 2 + SPLITS.index(split) + 1)
    x, components = sample_mixture(truth, n_train if split == "train" else n_test, stream)
    info = {"split": split, "n_components": n_components, "separation": float(separation), **truth}
    return Dataset("gaussian-clusters", x, components, None, "gaussian", "none", info)
