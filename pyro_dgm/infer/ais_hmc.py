r"""AIS with Hamiltonian Monte Carlo in latent space: log p(x) of decoder-based models.

Wu, Burda, Salakhutdinov & Grosse (2017), "On the quantitative analysis of decoder-based
generative models", evaluate VAEs and GANs by annealing, for each test example :math:`x`, from
the prior to the unnormalized posterior,

.. math:: f_0(z) = p(z), \qquad f_1(z) = p(z)\, p(x \mid z), \qquad
          f_\beta(z) = p(z)\, p(x \mid z)^{\beta},

so that :math:`Z_1 / Z_0 = p(x)` (:func:`pyro_dgm.infer.ais.anneal`, geometric path, their
sigmoid schedule). The kernel at each :math:`\beta` is HMC (Neal 2011): momentum
:math:`r \sim \mathcal N(0, I)`, ``leapfrog_steps`` leapfrog steps of size :math:`\epsilon` on
the Hamiltonian :math:`H(z, r) = -\log f_\beta(z) + \tfrac12 \lVert r \rVert^2`, and the
Metropolis correction :math:`\min(1, e^{H(z, r) - H(z', r')})`, so that :math:`f_\beta` is left
invariant. As Wu et al. do, the step size is adapted towards an acceptance rate of 0.65, one per
test example: multiplied by 1.02 after a move in which more than 65 % of its chains accepted,
by 0.98 otherwise. Each move draws its step uniformly within +-50 % of that size, so that a
trajectory does not return periodically to its start (Neal 2011, "MCMC using Hamiltonian
dynamics", on randomizing the step size).

:math:`\log p(z)` and :math:`\log p(x \mid z)` come from the zoo's model program itself:
``poutine.condition`` on the latent site and ``poutine.trace``, with the chains as an outer
plate, summing the latent site's log-density (the prior) and the other sites' (the
likelihood) per example. Any model with one real-valued latent site inside ``plate("data")``
qualifies: ``vae``, ``vae-flow``, ``vamp-vae``, and a GAN generator written as
:math:`z \sim \mathcal N(0, I)`, :math:`x \sim \mathcal N(G(z), \sigma^2 I)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch.distributions import constraints
from tqdm import tqdm

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
from pyro.poutine.messenger import Messenger

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.ais import anneal, sigmoid_schedule
from pyro_dgm.infer.estimators import (
    plate_nesting,
    progress_shown,
    sample_sites,
    site_log_prob_per_example,
)

TARGET_ACCEPTANCE = 0.65
DEFAULT_CHAINS = 16


def check_ais_options(steps, chains) -> tuple[int | None, int | None]:
    """``(steps, chains)`` validated: positive whole numbers, ``chains`` only with ``steps``
    (its default then :data:`DEFAULT_CHAINS`); ``(None, None)`` when AIS is not asked for."""
    for flag, value in (("--ais-steps", steps), ("--ais-chains", chains)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise PyroDGMError(f"{flag} must be a positive whole number, got {value!r}")
    if steps is None:
        if chains is not None:
            raise PyroDGMError("--ais-chains needs --ais-steps (the number of annealing steps)")
        return None, None
    return steps, DEFAULT_CHAINS if chains is None else chains


# -- the densities of the path, from the model program -------------------------------------
@dataclass
class Terms:
    r""":math:`\log p(z)` and :math:`\log p(x \mid z)` per chain and example, ``(C, N)``, and
    their gradients with respect to ``z`` (shape of ``z``)."""

    log_prior: torch.Tensor
    log_lik: torch.Tensor
    grad_prior: torch.Tensor
    grad_lik: torch.Tensor

    def log_f(self, beta: float) -> torch.Tensor:
        r""":math:`\log f_\beta = \log p(z) + \beta \log p(x \mid z)`."""
        return self.log_prior + beta * self.log_lik

    def grad(self, beta: float) -> torch.Tensor:
        return self.grad_prior + beta * self.grad_lik

    def where(self, keep: torch.Tensor, other: "Terms") -> "Terms":
        """These terms where ``keep`` (``(C, N)``), ``other``'s elsewhere."""
        pick = lambda a, b: torch.where(keep.reshape(keep.shape + (1,) * (a.dim() - 2)), a, b)
        return Terms(pick(self.log_prior, other.log_prior), pick(self.log_lik, other.log_lik),
                     pick(self.grad_prior, other.grad_prior), pick(self.grad_lik, other.grad_lik))


