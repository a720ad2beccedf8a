r"""The mean-field guide of a deep Boltzmann machine (Salakhutdinov & Hinton 2009; seed ``002``,
"mean-field"): a fully factorized :math:`Q_\mu(h \mid v) = \prod_l \prod_j
\mathrm{Bernoulli}(h^l_j; \mu^l_j)` whose means solve the fixed-point equations

.. math:: \mu^l = \sigma\bigl(b_l + W_l\, \mu^{l-1} + W_{l+1}^\top \mu^{l+1}\bigr),
          \qquad \mu^0 = v,\ \mu^{L+1} = 0,

the stationarity conditions of the variational bound
:math:`\log P(v) \ge \mathbb E_Q[-E(v, h)] + H(Q) - \log Z`. They start from one bottom-up pass
with the input from below doubled (the pretraining's recognition weights, Salakhutdinov & Hinton
2009, section 3.1) and are iterated ``iterations`` times, layer by layer.

The guide has no parameters of its own: it reads the DBM's weights. The RBM needs no guide:
its hidden units are summed out exactly (:class:`pyro_dgm.guides.empty.EmptyGuide`).
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.errors import PyroDGMError


class MeanFieldDBM(PyroModule):
    r"""``h^l ~ Bernoulli(mu^l(x))`` in ``plate("data")`` for each hidden layer ``l`` of
    ``dbm``, with :math:`\mu` the mean-field fixed point after ``iterations`` updates."""

    def __init__(self, dbm, iterations: int = 10):
        super().__init__(name="mean_field")
        if not isinstance(iterations, int) or iterations < 1:
            raise PyroDGMError(f"mean-field iterations must be a positive whole number, "
                               f"got {iterations!r}")
        self.iterations = iterations
        object.__setattr__(self, "dbm", dbm)  # read, not owned: its weights stay the model's

    def mean_field(self, x: torch.Tensor, iterations: int | None = None) -> list[torch.Tensor]:
        r"""``[x, mu^1, ..., mu^L]``: the fixed-point iteration of the module docstring."""
        dbm = self.dbm
        mu = [x] + [x.new_zeros(x.shape[0], size) for size in dbm.sizes[1:]]
        for l in range(1, dbm.depth + 1):  # bottom-up start: the layers above are still zero
            mu[l] = torch.sigmoid(dbm.layer_input(mu, l, up=2.0 if l < dbm.depth else 1.0))
        for _ in range(self.iterations if iterations is None else iterations):
            for l in range(1, dbm.depth + 1):
                mu[l] = torch.sigmoid(dbm.layer_input(mu, l))
        return mu

    def forward(self, x: torch.Tensor) -> None:
        mu = self.mean_field(x)
        with pyro.plate("data", x.shape[0]):
            for l in range(1, self.dbm.depth + 1):
                pyro.sample(f"h{l}", dist.Bernoulli(mu[l]).to_event(1))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\mu^1(x)`, the first hidden layer's mean-field means (kNN, plots)."""
        return self.mean_field(x)[1]
