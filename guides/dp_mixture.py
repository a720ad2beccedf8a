r"""The mean-field guide of the DP mixture (:mod:`pyro_dgm.models.dp_mixture`).

Seed ``000``, "SGVB for the Dirichlet Process": the first obstacle, gradients through the
weights :math:`\pi`, is met by a Kumaraswamy posterior on each stick fraction, reparameterized
through its closed-form inverse CDF. The guide is fully factorized over the global latents,

.. math::

    q(v, \mu, \tau) = \prod_{k<T} q(v_k) \prod_{k \le T} \prod_{d \le D}
        \mathcal N(\mu_{k,d};\ \hat m_{k,d},\ \hat s_{k,d}^2)\,
        \mathrm{Gamma}(\tau_{k,d};\ \hat a_{k,d},\ \hat b_{k,d}),

with :math:`q(v_k) = \mathrm{Kumaraswamy}(a_k, b_k)` (``stick_posterior="kumaraswamy"``,
:math:`v = (1 - u^{1/b})^{1/a}`) or, for comparison, :math:`\mathrm{Beta}(a_k, b_k)`
(``"beta"``: the conjugate family, the posterior of coordinate-ascent VI; torch draws it with
implicit reparameterization gradients). Every KL term is analytic under
``TraceMeanField_ELBO``: Normal || Normal, Gamma || Gamma, Beta || Beta, and Kumaraswamy || Beta
(accurate with ``taylor_terms=None``, or the paper's series cut after ``taylor_terms`` terms).
There is no local site: the assignments are summed out in the model.

Parameters are unconstrained logs of the positive quantities. Initialization (it matters: mean
field over a mixture has many local optima): the sticks at the prior, :math:`\mathrm{Beta}(1,
\alpha_0) = \mathrm{Kumaraswamy}(1, \alpha_0)` (the same distribution in both families), so the
first components are the heaviest and later ones start starved; the means at ``T`` points picked
by k-means++ seeding (Arthur & Vassilvitskii 2007) from the training data, in pick order; every
component as wide as the data (``INIT_SPREAD``). Wide components let the early, heavy ones take
whole clusters first; components that start narrow split clusters between duplicates, a state
that gradient steps leave only slowly (the likelihood is flat along a duplicate pair's weights).

A note on the two families: a Kumaraswamy cannot concentrate at an interior point. For large
:math:`b`, :math:`\log v \approx (\log E - \log b)/a` with :math:`E \sim \mathrm{Exp}(1)`, so the
relative spread of :math:`v` is about :math:`1.28/a` and its mean :math:`e^{-(\log b + \gamma)/a}`;
a stick near 0.3 with :math:`b \le 10^4` keeps a relative standard deviation of about 15 %,
whereas the exact posterior's shrinks like :math:`1/\sqrt N`. The Beta has no such floor.
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
from pyro.nn import PyroModule

from pyro_dgm.distributions import Kumaraswamy
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.distributions import log_stick_weights
from pyro_dgm.models.dp_mixture import check_points

STICK_POSTERIORS = ("kumaraswamy", "beta")
INIT_SPREAD = 1.0  # the initial spread of every component, as a fraction of the data's
MIN_CONCENTRATION, MAX_CONCENTRATION = 1e-3, 1e4


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` rows of ``x`` chosen by k-means++ seeding: each next with probability proportional
    to its squared distance from the nearest row already chosen."""
    chosen = [x[torch.randint(x.shape[0], (1,), generator=generator)]]
    nearest = (x - chosen[0]).square().sum(-1)
    for _ in range(k - 1):
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
        chosen.append(x[torch.multinomial(weights, 1, generator=generator)])
        nearest = torch.minimum(nearest, (x - chosen[-1]).square().sum(-1))
    return torch.cat(chosen)


