r"""The amortized Kumaraswamy guide of the stick-breaking VAE (Nalisnick & Smyth, 2017).

.. math::

    q_\phi(v_{n,k} \mid x_n) = \mathrm{Kumaraswamy}\big(v_{n,k};\ a_k(x_n),\ b_k(x_n)\big),
    \qquad v = \big(1 - u^{1/b}\big)^{1/a}, \ u \sim \mathcal U(0, 1),

a Beta-like posterior with a closed-form inverse CDF, hence reparameterizable (seed ``000``,
"Differentiating through pi_k"). Encoder ``x -> 500`` (ReLU) with softplus heads for ``a`` and
``b``, clamped into ``[1e-3, 1e3]`` where :class:`~pyro_dgm.distributions.Kumaraswamy` is
finite; the authors' known failure mode (NaNs from ReLU heads and tiny fractions) is guarded
by the softplus, the clamp, and the log-space sampler.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import pyro
from pyro.nn import PyroModule

from pyro_dgm.distributions import Kumaraswamy, StickBreakingFractions
from pyro_dgm.nn import MLP

MIN_CONCENTRATION, MAX_CONCENTRATION = 1e-3, 1e3


class KumaraswamyEncoder(PyroModule):
    """``q(v | x) = prod_k Kumaraswamy(v_k; a_k(x), b_k(x))`` over the ``K - 1`` stick fractions."""

    def __init__(self, x_dim: int, truncation: int = 50, hidden: int = 500, site: str = "v",
                 taylor_terms: int | None = None):
        super().__init__(name=f"kumaraswamy_encoder_{site}")
        self.site = site
        self.taylor_terms = taylor_terms
        self.stick_breaking = StickBreakingFractions()
        self.body = MLP([x_dim, hidden])
        self.a_head = torch.nn.Linear(hidden, truncation - 1)
        self.b_head = torch.nn.Linear(hidden, truncation - 1)

    def posterior(self, x: torch.Tensor) -> Kumaraswamy:
        """``q(v | x)`` with batch shape ``x.shape[:-1] + (K - 1,)``; use ``.to_event(1)`` for sites."""
        h = F.relu(self.body(x))
        a = F.softplus(self.a_head(h)).clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        b = F.softplus(self.b_head(h)).clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        return Kumaraswamy(a, b, taylor_terms=self.taylor_terms)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.sample(self.site, self.posterior(x).to_event(1))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Stick weights of the Kumaraswamy means, ``pi(E_q[v])``: the code used by kNN and plots."""
        return self.stick_breaking(self.posterior(x).mean)
