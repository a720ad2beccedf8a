r"""A Dirichlet-process mixture of Gaussians, truncated, for stochastic variational inference.

Seed ``000`` ("The Dirichlet Process", "SGVB for the Dirichlet Process"): a draw from a DP is
:math:`G = \sum_k \pi_k \delta_{\zeta_k}` with atoms :math:`\zeta_k \sim G_0` and weights
:math:`\pi \sim \mathrm{GEM}(\alpha_0)`; truncated after :math:`T` atoms (Ishwaran & James
2001) and with Gaussian atoms it is the mixture

.. math::

    v_k &\sim \mathrm{Beta}(1, \alpha_0), \quad k < T, \qquad
    \pi_k = v_k \prod_{j<k} (1 - v_j), \quad \pi_T = \prod_{j<T} (1 - v_j), \\
    \mu_{k,d} &\sim \mathcal N(m_{0,d},\ s_{0,d}^2), \qquad
    \tau_{k,d} \sim \mathrm{Gamma}(a_0,\ b_{0,d}) \qquad (k \le T,\ d \le D), \\
    x_n \mid \pi, \mu, \tau &\sim \sum_{k=1}^T \pi_k\,
        \mathcal N\big(x_n;\ \mu_k,\ \mathrm{diag}(\tau_k)^{-1}\big), \qquad n \le N.

The base measure :math:`G_0` is the conjugate-style Normal x Gamma on each coordinate's mean and
precision (a diagonal covariance per component). The sites are ``v`` (the ``T - 1`` stick
fractions), ``mu`` and ``tau`` (in ``plate("components", T)``) and ``x`` (in ``plate("data")``).

**The assignment is summed out in the likelihood.** Of the seed's two obstacles, the second,
"gradients through samples from the mixture", is met with its "brute force solution": the
observation site is the mixture density itself, :math:`\log \sum_k \pi_k \mathcal N(x_n;
\ldots)` by ``logsumexp`` (``MixtureSameFamily``), so no discrete site exists. This is exactly
what Pyro's parallel enumeration of an assignment ``z_n`` would compute (and costs the same
O(N T D)), but it keeps the model usable with every objective of the zoo, in particular
``TraceMeanField_ELBO`` with its analytic ``KL(Kumaraswamy || Beta)``, which
``TraceEnum_ELBO`` lacks. ``DPMixture(..., marginalize=False)`` writes the same model with an
enumerated ``z`` for ``TraceEnum_ELBO``; the tests check that both give the same ELBO.

**Minibatches.** The model is called with a minibatch ``x`` of ``B`` of the ``N`` training
points and scales the global sites (``v``, ``mu``, ``tau``) by ``B / N``. Its ELBO is therefore
:math:`\frac{B}{N}` times an unbiased estimate of the full-data ELBO,

.. math::

    \frac{B}{N}\Big(\frac{N}{B} \sum_{n \in \text{batch}} E_q \log p(x_n \mid \pi, \mu, \tau)
    - \mathrm{KL}(q(v, \mu, \tau) \,\|\, p(v, \mu, \tau))\Big),

and the Trainer's "loss per example" (loss / B) is an unbiased estimate of -ELBO / N, in nats
per point. The guide applies the same scale to its global sites.
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
from pyro.nn import PyroModule

from pyro_dgm.distributions import log_stick_weights
from pyro_dgm.errors import PyroDGMError

PRIOR_SPREAD = 0.1  # a component's expected spread, as a fraction of the data's


def mixture_distribution(log_weights: torch.Tensor, means: torch.Tensor,
                         precisions: torch.Tensor) -> dist.MixtureSameFamily:
    r"""The distribution :math:`\sum_k \pi_k \mathcal N(\mu_k, \mathrm{diag}(\tau_k)^{-1})` over
    ``D``-vectors, batched over leading dimensions (``log_weights`` ``(..., T)``, ``means`` and
    ``precisions`` ``(..., T, D)``); its batch shape is ``(..., 1)``, ready to broadcast over a
    data plate at dim -1."""
    components = dist.Normal(means.unsqueeze(-3), precisions.rsqrt().unsqueeze(-3)).to_event(1)
    return dist.MixtureSameFamily(dist.Categorical(logits=log_weights.unsqueeze(-2)), components)


def check_points(x, dim: int, n_data: int) -> None:
    """Refuse anything but a float tensor of at most ``n_data`` finite ``dim``-vectors."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != dim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise PyroDGMError(f"the DP mixture takes points as a tensor of shape (B, {dim}), got {shape}")
    if not 1 <= x.shape[0] <= n_data:
        raise PyroDGMError(f"a minibatch must hold 1 to n_data={n_data} points, got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise PyroDGMError("the DP mixture got points with NaN or infinite coordinates")


class DPMixture(PyroModule):
    """Truncated stick-breaking DP mixture of diagonal Gaussians (see the module docstring).

    ``prior_loc``/``prior_scale`` (``D``) are :math:`m_0, s_0`; ``precision_shape`` is
    :math:`a_0` and ``precision_rate`` (``D``) is :math:`b_0`; ``n_data`` is the number of
    training points ``N`` that a minibatch stands for. :meth:`from_data` picks them from data.
    """

    def __init__(self, dim: int, truncation: int = 20, alpha0: float = 1.0, n_data: int = 1,
                 prior_loc=None, prior_scale=None, precision_shape: float = 1.0,
                 precision_rate=None, marginalize: bool = True):
        super().__init__(name="dp_mixture")
        if isinstance(truncation, bool) or not isinstance(truncation, int) or truncation < 2:
            raise PyroDGMError(f"truncation must be a whole number >= 2, got {truncation!r}")
        if not alpha0 > 0 or not precision_shape > 0:
            raise PyroDGMError(f"alpha0 and precision_shape must be positive, got {alpha0!r} and "
                               f"{precision_shape!r}")
        if isinstance(n_data, bool) or not isinstance(n_data, int) or n_data < 1:
            raise PyroDGMError(f"n_data must be a positive whole number, got {n_data!r}")
        self.dim, self.truncation, self.alpha0, self.n_data = dim, truncation, float(alpha0), n_data
        self.precision_shape, self.marginalize = float(precision_shape), marginalize
        ones = torch.ones(dim)
        self.register_buffer("prior_loc", ones * 0 if prior_loc is None else torch.as_tensor(prior_loc).float())
        self.register_buffer("prior_scale", ones if prior_scale is None else torch.as_tensor(prior_scale).float())
        self.register_buffer("precision_rate",
                             ones if precision_rate is None else torch.as_tensor(precision_rate).float())

    @classmethod
    def from_data(cls, x: torch.Tensor, truncation: int = 20, alpha0: float = 1.0,
                  **kwargs) -> "DPMixture":
        r"""A weak base measure scaled to the data: :math:`m_0` = the data mean, :math:`s_0` =
        twice the data's standard deviation, :math:`a_0 = 1` and :math:`b_0 = a_0 (\rho\,
        \mathrm{sd}[x])^2` with :math:`\rho` = ``PRIOR_SPREAD`` = 0.1, so the prior guesses a
        component a tenth as wide as the data. The Gamma prior acts like :math:`2 a_0 = 2`
        pseudo-observations with that variance; a rate as large as the data's variance
        (scikit-learn's default for its Wishart) would instead inflate small, tight clusters."""
        variance = x.var(0).clamp(min=1e-6)
        return cls(x.shape[1], truncation, alpha0, x.shape[0], prior_loc=x.mean(0),
                   prior_scale=2 * variance.sqrt(), precision_shape=1.0,
                   precision_rate=PRIOR_SPREAD**2 * variance, **kwargs)

    # -- the prior over the global latents ------------------------------------------------
    def stick_prior(self) -> dist.Distribution:
        """``p(v) = prod_k Beta(v_k; 1, alpha0)`` over the ``T - 1`` fractions."""
        one = self.prior_loc.new_ones(())
        return dist.Beta(one, self.alpha0 * one).expand([self.truncation - 1]).to_event(1)

    def mean_prior(self) -> dist.Distribution:
        return dist.Normal(self.prior_loc, self.prior_scale).to_event(1)

    def precision_prior(self) -> dist.Distribution:
        return dist.Gamma(self.precision_shape * torch.ones_like(self.precision_rate),
                          self.precision_rate).to_event(1)

    def global_scale(self, x: torch.Tensor) -> float:
        """``B / N``: the weight of the global sites for a minibatch of ``B`` points."""
        check_points(x, self.dim, self.n_data)
        return x.shape[0] / self.n_data

    # -- the program ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> None:
        with poutine.scale(scale=self.global_scale(x)):
            fractions = pyro.sample("v", self.stick_prior())
            with pyro.plate("components", self.truncation):
                means = pyro.sample("mu", self.mean_prior())
                precisions = pyro.sample("tau", self.precision_prior())
        log_weights = log_stick_weights(fractions)
        with pyro.plate("data", x.shape[0]):
            if self.marginalize:
                pyro.sample("x", mixture_distribution(log_weights, means, precisions), obs=x)
            else:  # the same density, the assignment left to TraceEnum_ELBO
                z = pyro.sample("z", dist.Categorical(logits=log_weights),
                                infer={"enumerate": "parallel"})
                pyro.sample("x", dist.Normal(means[z], precisions[z].rsqrt()).to_event(1), obs=x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` points from one mixture drawn from the prior (atoms and weights shared)."""
        log_weights = log_stick_weights(self.stick_prior().sample())
        means = self.mean_prior().expand([self.truncation]).sample()
        precisions = self.precision_prior().expand([self.truncation]).sample()
        return mixture_distribution(log_weights, means, precisions).sample([n]).squeeze(-2)


# -- what a fitted mixture says ------------------------------------------------------------
@torch.no_grad()
def posterior_draws(guide, num_samples: int) -> dict:
    """``num_samples`` draws of ``log_weights`` (S, T), ``means`` and ``precisions`` (S, T, D)
    from the guide's posterior over the global latents."""
    draws = guide.sample_globals(num_samples)
    return {"log_weights": log_stick_weights(draws["v"]), "means": draws["mu"],
            "precisions": draws["tau"]}


@torch.no_grad()
def predictive_log_density(guide, x: torch.Tensor, num_samples: int = 100,
                           chunk: int = 4096) -> torch.Tensor:
    r"""The posterior predictive log-density of each row of ``x``,
    :math:`\log \frac1S \sum_s p(x \mid \pi^{(s)}, \mu^{(s)}, \tau^{(s)})` with the globals drawn
    from the guide: the held-out log-likelihood of a Bayesian mixture."""
    draws = posterior_draws(guide, num_samples)
    mixture = mixture_distribution(draws["log_weights"], draws["means"], draws["precisions"])
    pieces = [mixture.log_prob(piece).logsumexp(0) for piece in x.split(chunk)]  # (S, n) -> (n,)
    return torch.cat(pieces) - torch.log(torch.tensor(float(num_samples)))


@torch.no_grad()
def expected_weights(guide, num_samples: int = 1000) -> torch.Tensor:
    """:math:`E_q[\\pi]`, the posterior mean of the mixture weights (Monte Carlo)."""
    return posterior_draws(guide, num_samples)["log_weights"].exp().mean(0)


def components_with_weight(weights: torch.Tensor, threshold: float = 0.01) -> int:
    """How many components carry more than ``threshold`` of the weight."""
    return int((weights > threshold).sum())


def fitted_components(guide, num_samples: int = 1000) -> dict:
    """Posterior summaries for plots: ``weights`` E[pi], ``means`` E[mu], ``scales`` E[tau]^(-1/2)."""
    return {"weights": expected_weights(guide, num_samples),
            "means": guide.mean_posterior().mean.detach(),
            "scales": guide.precision_posterior().mean.detach().rsqrt()}