class LatentPath:
    """The prior and likelihood of ``model`` on the examples ``x``, as functions of its one
    continuous latent site, for ``chains`` chains per example (the chains are an outer plate).

    The last evaluation is remembered (by tensor identity), so that the annealing loop's
    :math:`\\log f_1 - \\log f_0` at the state the kernel just returned costs nothing.
    """

    def __init__(self, model: Callable, x: torch.Tensor, chains: int):
        self.model, self.x, self.chains = model, x, chains
        self.site, self.max_plate_nesting = latent_site(model, x)
        self._last: tuple[torch.Tensor, Terms] | None = None

    def _trace(self, z: torch.Tensor | None):
        particles = pyro.plate("_chains", self.chains, dim=-(self.max_plate_nesting + 1))
        program = self.model if z is None else poutine.condition(self.model, {self.site: z})
        with poutine.block():
            return poutine.trace(particles(program)).get_trace(self.x)

    @torch.no_grad()
    def initial(self) -> torch.Tensor:
        """``z ~ p(z)``, shape ``(C, N, ...)``: the model program run forward."""
        z = self._trace(None).nodes[self.site]["value"]
        expected = (self.chains, self.x.shape[0])
        if tuple(z.shape[:2]) != expected:
            raise PyroDGMError(f"latent site {self.site!r} has shape {tuple(z.shape)} under "
                               f"{self.chains} chains; AIS needs (chains, examples, ...) = "
                               f"{expected} + the event shape")
        return z

    def terms(self, z: torch.Tensor) -> Terms:
        """:class:`Terms` at ``z``: one forward and one backward pass of the model."""
        if self._last is not None and self._last[0] is z:
            return self._last[1]
        with torch.enable_grad():
            position = z.detach().requires_grad_()
            trace = self._trace(position)
            trace.compute_log_prob()
            log_prior, log_lik = 0.0, 0.0
            for site in sample_sites(trace):
                if site["infer"].get("_deterministic"):
                    continue
                log_p = site_log_prob_per_example(site, self.max_plate_nesting + 1)
                if site["name"] == self.site:
                    log_prior = log_prior + log_p
                else:
                    log_lik = log_lik + log_p
            shape = position.shape[:2]
            log_prior, log_lik = log_prior.expand(shape), torch.as_tensor(log_lik).expand(shape)
            grad_prior = torch.autograd.grad(log_prior.sum(), position, retain_graph=True)[0]
            grad_lik = (torch.autograd.grad(log_lik.sum(), position)[0] if log_lik.requires_grad
                        else torch.zeros_like(position))
        terms = Terms(log_prior.detach(), log_lik.detach(), grad_prior, grad_lik)
        if not (torch.isfinite(terms.log_prior).all() and torch.isfinite(terms.grad_lik).all()):
            raise PyroDGMError(f"the log-density of the model is not finite at latent site "
                               f"{self.site!r}: AIS cannot move its chains")
        self.remember(z, terms)
        return terms

    def remember(self, z: torch.Tensor, terms: Terms) -> None:
        self._last = (z, terms)

    def log_f0(self, z: torch.Tensor) -> torch.Tensor:
        return self.terms(z).log_prior

    def log_f1(self, z: torch.Tensor) -> torch.Tensor:
        return self.terms(z).log_f(1.0)


def latent_site(model: Callable, x: torch.Tensor) -> tuple[str, int]:
    """The name of ``model``'s one latent site and its plate nesting; a model with no latent,
    several, or a discrete or constrained one is refused in one sentence."""
    name = type(model).__name__
    with poutine.block(), torch.no_grad():
        trace = poutine.trace(model).get_trace(x[:2])
    latents = [site for site in sample_sites(trace) if not site["is_observed"]]
    if not latents:
        raise PyroDGMError(f"{name} has no latent variable: AIS in latent space does not apply")
    if len(latents) > 1:
        raise PyroDGMError(f"AIS with HMC handles one latent site, and {name} has "
                           f"{len(latents)}: {', '.join(s['name'] for s in latents)}")
    site = latents[0]
    support = site["fn"].support
    if support.is_discrete:
        raise PyroDGMError(f"{name}'s latent site {site['name']!r} is discrete: AIS with HMC "
                           f"needs a continuous latent")
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if support is not constraints.real:
        raise PyroDGMError(f"{name}'s latent site {site['name']!r} has support {support}: AIS "
                           f"with HMC needs a latent on the whole real line")
    return site["name"], max(plate_nesting(trace), 1)


