r"""The amortized importance-sampling proposal of polynomial regression (inference compilation).

Seed ``004``, "Learning importance sampling proposals": a map :math:`\lambda = \varphi(\eta, y)`
from a whole data set to the parameters of a proposal :math:`q(x \mid \lambda)` over the
latents, trained by minimizing :math:`\mathbb E_{p(y)}[\mathrm{KL}(p(x \mid y) \,\|\, q(x \mid
\varphi(\eta, y)))]` on samples of the joint (:mod:`pyro_dgm.infer.csis`). Here
:math:`x = (w, \sigma)` and

.. math::

    h &= \rho\Big(\tfrac{1}{N} \textstyle\sum_{n} m_n\, g(t_n, y_n)\Big)
        \quad \text{(a permutation-invariant set encoder, padding masked out)}, \\
    q(w \mid y) &= \textstyle\sum_{j=1}^{K} \pi_j(h)\,
        \mathcal N\big(w;\ \mu_j(h),\ L_j(h) L_j(h)^\top\big), \\
    q(\sigma \mid w, y) &= \mathrm{LogNormal}\big(\sigma;\ a(h, w, r),\ b(h, w, r)^2\big),

a mixture of full-covariance Gaussians over the coefficients, then the noise scale given the
coefficients and the residuals :math:`r_n = y_n - f_w(t_n)`. Every factor has a closed-form
density, so Pyro's ``CSIS`` and importance sampling can score replayed values (a planar or
Sylvester flow could not).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.data.polyreg import polynomial, polynomial_features
from pyro_dgm.models.polyreg import check_data
from pyro_dgm.nn import MLP


class SetEncoder(nn.Module):
    r"""``h = rho(mean_n m_n g(t_n, y_n), log N)``: a Deep-Sets summary of a masked point set.

    The point features fed to the MLP ``g`` are ``phi(t) = (1, t, .., t^D)``, ``y`` and
    ``y phi(t)`` (whose plain mean is ``Phi^T y / N``, the statistic a linear-Gaussian posterior
    mean needs); ``rho`` is an MLP too. Padded points (mask 0) contribute nothing.
    """

    def __init__(self, degree: int, hidden: int):
        super().__init__()
        self.degree = degree
        self.point_net = MLP([2 * (degree + 1) + 1, hidden, hidden], activation=nn.Tanh)
        self.set_net = MLP([hidden + 1, hidden, hidden], activation=nn.Tanh)

    def forward(self, t: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        phi = polynomial_features(t, self.degree)
        points = torch.cat([phi, y.unsqueeze(-1), y.unsqueeze(-1) * phi], dim=-1)
        features = torch.tanh(self.point_net(points)) * mask.unsqueeze(-1)
        count = mask.sum(-1, keepdim=True)
        pooled = features.sum(-2) / count
        return torch.tanh(self.set_net(torch.cat([pooled, count.log()], dim=-1)))


class PolyRegProposal(PyroModule):
    """``q(w, sigma | t, y)``: a ``components``-Gaussian mixture over ``w``, then
    ``LogNormal`` over ``sigma`` given ``w``; the same sites as :class:`PolyRegression`."""

    def __init__(self, degree: int = 3, hidden: int = 128, components: int = 3,
                 min_scale: float = 1e-3):
        super().__init__(name="polyreg_proposal")
        self.degree, self.components, self.min_scale = degree, components, min_scale
        dim = degree + 1
        self.encoder = SetEncoder(degree, hidden)
        n_tril = dim * (dim + 1) // 2
        self.mixture_head = nn.Linear(hidden, components * (1 + dim + n_tril))
        self.noise_net = MLP([hidden + dim + 2, hidden, 2], activation=nn.Tanh)
        self.register_buffer("_tril_rows", torch.tril_indices(dim, dim)[0], persistent=False)
        self.register_buffer("_tril_cols", torch.tril_indices(dim, dim)[1], persistent=False)

    # -- the proposal's factors -----------------------------------------------------------------
    def coefficient_proposal(self, h: torch.Tensor) -> dist.Distribution:
        """``q(w | y) = sum_j pi_j N(mu_j, L_j L_j^T)`` with batch shape ``h.shape[:-1]``."""
        dim, k = self.degree + 1, self.components
        out = self.mixture_head(h).reshape(*h.shape[:-1], k, -1)
        logits, loc, tril_values = out[..., 0], out[..., 1:1 + dim], out[..., 1 + dim:]
        scale_tril = loc.new_zeros(*loc.shape, dim)
        scale_tril[..., self._tril_rows, self._tril_cols] = tril_values
        diagonal = self.min_scale + F.softplus(scale_tril.diagonal(dim1=-2, dim2=-1) - 1.0)
        scale_tril = scale_tril.tril(-1) + torch.diag_embed(diagonal)
        return dist.MixtureSameFamily(dist.Categorical(logits=logits),
                                      dist.MultivariateNormal(loc, scale_tril=scale_tril))

    def noise_proposal(self, h, w, t, y, mask) -> dist.Distribution:
        """``q(sigma | w, y) = LogNormal(a, b^2)`` from ``h``, ``w`` and the residual scale."""
        residual = (y - polynomial(w, t)) * mask
        count = mask.sum(-1)
        log_rms = 0.5 * torch.log((residual ** 2).sum(-1) / count + 1e-6)
        log_mad = torch.log(residual.abs().sum(-1) / count + 1e-6)
        h = h.expand(*w.shape[:-1], h.shape[-1])
        out = self.noise_net(torch.cat([h, w, log_rms.unsqueeze(-1), log_mad.unsqueeze(-1)], -1))
        loc = log_mad + out[..., 0]
        return dist.LogNormal(loc, self.min_scale + F.softplus(out[..., 1]))

    # -- the program ----------------------------------------------------------------------------
    def forward(self, t: torch.Tensor, y: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, observations: dict | None = None):
        """Sample ``w`` then ``sigma`` for each of the ``B`` data sets (``observations={"y": y}``,
        the keyword of Pyro's ``CSIS``, takes precedence over ``y``)."""
        if observations is not None:
            y = observations.get("y", y)
        if y is None:
            raise PyroDGMError("the proposal needs observed data y (or observations={'y': y})")
        t, y, mask = check_data(t, y, mask)
        h = self.encoder(t, y, mask)
        with pyro.plate("data", t.shape[0]):
            w = pyro.sample("w", self.coefficient_proposal(h))
            pyro.sample("sigma", self.noise_proposal(h, w, t, y, mask))

    @torch.no_grad()
    def encode(self, t, y, mask) -> torch.Tensor:
        """The proposal's mean of ``w``: a deterministic summary of each data set."""
        t, y, mask = check_data(t, y, mask)
        return self.coefficient_proposal(self.encoder(t, y, mask)).mean
