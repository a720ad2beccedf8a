r"""NADE, the neural autoregressive distribution estimator (Larochelle & Murray 2011), as a
Pyro program with no latent site; seeds ``001`` (auto-regressive models
:math:`p(x) = p(x_1) \prod_d p(x_d \mid x_{<d})`) and ``002`` ("tractable models").

.. math::

    x_n \sim \mathrm{NADE}(W, c, V, b), \qquad
    \log p(x_n) = \sum_{d=1}^{D} \log \mathrm{Bernoulli}\big(x_{nd};\
        \sigma(b_d + V_{d,:} \cdot \sigma(c + W_{:,<d}\, x_{n,<d}))\big),

one vectorized observation site ``x`` (:class:`pyro_dgm.distributions.nade.NADE`). The log-likelihood
is exact, so the model trains by maximum likelihood: the ``elbo`` objective with the empty guide
:class:`pyro_dgm.guides.empty.EmptyGuide`. Initialization as the paper's code: weights
:math:`\mathcal N(0, 0.01^2)`, biases zero.
"""

from __future__ import annotations

import torch
from torch import nn

import pyro
from pyro.nn import PyroModule

from pyro_dgm.distributions.nade import NADE as NADEDistribution


class NADE(PyroModule):
    """``x ~ NADE(W, c, V, b)`` over binary vectors of length ``x_dim``, ``hidden`` units."""

    def __init__(self, x_dim: int, hidden: int = 500, init_scale: float = 0.01):
        super().__init__(name="nade")
        self.W = nn.Parameter(init_scale * torch.randn(hidden, x_dim))
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(init_scale * torch.randn(x_dim, hidden))
        self.b = nn.Parameter(torch.zeros(x_dim))

    def distribution(self) -> NADEDistribution:
        """The model's distribution of one example (grey levels score as cross-entropy)."""
        return NADEDistribution(self.W, self.c, self.V, self.b, validate_args=False)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", self.distribution().expand([x.shape[0]]), obs=x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x_n)`` for each row of ``x``: the exact log-likelihood on binary data."""
        return self.distribution().log_prob(x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` binary images drawn pixel by pixel."""
        return self.distribution().sample((n,))
