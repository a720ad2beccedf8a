r"""The guide of the two-level hierarchical VAE (Tomczak & Welling 2018, HVAE with L = 2).

Seed ``001`` ("VAE with a VampPrior", experiments with HVAE (L = 2)):

.. math::

    q_\phi(z_1, z_2 \mid x) = q_\phi(z_2 \mid x)\; q_\phi(z_1 \mid x, z_2),

both diagonal Gaussians, reparameterized. :math:`q(z_2 \mid x)` is a
:class:`pyro_dgm.guides.GaussianEncoder` over site ``z2``; it is also what the model's VampPrior
evaluates at the pseudo-inputs. :math:`q(z_1 \mid x, z_2)` joins an embedding of ``x`` and of
``z2`` (ReLU) before its two heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.guides.gaussian import GaussianEncoder


class HVAEGuide(PyroModule):
    """``q(z2 | x) q(z1 | x, z2)`` over sites ``z2`` and ``z1``."""

    def __init__(self, x_dim: int, z1_dim: int = 40, z2_dim: int = 40, hidden: int = 300,
                 min_scale: float = 1e-4):
        super().__init__(name="hvae_guide")
        self.min_scale = min_scale
        self.z2_encoder = GaussianEncoder(x_dim, z2_dim, hidden, site="z2")
        self.x_embed = torch.nn.Linear(x_dim, hidden)
        self.z2_embed = torch.nn.Linear(z2_dim, hidden)
        self.z1_head = torch.nn.Linear(2 * hidden, 2 * z1_dim)

    def z1_posterior(self, x: torch.Tensor, z2: torch.Tensor) -> dist.Distribution:
        """``q(z1 | x, z2) = N(mu(x, z2), diag sigma(x, z2)^2)``."""
        x_embed = self.x_embed(x).expand(*z2.shape[:-1], -1)
        h = F.relu(torch.cat([x_embed, self.z2_embed(z2)], -1))
        loc, scale = self.z1_head(h).chunk(2, dim=-1)
        return dist.Normal(loc, self.min_scale + F.softplus(scale)).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            z2 = pyro.sample("z2", self.z2_encoder.posterior(x))
            pyro.sample("z1", self.z1_posterior(x, z2))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(E[z1 | x, mu2], mu2)`` with ``mu2 = E[z2 | x]``, concatenated."""
        mu2 = self.z2_encoder.posterior(x).mean
        return torch.cat([self.z1_posterior(x, mu2).mean, mu2], -1)
