r"""The stick-breaking variational autoencoder's generative model (Nalisnick & Smyth, 2017).

Seed ``000`` ("MODEL #1: Stick-Breaking Variational Autoencoder"): the latent code is a
vector of stick weights drawn from a truncated GEM prior,

.. math::

    v_{n,k} \sim \mathrm{Beta}(1, \alpha_0), \quad k = 1, \dots, K-1, \qquad
    \pi_{n,k} = v_{n,k} \prod_{j<k} (1 - v_{n,j}), \qquad
    \pi_{n,K} = \prod_{j<K} (1 - v_{n,j}),

    x_n \mid \pi_n \sim p_\theta(x_n \mid \pi_n).

The sample site is the stick fractions ``v`` (so the guide's Kumaraswamy posterior and the
Beta prior meet in one site, and ``KL(Kumaraswamy || Beta)`` applies); the weights ``pi``
are recorded as a deterministic site. Defaults from the seed and the authors' code:
truncation ``K = 50``, ``alpha0 = 5``, decoder 50-500-784.
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.distributions import StickBreakingFractions
from pyro_dgm.nn import make_decoder


class SBVAE(PyroModule):
    """``v ~ Beta(1, alpha0)^(K-1)``, ``pi = stick_breaking(v)``, ``x ~ p_theta(x | pi)``."""

    def __init__(self, x_dim: int, truncation: int = 50, alpha0: float = 5.0, hidden: int = 500,
                 likelihood: str = "bernoulli"):
        super().__init__(name="sbvae")
        if truncation < 2:
            raise ValueError(f"truncation must be at least 2 sticks, got {truncation}")
        if alpha0 <= 0:
            raise ValueError(f"alpha0 must be positive, got {alpha0}")
        self.truncation = truncation
        self.alpha0 = alpha0
        self.stick_breaking = StickBreakingFractions()
        self.decoder = make_decoder(likelihood, truncation, [hidden], x_dim)

    def prior(self, batch_shape: torch.Size = torch.Size()) -> dist.Distribution:
        """``p(v) = prod_k Beta(v_k; 1, alpha0)`` over the ``K - 1`` stick fractions."""
        one = next(self.decoder.parameters()).new_ones(())
        shape = [*batch_shape, self.truncation - 1]
        return dist.Beta(one, self.alpha0 * one).expand(shape).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            stick_fractions = pyro.sample("v", self.prior())
            stick_weights = pyro.deterministic("pi", self.stick_breaking(stick_fractions),
                                               event_dim=1)
            pyro.sample("x", self.decoder(stick_weights), obs=x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Mean images ``E[x | pi]`` for ``n`` stick-weight vectors drawn from the prior."""
        stick_weights = self.stick_breaking(self.prior([n]).sample())
        return self.decoder(stick_weights).mean