# -- the kernel -----------------------------------------------------------------------------
class AdaptiveHMC:
    r"""HMC that leaves :math:`f_\beta(z) = p(z)\, p(x \mid z)^\beta` invariant, with one step
    size per example adapted towards :data:`TARGET_ACCEPTANCE` from the fraction of its chains
    that accepted the last move (Wu et al. 2017), jittered by ``jitter`` (relative) per move.

    One transition: :math:`r \sim \mathcal N(0, I)`; ``leapfrog_steps`` times
    :math:`r \leftarrow r + \tfrac\epsilon2 \nabla \log f_\beta(z)`,
    :math:`z \leftarrow z + \epsilon r`, :math:`r \leftarrow r + \tfrac\epsilon2 \nabla \log
    f_\beta(z)`; accept :math:`(z', r')` with probability :math:`\min(1, \exp(-H(z', r') +
    H(z, r)))`. ``transitions`` and ``acceptance`` (the running mean per chain) are kept.
    """

    def __init__(self, path: LatentPath, leapfrog_steps: int = 10, step_size: float = 0.05,
                 min_step: float = 1e-4, max_step: float = 0.5, adapt: bool = True,
                 jitter: float = 0.5):
        self.path, self.leapfrog_steps, self.adapt = path, leapfrog_steps, adapt
        self.jitter = jitter
        self.min_step, self.max_step = min_step, max_step
        shape = (path.chains, path.x.shape[0])
        self.step_size = torch.full(shape, step_size, dtype=path.x.dtype, device=path.x.device)
        self.acceptance = torch.zeros_like(self.step_size)
        self.transitions = 0

    def __call__(self, z: torch.Tensor, beta: float) -> torch.Tensor:
        start = self.path.terms(z)
        jitter = 1 + self.jitter * (2 * torch.rand_like(self.step_size) - 1)
        epsilon = (self.step_size * jitter).reshape(self.step_size.shape + (1,) * (z.dim() - 2))
        momentum = torch.randn_like(z)
        position, terms = z, start
        r = momentum + 0.5 * epsilon * terms.grad(beta)
        for step in range(self.leapfrog_steps):
            position = position + epsilon * r
            terms = self.path.terms(position)
            last = step == self.leapfrog_steps - 1
            r = r + (0.5 * epsilon if last else epsilon) * terms.grad(beta)
        log_accept = (terms.log_f(beta) - 0.5 * _squared_norm(r)
                      - start.log_f(beta) + 0.5 * _squared_norm(momentum))
        accept = torch.rand_like(log_accept).log() < torch.nan_to_num(log_accept, nan=-math.inf)
        moved = torch.where(accept.reshape(accept.shape + (1,) * (z.dim() - 2)), position, z)
        self.path.remember(moved, terms.where(accept, start))
        self._adapt(accept)
        return moved

    def _adapt(self, accept: torch.Tensor) -> None:
        accepted = accept.to(self.acceptance.dtype)
        self.transitions += 1
        self.acceptance += (accepted - self.acceptance) / self.transitions
        if self.adapt:
            rate = accepted.mean(0, keepdim=True)            # this move, over the chains
            factor = torch.where(rate > TARGET_ACCEPTANCE, 1.02, 0.98)
            self.step_size = (self.step_size * factor).clamp(self.min_step, self.max_step)


def _squared_norm(r: torch.Tensor) -> torch.Tensor:
    return r.pow(2).flatten(2).sum(-1)


# -- the estimator --------------------------------------------------------------------------
@dataclass(frozen=True)
class AISResult:
    """Per-example AIS estimates: ``log_px`` and its ``stderr`` over chains, ``(N,)`` each,
    and each example's mean acceptance rate of the HMC moves."""

    log_px: torch.Tensor
    stderr: torch.Tensor
    acceptance: torch.Tensor

    @property
    def nll(self) -> float:
        """The data set's mean negative log-likelihood, nats."""
        return -self.log_px.mean().item()

    @property
    def nll_stderr(self) -> float:
        r"""The standard error of :attr:`nll` from the chains, :math:`\sqrt{\sum_n s_n^2} / N`
        (the examples' estimates are independent)."""
        return (self.stderr.pow(2).sum().sqrt() / len(self.stderr)).item()


