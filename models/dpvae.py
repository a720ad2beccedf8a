r"""Deep latent Gaussian mixtures: the DLGMM and its Dirichlet-process version, the DLDPM.

Seed ``000`` ("MODEL #2: Dirichlet Process Variational Autoencoder", Nalisnick, Hertel & Smyth
2016): a VAE whose latent prior is a mixture of :math:`T` Gaussians with learned means and
scales,

.. math::

    \pi_n \sim \begin{cases} \delta_{\mathrm{softmax}(\omega)} & \text{DLGMM (learned weights)} \\
                            \mathrm{GEM}_T(\alpha_0):\ v_{n,k} \sim \mathrm{Beta}(1, \alpha_0),\
                            \pi_n = \mathrm{sb}(v_n) & \text{DLDPM (truncated DP)} \end{cases}

    c_n \mid \pi_n \sim \mathrm{Cat}(\pi_n), \qquad
    z_n \mid c_n \sim \mathcal N(\mu_{c_n}, \mathrm{diag}\,\sigma^2_{c_n}), \qquad
    x_n \mid z_n \sim p_\theta(x_n \mid z_n).

The DLDPM's stick fractions are per data point (site ``v``), as in the seed, whose guide puts
a Kumaraswamy posterior :math:`q(\pi_k \mid x_i)` on them. The component :math:`c_n` is handled
in one of two ways (``marginalize``):

- ``"sum"`` -- the seed's estimator: ``c`` is a site of the model and the guide's mixture
  :math:`q(z \mid x) = \sum_k \pi_k q_k(z \mid x)` enumerates it, so the ELBO is an exact sum over
  the components, each with its own reparameterized :math:`z_k`: :math:`T` decoder passes per
  example (train with ``TraceEnum_ELBO``, objective ``enum-elbo``);
- ``"enumerate"`` -- the cheap one: ``c`` is summed out inside the prior density,
  :math:`\log p(z \mid \pi) = \operatorname{logsumexp}_k [\log \pi_k + \log \mathcal N(z; \mu_k, \sigma_k)]`,
  which is exactly what ``TraceEnum_ELBO`` computes from an enumerated model site ``c``
  (:meth:`DPVAE.enumerated_program`, used by the tests); one Gaussian guide and one decoder pass.

Seed defaults: DLGMM "500d-3x25s" (3 components of 25 dimensions, 500 hidden units), DLDPM
"500d-17tx25s" (truncation 17).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.distributions import StickBreakingFractions
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.nn import make_decoder

PRIORS = ("gmm", "dp")
MARGINALIZATIONS = ("sum", "enumerate")
MIN_SCALE = 1e-3


def check_mixture_options(prior: str, marginalize: str, components: int, alpha0: float) -> None:
    """Raise :class:`PyroDGMError` for an unknown prior or marginalization, or bad sizes."""
    if prior not in PRIORS:
        raise PyroDGMError(f"unknown mixture prior {prior!r}; expected one of {PRIORS}")
    if marginalize not in MARGINALIZATIONS:
        raise PyroDGMError(f"unknown marginalize {marginalize!r}; expected one of "
                           f"{MARGINALIZATIONS}")
    if not isinstance(components, int) or components < 2:
        raise PyroDGMError(f"a mixture needs at least 2 components, got {components!r}")
    if not alpha0 > 0:
        raise PyroDGMError(f"alpha0 must be positive, got {alpha0!r}")


class DPVAE(PyroModule):
    """A VAE with a Gaussian-mixture (``prior="gmm"``) or truncated-DP-mixture (``"dp"``) prior.

    Sites: ``v`` (DLDPM stick fractions), ``c`` (component, only with ``marginalize="sum"``),
    ``z`` and the observed ``x``; all inside ``plate("data")``.
    """

    def __init__(self, x_dim: int, z_dim: int = 25, components: int = 3, prior: str = "gmm",
                 alpha0: float = 1.0, hidden: int = 500, likelihood: str = "bernoulli",
                 marginalize: str = "enumerate"):
        super().__init__(name="dpvae")
        check_mixture_options(prior, marginalize, components, alpha0)
        self.z_dim, self.components, self.prior_kind = z_dim, components, prior
        self.alpha0, self.marginalize = float(alpha0), marginalize
        generator = torch.Generator().manual_seed(0)
        self.component_locs = nn.Parameter(torch.randn(components, z_dim, generator=generator))
        self.component_scale_logits = nn.Parameter(torch.full((components, z_dim), 0.5413))  # softplus = 1
        if prior == "gmm":
            self.weight_logits = nn.Parameter(torch.zeros(components))
        self.stick_breaking = StickBreakingFractions()
        self.decoder = make_decoder(likelihood, z_dim, [hidden], x_dim)

    # -- the prior, piece by piece ----------------------------------------------------------
    def component_scales(self) -> torch.Tensor:
        return MIN_SCALE + F.softplus(self.component_scale_logits)

    def components_distribution(self) -> dist.Distribution:
        r"""The :math:`T` Gaussians :math:`\mathcal N(\mu_k, \mathrm{diag}\,\sigma_k^2)`, batch shape ``(T,)``."""
        return dist.Normal(self.component_locs, self.component_scales()).to_event(1)

    def stick_prior(self) -> dist.Distribution:
        r""":math:`p(v) = \prod_k \mathrm{Beta}(v_k; 1, \alpha_0)` over ``T - 1`` fractions (DLDPM)."""
        one = self.component_locs.new_ones(())
        return dist.Beta(one, self.alpha0 * one).expand([self.components - 1]).to_event(1)

    def mixture_weights(self) -> torch.Tensor:
        """The weights ``pi`` of the current data points: learned (DLGMM) or sampled sticks (DLDPM)."""
        if self.prior_kind == "gmm":
            return F.softmax(self.weight_logits, -1)
        return self.stick_breaking(pyro.sample("v", self.stick_prior()))

    def mixture(self, weights: torch.Tensor) -> dist.Distribution:
        r""":math:`p(z \mid \pi) = \sum_k \pi_k \mathcal N(z; \mu_k, \sigma_k)`, the component summed out."""
        components = self.components_distribution().expand(weights.shape)
        return dist.MixtureSameFamily(dist.Categorical(probs=weights), components)

    def expected_weights(self) -> torch.Tensor:
        r""":math:`E[\pi]`: the learned weights (DLGMM) or the truncated GEM's mean (DLDPM)."""
        if self.prior_kind == "gmm":
            return F.softmax(self.weight_logits, -1).detach()
        mean_fractions = self.component_locs.new_full((self.components - 1,), 1 / (1 + self.alpha0))
        return self.stick_breaking(mean_fractions)  # E[pi] = sb(E[v]) for independent fractions

    # -- the program ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            weights = self.mixture_weights()
            if self.marginalize == "sum":
                component = pyro.sample("c", dist.Categorical(probs=weights))
                z = pyro.sample("z", dist.Normal(self.component_locs[component],
                                                 self.component_scales()[component]).to_event(1))
            else:
                z = pyro.sample("z", self.mixture(weights))
            pyro.sample("x", self.decoder(z), obs=x)

    def enumerated_program(self, x: torch.Tensor) -> None:
        """The same model with ``c`` as an explicit site enumerated by ``TraceEnum_ELBO``.

        Its ELBO equals that of ``marginalize="enumerate"`` exactly (for the same guide draws):
        the enumeration sums ``pi_c N(z; mu_c, sigma_c)`` over ``c`` just as the mixture density does.
        """
        with pyro.plate("data", x.shape[0]):
            weights = self.mixture_weights()
            component = pyro.sample("c", dist.Categorical(probs=weights),
                                    infer={"enumerate": "parallel"})
            z = pyro.sample("z", dist.Normal(self.component_locs[component],
                                             self.component_scales()[component]).to_event(1))
            pyro.sample("x", self.decoder(z), obs=x)

    # -- generation -------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Mean images ``E[x | z]`` for ``n`` codes drawn from the mixture prior."""
        if self.prior_kind == "gmm":
            weights = F.softmax(self.weight_logits, -1).expand(n, -1)
        else:
            weights = self.stick_breaking(self.stick_prior().sample([n]))
        return self.decoder(self.mixture(weights).sample()).mean

    @torch.no_grad()
    def sample_component(self, component: int, n: int) -> torch.Tensor:
        """Mean images for ``n`` codes drawn from mixture component ``component`` alone."""
        if not 0 <= component < self.components:
            raise PyroDGMError(f"component must be in 0..{self.components - 1}, got {component}")
        z = dist.Normal(self.component_locs[component],
                        self.component_scales()[component]).to_event(1).sample([n])
        return self.decoder(z).mean

    @torch.no_grad()
    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`p(c = k \mid z) \propto E[\pi_k] \mathcal N(z; \mu_k, \sigma_k)`, shape ``(N, T)``."""
        log_joint = (self.expected_weights().log()
                     + self.components_distribution().log_prob(z.unsqueeze(-2)))
        return F.softmax(log_joint, -1)
