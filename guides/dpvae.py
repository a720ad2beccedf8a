r"""The guide of the DLGMM / DLDPM (:class:`pyro_dgm.models.DPVAE`).

Seed ``000`` ("MODEL #2: Dirichlet Process Variational Autoencoder"): amortized posteriors

.. math::

    q(v_n \mid x_n) = \prod_k \mathrm{Kumaraswamy}(v_{n,k}; a_k(x_n), b_k(x_n)) \quad \text{(DLDPM)},
    \qquad
    q(z_n \mid x_n) = \sum_k \pi_{n,k}\, \mathcal N(z_n; m_k(x_n), \mathrm{diag}\,s_k^2(x_n)),

with, as in the seed's bound, the DLDPM's posterior mixture weights being the per-data-point
sticks :math:`\pi_n = \mathrm{sb}(v_n)` of :math:`q(\pi \mid x)`; for the DLGMM they come from a
softmax head. With ``marginalize="sum"`` the component is an enumerated site ``c``: the ELBO
is an exact sum over components of :math:`\pi_{n,k}` times the component's term, one decoder pass
per component (the seed's :math:`\sum_k \mu_{\pi_k}[\dots]`). Since ``q(c | v)`` and ``p(c | v)``
are then the same weights, their log-ratio cancels and the bound is
:math:`E_{q(v)}[\sum_k \pi_k (\log p(x|z_k) + \log \mathcal N(z_k; \mu_k, \sigma_k) - \log q_k(z_k))]
- \mathrm{KL}(q(v) \| p(v))`, which uses the component density :math:`q_k` where the seed has
the (slightly tighter) mixture :math:`\sum_k \pi_k q_k`. With ``marginalize="enumerate"`` the
guide is one Gaussian :math:`q(z \mid x)` (plus the sticks), the cheap variant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule
from pyro.ops.indexing import Vindex

from pyro_dgm.distributions import Kumaraswamy, StickBreakingFractions
from pyro_dgm.guides.kumaraswamy import MAX_CONCENTRATION, MIN_CONCENTRATION
from pyro_dgm.models.dpvae import check_mixture_options
from pyro_dgm.nn import MLP


class MixtureEncoder(PyroModule):
    """``q(v | x)`` (DLDPM), ``q(c | x, v)`` (``marginalize="sum"``) and ``q(z | x, c)``."""

    def __init__(self, x_dim: int, z_dim: int = 25, components: int = 3, prior: str = "gmm",
                 hidden: int = 500, marginalize: str = "enumerate", min_scale: float = 1e-4):
        super().__init__(name="mixture_encoder")
        check_mixture_options(prior, marginalize, components, 1.0)
        self.z_dim, self.components, self.prior_kind = z_dim, components, prior
        self.marginalize, self.min_scale = marginalize, min_scale
        heads = components if marginalize == "sum" else 1
        self.body = MLP([x_dim, hidden])
        self.loc_head = torch.nn.Linear(hidden, heads * z_dim)
        self.scale_head = torch.nn.Linear(hidden, heads * z_dim)
        if prior == "dp":
            self.a_head = torch.nn.Linear(hidden, components - 1)
            self.b_head = torch.nn.Linear(hidden, components - 1)
            self.stick_breaking = StickBreakingFractions()
        elif marginalize == "sum":
            self.weight_head = torch.nn.Linear(hidden, components)

    def _hidden(self, x):
        return F.relu(self.body(x))

    def stick_posterior(self, h) -> Kumaraswamy:
        a = F.softplus(self.a_head(h)).clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        b = F.softplus(self.b_head(h)).clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        return Kumaraswamy(a, b)

    def component_params(self, h) -> tuple[torch.Tensor, torch.Tensor]:
        """Locations and scales of ``q(z | x, c)``, shape ``(N, heads, z_dim)``."""
        loc = self.loc_head(h).unflatten(-1, (-1, self.z_dim))
        scale = self.min_scale + F.softplus(self.scale_head(h)).unflatten(-1, (-1, self.z_dim))
        return loc, scale

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            h = self._hidden(x)
            loc, scale = self.component_params(h)
            if self.prior_kind == "dp":
                weights = self.stick_breaking(
                    pyro.sample("v", self.stick_posterior(h).to_event(1)))
            if self.marginalize == "enumerate":
                pyro.sample("z", dist.Normal(loc[..., 0, :], scale[..., 0, :]).to_event(1))
                return
            if self.prior_kind == "gmm":
                weights = F.softmax(self.weight_head(h), -1)
            component = pyro.sample("c", dist.Categorical(probs=weights),
                                    infer={"enumerate": "parallel"})
            pyro.sample("z", dist.Normal(Vindex(loc)[..., component, :],
                                         Vindex(scale)[..., component, :]).to_event(1))

    @torch.no_grad()
    def posterior_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The guide's component weights at the posterior means (``(N, T)``; ``sum`` or DLDPM)."""
        h = self._hidden(x)
        if self.prior_kind == "dp":
            return self.stick_breaking(self.stick_posterior(h).mean)
        return F.softmax(self.weight_head(h), -1)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean of ``z`` (for ``sum``: the mixture's mean), used by kNN and plots."""
        loc, _ = self.component_params(self._hidden(x))
        if self.marginalize == "enumerate":
            return loc[..., 0, :]
        return (self.posterior_weights(x).unsqueeze(-1) * loc).sum(-2)
