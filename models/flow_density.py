r"""A normalizing-flow density model trained by maximum likelihood; seed ``004``
("Normalizing flows": "trained directly by maximum likelihood (no ELBO required)").

.. math::

    u \sim \mathcal N(0, I_D), \qquad x = f(u) = f_K \circ \dots \circ f_1(u), \qquad
    \log p(x) = \log \mathcal N(f^{-1}(x); 0, I) + \log \left|\det \frac{\partial f^{-1}}{\partial x}\right|,

one observation site ``x`` holding a Pyro ``TransformedDistribution`` and no latent site, so
with the empty guide the ``elbo`` objective is the exact log-likelihood. The layers
:math:`f_k` are Pyro's transforms, each followed by a reversal of the coordinates (so every
coordinate gets transformed) and, for the affine flows with ``batchnorm=True``, a batch
normalization (``pyro.distributions.transforms.BatchNorm``, as RealNVP and MAF use; off by
default: in evaluation mode its running variance of near-constant pixels, such as MNIST's
borders, gives test images unlike the training ones densities of :math:`e^{-10^8}`; on the
2-D toy densities, though, the affine flows diverge without it, so use ``batchnorm=True``
there, or ``flow="spline"``, which fits them best):

- ``flow="realnvp"``: affine coupling layers (Dinh et al. 2017),
  :math:`x_{d+1:} = u_{d+1:} \odot e^{s(u_{1:d})} + t(u_{1:d})`;
- ``flow="maf"``: masked autoregressive layers (Papamakarios et al. 2017; Pyro's
  ``affine_autoregressive``), one pass to score data, ``D`` passes to sample;
- ``flow="spline"``: rational-quadratic spline coupling layers (Durkan et al. 2019; Pyro's
  ``spline_coupling``, identity outside [-``SPLINE_BOUND``, ``SPLINE_BOUND``]).

**Images.** 8-bit grey levels :math:`k \in \{0, \dots, 255\}^D` (stored as :math:`k / 255`)
are made continuous by uniform dequantization, :math:`y = k + v`, :math:`v \sim U[0, 1)^D`,
and the flow models :math:`y` through a logit pre-transform (RealNVP's, with
:math:`\alpha = 0.05`): the last two transforms map :math:`w \in \mathbb R^D` to
:math:`y = 256\, (\sigma(w) - \alpha) / (1 - 2\alpha)`, so that :math:`\log p(y)` counts their
Jacobian :math:`\sum_d \log \frac{256\, \sigma(w_d)(1 - \sigma(w_d))}{1 - 2\alpha}`. Since
every bin :math:`k + [0, 1)^D` has volume one, Jensen's inequality gives

.. math::

    \log P(k) = \log \int_{[0,1)^D} p(k + v)\, dv \ \ge\ \mathbb E_v[\log p(k + v)]
    \qquad \text{(Theis et al. 2016)},

so the model's log-density of the site ``x`` (the dequantized :math:`y`) is, in expectation, a
lower bound on the log-probability of the discrete image, in nats; bits per dimension are
:math:`-\log P(k) / (D \log 2)`.
"""

from __future__ import annotations

import torch
from torch import nn

import pyro
import pyro.distributions as dist
import pyro.distributions.transforms as T
from pyro.nn import PyroModule

LOGIT_ALPHA = 0.05
SPLINE_BOUND = 4.0
SPLINE_BINS = 8

FLOW_LAYERS = {
    "realnvp": lambda dim, hidden: T.affine_coupling(dim, hidden_dims=[hidden, hidden]),
    "maf": lambda dim, hidden: T.affine_autoregressive(dim, hidden_dims=[hidden, hidden]),
    "spline": lambda dim, hidden: T.spline_coupling(dim, hidden_dims=[hidden, hidden],
                                                    count_bins=SPLINE_BINS, bound=SPLINE_BOUND),
}
NORMALIZED = ("realnvp", "maf")


class FlowDensity(PyroModule):
    """``x ~ TransformedDistribution(N(0, I), flow)``: ``flow_length`` layers of kind ``flow``
    (``"realnvp"``, ``"maf"`` or ``"spline"``) with ``hidden`` units in each layer's two
    hidden layers; ``levels=256`` models 8-bit grey levels in [0, 1] by dequantization and the
    logit pre-transform, ``levels=None`` continuous vectors as they are."""

    def __init__(self, x_dim: int, flow: str = "realnvp", flow_length: int = 6,
                 hidden: int = 256, batchnorm: bool = False, levels: int | None = None):
        super().__init__(name="flow_density")
        if flow not in FLOW_LAYERS:
            raise ValueError(f"unknown flow {flow!r}; expected one of {', '.join(FLOW_LAYERS)}")
        if x_dim < 2:
            raise ValueError(f"a flow needs at least 2 dimensions, got {x_dim}")
        self.levels = levels
        self.layers = nn.ModuleList(FLOW_LAYERS[flow](x_dim, hidden) for _ in range(flow_length))
        normalized = batchnorm and flow in NORMALIZED
        self.norms = nn.ModuleList(T.BatchNorm(x_dim) for _ in range(flow_length if normalized else 0))
        self.register_buffer("reversal", torch.arange(x_dim - 1, -1, -1))
        self.register_buffer("base_loc", torch.zeros(x_dim))

    def transforms(self) -> list:
        """:math:`f_1, \\dots, f_K` in the generative direction, then the image transforms."""
        chain = []
        for k, layer in enumerate(self.layers):
            chain += [layer, T.Permute(self.reversal)]
            if k < len(self.norms):
                chain.append(self.norms[k])
        if self.levels is not None:
            scale = self.levels / (1 - 2 * LOGIT_ALPHA)
            chain += [T.SigmoidTransform(), T.AffineTransform(-LOGIT_ALPHA * scale, scale)]
        return chain

    def distribution(self) -> dist.TransformedDistribution:
        """The density of one example, :math:`p(x)` (of the dequantized ``y`` for images)."""
        base = dist.Normal(self.base_loc, 1.0).to_event(1)
        return dist.TransformedDistribution(base, self.transforms())

    def observe(self, x: torch.Tensor) -> torch.Tensor:
        """What site ``x`` observes: ``k + v``, ``v ~ U[0, 1)`` for grey levels ``x = k / 255``,
        else ``x`` itself."""
        if self.levels is None:
            return x
        grey_level = torch.round(x * (self.levels - 1))
        return grey_level + torch.rand_like(x)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", self.distribution().expand([x.shape[0]]), obs=self.observe(x))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p`` of each row of ``x``: exact for vectors; for grey levels, of one
        dequantized draw (a stochastic lower bound on the discrete log-probability)."""
        return self.distribution().log_prob(self.observe(x))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` draws: vectors, or grey-level images ``floor(y) / 255`` in [0, 1]."""
        y = self.distribution().sample((n,))
        if self.levels is None:
            return y
        return y.floor().clamp(0, self.levels - 1) / (self.levels - 1)