def ais_log_likelihood(model: Callable, x: torch.Tensor, steps: int, chains: int = DEFAULT_CHAINS,
                       *, leapfrog_steps: int = 10, step_size: float = 0.05,
                       batch_size: int | None = None, max_elements: int = 2 ** 22) -> AISResult:
    r"""AIS estimates of :math:`\log p(x_n)` for each row of ``x``: ``chains`` chains per example
    annealed over ``steps`` inverse temperatures of :func:`sigmoid_schedule`, moved by
    :class:`AdaptiveHMC`. Examples go in batches of ``batch_size`` (default: as many as keep
    ``chains * batch * dim`` under ``max_elements``). Each chain costs ``steps * leapfrog_steps
    + 1`` forward and backward passes of the model."""
    steps, chains = check_ais_options(steps, chains)
    if not isinstance(leapfrog_steps, int) or leapfrog_steps < 1:
        raise PyroDGMError(f"leapfrog_steps must be a positive whole number, got "
                           f"{leapfrog_steps!r}")
    if batch_size is None:
        batch_size = max(1, max_elements // (chains * max(1, x[0].numel())))
    betas = sigmoid_schedule(steps)
    results = []
    bar = tqdm(total=x.shape[0], desc=f"AIS {steps} steps x {chains} chains", unit="example",
               disable=not progress_shown(), leave=False)
    for start in range(0, x.shape[0], batch_size):
        path = LatentPath(model, x[start:start + batch_size], chains)
        kernel = AdaptiveHMC(path, leapfrog_steps, step_size)
        estimate = anneal(path.initial(), path.log_f0, path.log_f1, kernel, betas)
        results.append((estimate.log_mean, estimate.stderr, kernel.acceptance.mean(0)))
        bar.update(path.x.shape[0])
    bar.close()
    log_px, stderr, acceptance = (torch.cat(parts) for parts in zip(*results))
    return AISResult(log_px.double(), stderr.double(), acceptance)


def ais_metrics(model: Callable, x: torch.Tensor, steps: int, chains: int,
                leapfrog_steps: int = 10) -> dict:
    """The ``eval.json`` keys of AIS: ``ais_nll``, ``ais_nll_stderr``, ``ais_steps``,
    ``ais_chains``, ``ais_leapfrog_steps`` and ``ais_acceptance`` (mean HMC acceptance)."""
    result = ais_log_likelihood(model, x, steps, chains, leapfrog_steps=leapfrog_steps)
    stderr = result.nll_stderr
    return {"ais_nll": result.nll, "ais_nll_stderr": stderr if math.isfinite(stderr) else None,
            "ais_steps": steps, "ais_chains": chains, "ais_leapfrog_steps": leapfrog_steps,
            "ais_acceptance": result.acceptance.mean().item()}


# -- Wu et al.'s observation model for any decoder -------------------------------------------
def check_obs_scale(scale) -> float:
    """``scale`` if it is a positive, finite number; otherwise one sentence."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
            or not (math.isfinite(scale) and scale > 0):
        raise PyroDGMError(f"the observation scale sigma must be a positive, finite number, "
                           f"got {scale!r}")
    return float(scale)


class GaussianObservation(Messenger):
    r"""Score a decoder's observed site under Wu et al.'s (2017) Gaussian observation model,

    .. math:: p_\sigma(x \mid z) = \mathcal N(x;\, \mu(z),\, \sigma^2 I),

    with :math:`\mu(z)` the mean of the distribution the model gives its site ``site`` (a GAN
    generator's :math:`G(z)`, a Bernoulli decoder's pixel probabilities, a Gaussian decoder's
    mean) and :math:`\sigma` = ``scale``: the same density family for every decoder, so that
    their AIS log-likelihoods compare. The prior and the rest of the program are untouched.
    """

    def __init__(self, scale: float, site: str = "x"):
        super().__init__()
        self.scale, self.site = check_obs_scale(scale), site

    def _pyro_sample(self, msg: dict) -> None:
        if msg["name"] == self.site and msg["is_observed"]:
            fn = msg["fn"]
            msg["fn"] = dist.Normal(fn.mean, self.scale).to_event(fn.event_dim)


def refuse_ais(model, ais_steps, ais_chains, reason: str) -> None:
    """For evaluate hooks that cannot run AIS: one sentence if AIS was asked for."""
    if ais_steps is not None or ais_chains is not None:
        raise PyroDGMError(f"AIS does not apply to {type(model).__name__}: {reason}")
