r"""Annealed importance sampling (Neal 2001): the normalizing constant of an unnormalized density
that no guide can give, by annealing from one whose constant is known.

With :math:`f_0` a normalized start density (a prior, or an RBM with no couplings) and
:math:`f_1` the unnormalized target, the geometric path

.. math:: f_\beta(s) = f_0(s)^{1-\beta}\, f_1(s)^{\beta}, \qquad 0 = \beta_0 < \beta_1 < \dots < \beta_T = 1,

and a Markov kernel :math:`T_\beta` that leaves :math:`f_\beta` invariant give, for each chain
started at :math:`s_0 \sim f_0` and moved by :math:`s_t \sim T_{\beta_t}(\cdot \mid s_{t-1})`,
the importance weight

.. math:: \log w = \sum_{t=1}^{T} (\beta_t - \beta_{t-1})
          \bigl[\log f_1(s_{t-1}) - \log f_0(s_{t-1})\bigr],

with :math:`\mathbb{E}[w] = Z_1 / Z_0` (Neal 2001, eq. 9). The estimate
:math:`\log \frac1C \sum_c w_c` over :math:`C` chains is a stochastic lower bound of
:math:`\log Z_1/Z_0` (Jensen); its standard error is given by the delta method,
:math:`\widehat{\mathrm{sd}}(w) / (\bar w \sqrt{C})`.

This module holds the annealing loop and the schedules; the kernels are the families' own
(Gibbs for Boltzmann machines, HMC in latent space for decoder models, Wu et al. 2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm import tqdm

from pyro_dgm.errors import PyroDGMError


def linear_schedule(steps: int) -> torch.Tensor:
    r"""``steps + 1`` inverse temperatures :math:`\beta_t = t / T`, from 0 to 1."""
    _check_steps(steps)
    return torch.linspace(0.0, 1.0, steps + 1)


def sigmoid_schedule(steps: int, radius: float = 4.0) -> torch.Tensor:
    r"""``steps + 1`` inverse temperatures on a rescaled sigmoid, dense near both ends:
    :math:`\beta_t \propto \sigma(r(2t/T - 1))`, shifted and scaled to run from 0 to 1
    (the schedule of Wu et al. 2017, "On the quantitative analysis of decoder-based models")."""
    _check_steps(steps)
    s = torch.sigmoid(torch.linspace(-radius, radius, steps + 1, dtype=torch.float64))
    return ((s - s[0]) / (s[-1] - s[0])).float()


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise PyroDGMError(f"AIS needs a positive whole number of annealing steps, got {steps!r}")


@dataclass(frozen=True)
class AISEstimate:
    """The log importance weights of ``chains`` AIS chains, one row per chain (the remaining
    dimensions are the batch of independent estimates, e.g. one per test example)."""

    log_weights: torch.Tensor

    @property
    def chains(self) -> int:
        return self.log_weights.shape[0]

    @property
    def log_mean(self) -> torch.Tensor:
        r""":math:`\log \frac1C \sum_c w_c`: the estimate of :math:`\log Z_1 / Z_0`."""
        return torch.logsumexp(self.log_weights, 0) - math.log(self.chains)

    @property
    def stderr(self) -> torch.Tensor:
        r"""The delta-method standard error of :attr:`log_mean`:
        :math:`\mathrm{sd}(w) / (\bar w \sqrt{C})`, computed on weights scaled by their maximum."""
        if self.chains < 2:
            return torch.full_like(self.log_mean, math.nan)
        scaled = torch.exp(self.log_weights - self.log_weights.max(0).values)
        return scaled.std(0) / (scaled.mean(0) * math.sqrt(self.chains))

    @property
    def ess(self) -> torch.Tensor:
        r"""The effective sample size :math:`(\sum w)^2 / \sum w^2` of the chains' weights."""
        return torch.exp(2 * torch.logsumexp(self.log_weights, 0)
                         - torch.logsumexp(2 * self.log_weights, 0))


def anneal(initial: torch.Tensor, log_f0: Callable, log_f1: Callable, transition: Callable,
           betas: torch.Tensor, *, progress: bool = False,
           log_path: Callable | None = None) -> AISEstimate:
    r"""Run AIS chains from the states ``initial`` (drawn from the normalized :math:`f_0`, one
    row per chain) along ``betas``; returns their :class:`AISEstimate`.

    ``log_f0(s)`` and ``log_f1(s)`` give one log density per chain (and batch entry);
    ``transition(s, beta)`` returns new states from a kernel that leaves
    :math:`f_\beta \propto f_0^{1-\beta} f_1^\beta` invariant.

    ``log_path(s, beta)``, if given, is :math:`\log f_\beta(s)` of another path from
    :math:`f_0` to :math:`f_1` (``transition`` then leaves that :math:`f_\beta` invariant), and
    the weights add up :math:`\log f_{\beta_t}(s_{t-1}) - \log f_{\beta_{t-1}}(s_{t-1})`
    (Neal 2001, eq. 9): e.g. a path geometric in a joint state whose auxiliary variables are
    summed out, as the RBM path of Salakhutdinov & Murray (2008).
    """
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.ndim != 1 or len(betas) < 2 or betas[0] != 0 or betas[-1] != 1 \
            or bool((betas[1:] <= betas[:-1]).any()):
        raise PyroDGMError("an AIS schedule must rise strictly from 0 to 1")
    state, log_w = initial, 0.0
    for previous, beta in tqdm(list(zip(betas[:-1].tolist(), betas[1:].tolist())),
                               desc="AIS", disable=not progress, leave=False):
        with torch.no_grad():
            if log_path is None:
                log_w = log_w + (beta - previous) * (log_f1(state) - log_f0(state))
            else:
                log_w = log_w + log_path(state, beta) - log_path(state, previous)
        state = transition(state, beta)
    return AISEstimate(torch.as_tensor(log_w).detach())