class DPMixtureGuide(PyroModule):
    """Mean-field ``q(v) q(mu) q(tau)`` over the DP mixture's global latents (module docstring)."""

    def __init__(self, init_means: torch.Tensor, init_precision: torch.Tensor, n_data: int,
                 stick_posterior: str = "kumaraswamy", taylor_terms: int | None = None,
                 init_mean_scale: float | torch.Tensor = 0.1, init_alpha0: float = 1.0):
        super().__init__(name="dp_mixture_guide")
        if stick_posterior not in STICK_POSTERIORS:
            raise PyroDGMError(f"unknown stick posterior {stick_posterior!r}; expected one of "
                               f"{', '.join(STICK_POSTERIORS)}")
        truncation, dim = init_means.shape
        if truncation < 2:
            raise PyroDGMError(f"truncation must be a whole number >= 2, got {truncation}")
        self.truncation, self.dim, self.n_data = truncation, dim, n_data
        self.stick_family, self.taylor_terms = stick_posterior, taylor_terms
        self.stick_log_a = torch.nn.Parameter(torch.zeros(truncation - 1))
        self.stick_log_b = torch.nn.Parameter(torch.full((truncation - 1,), float(init_alpha0)).log())
        self.mean_loc = torch.nn.Parameter(init_means.detach().float().clone())
        self.mean_log_scale = torch.nn.Parameter(
            torch.log(torch.as_tensor(init_mean_scale, dtype=torch.float32)).expand(truncation, dim).clone())
        precision = torch.as_tensor(init_precision, dtype=torch.float32).expand(truncation, dim)
        shape = torch.full((truncation, dim), 10.0)
        self.precision_log_shape = torch.nn.Parameter(shape.log())
        self.precision_log_rate = torch.nn.Parameter((shape / precision).log())

    @classmethod
    def from_data(cls, x: torch.Tensor, truncation: int = 20, stick_posterior: str = "kumaraswamy",
                  taylor_terms: int | None = None, seed: int = 0, init_alpha0: float = 1.0) -> "DPMixtureGuide":
        """Means seeded by k-means++ on (at most 10,000 of) the points ``x``; components as wide
        as the data; mean posteriors 5 % of the data's spread wide; sticks at
        ``Beta(1, init_alpha0)`` (pass the model's ``alpha0``)."""
        generator = torch.Generator().manual_seed(seed)
        pool = x[torch.randperm(x.shape[0], generator=generator)[:10_000]]
        variance = x.var(0).clamp(min=1e-6)
        init_precision = 1 / (INIT_SPREAD**2 * variance)
        return cls(kmeans_plus_plus(pool, truncation, generator), init_precision, x.shape[0],
                   stick_posterior, taylor_terms, init_mean_scale=0.05 * variance.sqrt(),
                   init_alpha0=init_alpha0)

    # -- the posterior factors ------------------------------------------------------------
    def stick_posterior(self) -> dist.Distribution:
        """``q(v)``: Kumaraswamy or Beta factors over the ``T - 1`` fractions."""
        a = self.stick_log_a.exp().clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        b = self.stick_log_b.exp().clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        if self.stick_family == "kumaraswamy":
            return Kumaraswamy(a, b, taylor_terms=self.taylor_terms).to_event(1)
        return dist.Beta(a, b).to_event(1)

    def mean_posterior(self) -> dist.Distribution:
        return dist.Normal(self.mean_loc, self.mean_log_scale.exp()).to_event(1)

    def precision_posterior(self) -> dist.Distribution:
        return dist.Gamma(self.precision_log_shape.exp(), self.precision_log_rate.exp()).to_event(1)

    # -- the program ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> None:
        check_points(x, self.dim, self.n_data)
        with poutine.scale(scale=x.shape[0] / self.n_data):  # as the model: B / N
            pyro.sample("v", self.stick_posterior())
            with pyro.plate("components", self.truncation):
                pyro.sample("mu", self.mean_posterior())
                pyro.sample("tau", self.precision_posterior())

    @torch.no_grad()
    def sample_globals(self, num_samples: int) -> dict:
        """``num_samples`` joint draws of ``v`` (S, T-1), ``mu`` and ``tau`` (S, T, D)."""
        shape = torch.Size([num_samples])
        return {"v": self.stick_posterior().sample(shape), "mu": self.mean_posterior().sample(shape),
                "tau": self.precision_posterior().sample(shape)}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Responsibilities ``p(z_n = k | x_n)`` (N, T) under the posterior means of the globals."""
        log_weights = log_stick_weights(self.stick_posterior().mean)
        precisions = self.precision_posterior().mean
        component = dist.Normal(self.mean_loc, precisions.rsqrt())
        log_joint = component.log_prob(x.unsqueeze(-2)).sum(-1) + log_weights
        return (log_joint - log_joint.logsumexp(-1, keepdim=True)).exp()
