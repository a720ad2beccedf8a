r"""The Gaussian-latent variational autoencoder's generative model.

Kingma & Welling (2014), Rezende et al. (2014); seed ``000`` ("The Variational Autoencoder"):

.. math::

    z_n \sim \mathcal N(0, I_d), \qquad x_n \mid z_n \sim p_\theta(x_n \mid z_n),

with :math:`p_\theta` a Bernoulli (binary or grey-level images) or Gaussian (continuous
pixels) decoder network. Trained with its guide :class:`pyro_dgm.guides.GaussianEncoder`
by maximizing

.. math::

    \mathcal L(\theta, \phi; x_n) = \mathbb E_{q_\phi(z_n|x_n)}[\log p_\theta(x_n|z_n)]
        - \mathrm{KL}(q_\phi(z_n|x_n) \,\|\, p(z_n)).
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.nn import make_decoder


class VAE(PyroModule):
    """``z ~ N(0, I)``, ``x ~ p_theta(x | z)``; sites ``z`` (latent) and ``x`` (observed)."""

    def __init__(self, x_dim: int, z_dim: int = 50, hidden: int = 500,
                 likelihood: str = "bernoulli"):
        super().__init__(name="vae")
        self.z_dim = z_dim
        self.decoder = make_decoder(likelihood, z_dim, [hidden], x_dim)

    def prior(self, batch_shape: torch.Size = torch.Size()) -> dist.Distribution:
        """``p(z) = N(0, I_d)``."""
        loc = self._zeros()
        return dist.Normal(loc, 1.0).expand([*batch_shape, self.z_dim]).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", self.prior())
            pyro.sample("x", self.decoder(z), obs=x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Mean images ``E[x | z]`` for ``n`` latent codes drawn from the prior."""
        return self.decoder(self.prior([n]).sample()).mean

    def _zeros(self) -> torch.Tensor:
        return next(self.decoder.parameters()).new_zeros(())
