r"""The VampPrior: a VAE (and a two-level hierarchical VAE) whose prior is a mixture of posteriors.

Tomczak & Welling (2018), seed ``001`` ("VAE with a VampPrior"): the prior that maximizes the
ELBO is the aggregated posterior :math:`\frac1N \sum_n q_\phi(z \mid x_n)`; it is approximated
with :math:`K` learned pseudo-inputs :math:`u_k`,

.. math::

    p_\lambda(z) = \frac1K \sum_{k=1}^K q_\phi(z \mid u_k),

sharing the encoder :math:`q_\phi` with the guide. The pseudo-inputs are trained by SGD with
everything else; here :math:`u_k = \mathrm{sigmoid}(a_k)` keeps them in the pixel range [0, 1].

- :class:`VampVAE`: :math:`z \sim p_\lambda(z)`, :math:`x \sim p_\theta(x \mid z)`;
- :class:`VampHVAE` (HVAE, L = 2): :math:`z_2 \sim p_\lambda(z_2)`,
  :math:`z_1 \sim \mathcal N(\mu_\theta(z_2), \mathrm{diag}\,\sigma^2_\theta(z_2))`,
  :math:`x \sim p_\theta(x \mid z_1, z_2)`; guide :math:`q(z_2 \mid x)\, q(z_1 \mid x, z_2)`
  (:class:`pyro_dgm.guides.hvae.HVAEGuide`).

The encoder is held as a reference, not a submodule: its parameters belong to the guide (and
its checkpoint); the model uses them, so the prior's gradient reaches the encoder too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import constraints

import pyro
import pyro.distributions as dist
from pyro.distributions import TorchDistribution
from pyro.nn import PyroModule

from pyro_dgm.nn import MLP, make_decoder


class DiagonalNormalMixture(TorchDistribution):
    r"""Equal-weight mixture :math:`\frac1K \sum_k \mathcal N(z; \mu_k, \mathrm{diag}\,\sigma_k^2)`.

    ``loc`` and ``scale`` are ``(K, D)``. The log-density expands the square,
    :math:`\sum_d (z_d - \mu_{kd})^2 / \sigma_{kd}^2 = z^2 \cdot \sigma_k^{-2} - 2 z \cdot
    \mu_k \sigma_k^{-2} + \mu_k^2 \cdot \sigma_k^{-2}`, as matrix products in float64, so that
    scoring ``(particles, N, D)`` codes never builds a ``(particles, N, K, D)`` tensor.
    Equivalent to ``MixtureSameFamily(Categorical(logits=0), Normal(loc, scale).to_event(1))``.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, batch_shape=torch.Size(),
                 validate_args=None):
        self.loc, self.scale = loc, scale
        super().__init__(torch.Size(batch_shape), loc.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return DiagonalNormalMixture(self.loc, self.scale, batch_shape)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        z64 = z.double()
        precision = self.scale.double().pow(-2)                                 # (K, D)
        quadratic = (z64.pow(2) @ precision.T - 2 * z64 @ (self.loc.double() * precision).T
                     + (self.loc.double().pow(2) * precision).sum(-1))           # (..., K)
        log_norm = self.scale.double().log().sum(-1) + 0.5 * z.shape[-1] * math.log(2 * math.pi)
        log_components = -0.5 * quadratic - log_norm
        log_p = torch.logsumexp(log_components, -1) - math.log(self.loc.shape[0])
        return log_p.to(z.dtype).expand(torch.broadcast_shapes(log_p.shape, self.batch_shape))

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        with torch.no_grad():
            k = torch.randint(self.loc.shape[0], shape, device=self.loc.device)
            return self.loc[k] + self.scale[k] * torch.randn(*shape, self.loc.shape[-1],
                                                             device=self.loc.device)

    @property
    def mean(self):
        return self.loc.mean(0).expand(self.batch_shape + self.event_shape)


class VampPrior(torch.nn.Module):
    r""":math:`p_\lambda(z) = \frac1K \sum_k q_\phi(z \mid u_k)`, with ``K`` pseudo-inputs.

    ``encoder.posterior(u)`` must return a diagonal Gaussian (``Normal(...).to_event(1)``).
    ``init`` (``K x x_dim``, values in [0, 1], e.g. training images) sets the pseudo-inputs'
    starting point; otherwise they start near grey 0.5 with a little noise.
    """

    def __init__(self, encoder, x_dim: int, n_pseudo: int = 500,
                 init: torch.Tensor | None = None):
        super().__init__()
        object.__setattr__(self, "encoder", encoder)  # shared with the guide, not owned
        if init is None:
            start = 0.5 + 0.05 * torch.randn(n_pseudo, x_dim)
        else:
            start = 0.05 + 0.9 * init.reshape(n_pseudo, x_dim).float()
        self.pseudo_logits = torch.nn.Parameter(torch.logit(start.clamp(0.01, 0.99)))

    def pseudo_inputs(self) -> torch.Tensor:
        return torch.sigmoid(self.pseudo_logits)

    def forward(self) -> DiagonalNormalMixture:
        posterior = self.encoder.posterior(self.pseudo_inputs())
        gaussian = posterior.base_dist if isinstance(posterior, dist.Independent) else posterior
        return DiagonalNormalMixture(gaussian.loc, gaussian.scale)


class VampVAE(PyroModule):
    """VAE with a VampPrior: ``z ~ (1/K) sum_k q(z | u_k)``, ``x ~ p(x | z)``; sites ``z``, ``x``."""

    def __init__(self, x_dim: int, encoder, z_dim: int = 40, hidden: int = 300,
                 likelihood: str = "bernoulli", n_pseudo: int = 500,
                 init: torch.Tensor | None = None):
        super().__init__(name="vamp_vae")
        self.z_dim = z_dim
        self.vamp = VampPrior(encoder, x_dim, n_pseudo, init)
        self.decoder = make_decoder(likelihood, z_dim, [hidden], x_dim)

    def forward(self, x: torch.Tensor) -> None:
        prior = self.vamp()
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", prior)
            pyro.sample("x", self.decoder(z), obs=x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Mean images ``E[x | z]`` for ``n`` codes from the VampPrior."""
        return self.decoder(self.vamp().sample([n])).mean


class VampHVAE(PyroModule):
    """Two-level HVAE with a VampPrior on the top layer; sites ``z2``, ``z1``, ``x``.

    ``z2 ~ VampPrior``, ``z1 ~ N(mu(z2), sigma(z2)^2)``, ``x ~ p(x | z1, z2)``. ``encoder_z2``
    is the guide's ``q(z2 | x)`` (the VampPrior's components).
    """

    def __init__(self, x_dim: int, encoder_z2, z1_dim: int = 40, z2_dim: int = 40,
                 hidden: int = 300, likelihood: str = "bernoulli", n_pseudo: int = 500,
                 init: torch.Tensor | None = None, min_scale: float = 1e-4):
        super().__init__(name="vamp_hvae")
        self.z1_dim, self.z2_dim, self.min_scale = z1_dim, z2_dim, min_scale
        self.vamp = VampPrior(encoder_z2, x_dim, n_pseudo, init)
        self.z1_body = MLP([z2_dim, hidden])
        self.z1_head = torch.nn.Linear(hidden, 2 * z1_dim)
        self.decoder = make_decoder(likelihood, z1_dim + z2_dim, [hidden], x_dim)

    def z1_given_z2(self, z2: torch.Tensor) -> dist.Distribution:
        """``p(z1 | z2) = N(mu(z2), diag sigma(z2)^2)``."""
        loc, scale = self.z1_head(F.relu(self.z1_body(z2))).chunk(2, dim=-1)
        return dist.Normal(loc, self.min_scale + F.softplus(scale)).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        prior = self.vamp()
        with pyro.plate("data", x.shape[0]):
            z2 = pyro.sample("z2", prior)
            z1 = pyro.sample("z1", self.z1_given_z2(z2))
            pyro.sample("x", self.decoder(torch.cat([z1, z2], -1)), obs=x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        z2 = self.vamp().sample([n])
        z1 = self.z1_given_z2(z2).sample()
        return self.decoder(torch.cat([z1, z2], -1)).mean
