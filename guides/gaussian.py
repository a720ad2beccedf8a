r"""The amortized diagonal Gaussian guide of the VAE (Kingma & Welling, 2014).

.. math::

    q_\phi(z_n \mid x_n) = \mathcal N\big(z_n;\ \mu_\phi(x_n),\ \mathrm{diag}\,\sigma^2_\phi(x_n)\big),
    \qquad z_n = \mu_\phi(x_n) + \sigma_\phi(x_n) \odot \epsilon, \ \epsilon \sim \mathcal N(0, I),

the reparameterization of seed ``000`` ("Step #2: sample via differentiable non-centered
parametrizations"). An MLP ``x -> h`` (ReLU) with two linear heads; the scale is a softplus
(plus a small floor) so that it is positive and never exactly zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.nn import MLP


class GaussianEncoder(PyroModule):
    """``q(z | x) = N(mu(x), diag sigma(x)^2)`` over site ``site`` (default ``z``)."""

    def __init__(self, x_dim: int, z_dim: int = 50, hidden: int = 500, site: str = "z",
                 min_scale: float = 1e-4):
        super().__init__(name=f"gaussian_encoder_{site}")
        self.site = site
        self.min_scale = min_scale
        self.body = MLP([x_dim, hidden])
        self.loc_head = torch.nn.Linear(hidden, z_dim)
        self.scale_head = torch.nn.Linear(hidden, z_dim)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden layer ``h(x)`` that both heads read (flow guides read it too)."""
        return F.relu(self.body(x))

    def posterior(self, x: torch.Tensor, context: torch.Tensor | None = None) -> dist.Distribution:
        """``q(z | x)`` as a distribution with batch shape ``x.shape[:-1]``; ``context`` is
        ``self.context(x)`` when the caller has it already."""
        h = self.context(x) if context is None else context
        scale = self.min_scale + F.softplus(self.scale_head(h))
        return dist.Normal(self.loc_head(h), scale).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.sample(self.site, self.posterior(x))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``mu(x)``: the code used by kNN and the embedding plots."""
        return self.posterior(x).mean
