"""Multi-layer perceptrons and decoders that return the observation distribution.

A decoder here is a network that maps a latent code to ``p_theta(x | code)`` as a Pyro
distribution with event dimension 1, so that a model reads
``pyro.sample("x", self.decoder(z), obs=x)``.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

import pyro.distributions as dist

from pyro_dgm.errors import PyroDGMError


class MLP(nn.Sequential):
    """Linear layers of the given ``sizes`` with ``activation`` between them (none after the last).

    ``MLP([784, 500, 50])`` is ``Linear(784, 500) -> ReLU -> Linear(500, 50)``.
    """

    def __init__(self, sizes: list[int], activation: type[nn.Module] = nn.ReLU):
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least an input and an output size, got {sizes}")
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i > 0:
                layers.append(activation())
            layers.append(nn.Linear(n_in, n_out))
        super().__init__(*layers)


class BernoulliDecoder(nn.Module):
    r"""``p_theta(x | h) = prod_d Bernoulli(x_d; sigmoid(f_theta(h)_d))``.

    For grey levels in [0, 1] the same expression is the Bernoulli cross-entropy used by the
    VAE and SB-VAE papers' code; it is not a normalized density over [0, 1], so sample
    validation is switched off for this site.
    """

    def __init__(self, code_dim: int, hidden: list[int], x_dim: int):
        super().__init__()
        self.net = MLP([code_dim, *hidden, x_dim])

    def forward(self, code: torch.Tensor) -> dist.Distribution:
        return dist.Bernoulli(logits=self.net(code), validate_args=False).to_event(1)


class GaussianDecoder(nn.Module):
    r"""``p_theta(x | h) = prod_d N(x_d; mu_d(h), sigma_d(h)^2)`` for continuous pixels in [0, 1].

    ``mu = sigmoid(.)`` keeps the mean in the pixel range; ``sigma = min_scale + softplus(.)``
    keeps the density bounded, since a free scale can shrink to zero on a pixel that never
    varies (Frey faces has several).
    """

    def __init__(self, code_dim: int, hidden: list[int], x_dim: int, min_scale: float = 1e-2):
        super().__init__()
        self.net = MLP([code_dim, *hidden, 2 * x_dim])
        self.min_scale = min_scale

    def forward(self, code: torch.Tensor) -> dist.Distribution:
        mean_logits, scale_logits = self.net(code).chunk(2, dim=-1)
        scale = self.min_scale + F.softplus(scale_logits)
        return dist.Normal(torch.sigmoid(mean_logits), scale).to_event(1)


DECODERS = {"bernoulli": BernoulliDecoder, "gaussian": GaussianDecoder}


def make_decoder(likelihood: str, code_dim: int, hidden: list[int], x_dim: int) -> nn.Module:
    """The decoder for a data set's likelihood (``"bernoulli"`` or ``"gaussian"``)."""
    if likelihood not in DECODERS:
        raise PyroDGMError(
            f"unknown likelihood {likelihood!r}; expected one of {sorted(DECODERS)}"
        )
    return DECODERS[likelihood](code_dim, hidden, x_dim)
