r"""The partition function and test log-likelihood of Boltzmann machines by annealed importance
sampling with Gibbs kernels: Salakhutdinov & Murray (2008) for the RBM, Salakhutdinov & Hinton
(2009) for the DBM; the annealing loop is :func:`pyro_dgm.infer.ais.anneal`.

**Path.** The base model :math:`A` has no couplings and biases :math:`a_l` on every layer: by
default the model's ``base_visible_bias`` (the logits of the training pixels' means) on the
visible units and zero on the hidden ones; :func:`data_base_biases` sets the hidden ones to the
logits of the data's mean hidden activities as well, so that the chains start near the
activity of the data rather than at uniform noise, from which a DBM's chains can fall into a
region they never leave. The intermediate models are geometric averages of the *joint*
densities, :math:`f_\beta(x) = \exp((1-\beta) \sum_l a_l^\top x_l - \beta E(x))`. The odd
layers (the RBM's hidden units, the DBM's first hidden layer) sum out analytically, so the AIS
state is the even layers :math:`x_e` and

.. math::

    \log f_\beta(x_e) = \sum_{l\ \mathrm{even}} \bigl((1-\beta)\, a_l + \beta\, b_l\bigr)^\top x_l
        + \sum_{l\ \mathrm{odd}} \sum_j \operatorname{softplus}\bigl(\beta\,
          (b_l + W_l x_{l-1} + W_{l+1}^\top x_{l+1})_j + (1-\beta)\, a_{l,j}\bigr),

with :math:`\log Z_0 = \sum_l \sum_j \operatorname{softplus}(a_{l,j})`.
The kernel at :math:`\beta` is one Gibbs sweep of :math:`f_\beta` (odd layers, then even ones).
The schedule is Salakhutdinov & Murray's, piecewise linear with its steps in proportion
500 : 4,000 : 10,000 on :math:`[0, 0.5], [0.5, 0.9], [0.9, 1]`.

**Log-likelihoods.** For the RBM :math:`\log P(v) = -F(v) - \log Z`; for the DBM the mean-field
lower bound :math:`\log P(v) \ge \mathbb E_Q[-E(v, h)] + H(Q) - \log Z = -E(v, \mu) +
\sum_{l, j} H(\mathrm{Bernoulli}(\mu^l_j)) - \log Z` (the energy is linear in each layer and
:math:`Q` factorizes). With :math:`\log Z` estimated by AIS, whose estimate is a stochastic
lower bound, the reported log-likelihoods are stochastic *upper* bounds in :math:`\log Z`'s
error.

**A certified check.** AIS can only err low when its chains miss a mode of the model (a
well-trained DBM is the classic case), and then the log-likelihoods come out too high with a
small standard error. The test digits themselves give a floor that needs no sampling: for
distinct states, :math:`Z = \sum_v P^*(v) \ge \sum_n P^*(v_n) \ge \sum_n e^{\ell_n}` with
:math:`\ell_n \le \log P^*(v_n)` (exact for the RBM, the mean-field bound for the DBM); an AIS
estimate below it (:func:`log_partition_floor`) is provably wrong.

**From above.** Run backwards from samples of the model, the same path gives the reverse
estimate of bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015): chains started at
:math:`x \sim P` and annealed from :math:`\beta = 1` to 0 carry weights with
:math:`\mathbb E[w] = Z_0 / Z`, so :math:`\log Z_0 - \log \frac1C \sum_c w_c` is a stochastic
*upper* bound of :math:`\log Z` (:func:`dbm_log_partition_reverse`). It needs exact samples;
started from persistent training chains, which may miss modes as well, it is a diagnostic: the
two directions agree when the chains mix, and the gap between them brackets :math:`\log Z`
where they do not.

The ``exact_*`` functions enumerate the even layers, for models small enough (tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.ais import anneal

MAX_ENUMERATED_UNITS = 24


@dataclass(frozen=True)
class LogPartition:
    """An AIS estimate of :math:`\\log Z`, its delta-method standard error, the effective
    sample size of the chains' weights, and the run's size."""

    log_z: float
    stderr: float
    ess: float
    steps: int
    chains: int


def salakhutdinov_murray_schedule(steps: int) -> torch.Tensor:
    """``steps + 1`` inverse temperatures, linear on [0, 0.5], [0.5, 0.9] and [0.9, 1] with
    the steps split 500 : 4,000 : 10,000 (at least one step each)."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 3:
        raise PyroDGMError(f"AIS needs at least 3 annealing steps, got {steps!r}")
    first = max(1, round(steps * 500 / 14500))
    second = max(1, round(steps * 4000 / 14500))
    third = steps - first - second
    pieces = [torch.linspace(0.0, 0.5, first + 1), torch.linspace(0.5, 0.9, second + 1)[1:],
              torch.linspace(0.9, 1.0, third + 1)[1:]]
    return torch.cat(pieces)


def pixel_logits(x: torch.Tensor, smoothing: float = 0.05) -> torch.Tensor:
    r"""The base model's visible biases: the logits of the pixel means of ``x``, smoothed as
    :math:`(\sum_n x_{ni} + s) / (N + 2s)` with :math:`s` = ``smoothing`` x N so that no
    pixel has a mean of exactly 0 or 1."""
    n = x.shape[0]
    means = (x.sum(0) + smoothing * n) / (n + 2 * smoothing * n)
    return torch.logit(means)


def log_path(model, states, beta: float, base: list[torch.Tensor]) -> torch.Tensor:
    r""":math:`\log f_\beta(x_e)` of the module docstring, one value per chain; ``base`` holds
    the base model's biases :math:`a_l`, one tensor per layer."""
    log_f = 0.0
    for l in range(0, model.depth + 1, 2):
        log_f = log_f + states[l] @ ((1 - beta) * base[l] + beta * model.biases[l])
    for l in range(1, model.depth + 1, 2):
        inputs = model.layer_input(states, l, scale=beta) + (1 - beta) * base[l]
        log_f = log_f + F.softplus(inputs).sum(-1)
    return log_f


def default_base(model) -> list[torch.Tensor]:
    """The base model's biases: the model's ``base_visible_bias`` and zero hidden biases."""
    return [model.base_visible_bias, *(torch.zeros_like(b) for b in model.biases[1:])]


@torch.no_grad()
def data_base_biases(model, hidden_means: list[torch.Tensor],
                     clamp: float = 0.01) -> list[torch.Tensor]:
    r"""The base model's biases with the hidden ones from data: :math:`a_l = \operatorname{logit}`
    of the mean of ``hidden_means[l - 1]`` (one tensor (N, size_l) per hidden layer, e.g.
    :math:`p(h \mid v)` of an RBM or the mean-field means of a DBM), clamped to
    [``clamp``, 1 - ``clamp``]; the visible ones are the model's ``base_visible_bias``."""
    if len(hidden_means) != model.depth:
        raise PyroDGMError(f"the base needs the means of {model.depth} hidden layers, "
                           f"got {len(hidden_means)}")
    means = [m.mean(0).clamp(clamp, 1 - clamp) for m in hidden_means]
    return check_base(model, [model.base_visible_bias, *map(torch.logit, means)])


def check_base(model, base) -> list[torch.Tensor]:
    """``base`` (one bias vector per layer; None: :func:`default_base`) as float tensors on the
    model's device, or one sentence saying what is wrong."""
    if base is None:
        return default_base(model)
    device = model.biases[0].device
    base = [torch.as_tensor(a, dtype=torch.float32, device=device) for a in base]
    if [tuple(a.shape) for a in base] != [(size,) for size in model.sizes] \
            or not all(bool(torch.isfinite(a).all()) for a in base):
        raise PyroDGMError(f"the base model needs finite biases for layers of sizes {model.sizes}, "
                           f"got shapes {[tuple(a.shape) for a in base]}")
    return base


def log_base_partition(base: list[torch.Tensor]) -> float:
    r""":math:`\log Z_0 = \sum_l \sum_j \operatorname{softplus}(a_{l,j})`."""
    return sum(F.softplus(a).sum().item() for a in base)


@torch.no_grad()
def dbm_log_partition(model, steps: int = 10000, chains: int = 100, base=None,
                      progress: bool = False) -> LogPartition:
    """AIS estimate of the DBM's (or RBM's) :math:`\\log Z`: ``chains`` chains annealed over
    ``steps`` Gibbs sweeps from the base model with biases ``base`` (see the module docstring)."""
    if not isinstance(chains, int) or isinstance(chains, bool) or chains < 2:
        raise PyroDGMError(f"AIS needs at least 2 chains, got {chains!r}")
    base = check_base(model, base)
    start = [torch.bernoulli(torch.sigmoid(a).expand(chains, -1)) for a in base]
    estimate = anneal(
        start, lambda s: log_path(model, s, 0.0, base), lambda s: log_path(model, s, 1.0, base),
        lambda s, beta: model.gibbs_sweep(s, scale=beta, base=base),
        salakhutdinov_murray_schedule(steps), progress=progress,
        log_path=lambda s, beta: log_path(model, s, beta, base))
    return LogPartition(log_z=estimate.log_mean.item() + log_base_partition(base),
                        stderr=estimate.stderr.item(), ess=estimate.ess.item(),
                        steps=steps, chains=chains)


@torch.no_grad()
def dbm_log_partition_reverse(model, samples, steps: int = 10000, base=None,
                              progress: bool = False) -> LogPartition:
    """Reverse AIS estimate of the DBM's (or RBM's) :math:`\\log Z` from ``samples`` of the
    model (a list of layer states, one row per chain, e.g. persistent chains), annealed from
    :math:`\\beta = 1` to 0 along the path of :func:`dbm_log_partition` (see the module
    docstring): a stochastic upper bound when the samples are exact."""
    samples = list(samples)
    if len(samples) != len(model.sizes) or any(
            state.ndim != 2 or state.shape[1] != size for state, size in zip(samples, model.sizes)):
        raise PyroDGMError(f"reverse AIS starts from one state per layer of sizes {model.sizes}, "
                           f"got shapes {[tuple(state.shape) for state in samples]}")
    chains = samples[0].shape[0]
    if chains < 2:
        raise PyroDGMError(f"AIS needs at least 2 chains, got {chains!r}")
    base = check_base(model, base)
    alphas = 1 - salakhutdinov_murray_schedule(steps).flip(0)  # beta = 1 - alpha, from 1 to 0
    estimate = anneal(
        samples, lambda s: log_path(model, s, 1.0, base), lambda s: log_path(model, s, 0.0, base),
        lambda s, alpha: model.gibbs_sweep(s, scale=1 - alpha, base=base), alphas,
        progress=progress, log_path=lambda s, alpha: log_path(model, s, 1 - alpha, base))
    return LogPartition(log_z=log_base_partition(base) - estimate.log_mean.item(),
                        stderr=estimate.stderr.item(), ess=estimate.ess.item(),
                        steps=steps, chains=chains)


def rbm_log_partition(rbm, steps: int = 10000, chains: int = 100, base=None,
                      progress: bool = False) -> LogPartition:
    """AIS estimate of the RBM's :math:`\\log Z` (Salakhutdinov & Murray 2008): the DBM path
    with one hidden layer, the hidden units summed out."""
    return dbm_log_partition(rbm, steps, chains, base, progress)


@torch.no_grad()
def rbm_log_likelihood(rbm, x: torch.Tensor, log_z: float) -> torch.Tensor:
    """:math:`\\log P(v) = -F(v) - \\log Z` of each row of ``x``."""
    return -rbm.free_energy(x) - log_z


@torch.no_grad()
def dbm_log_likelihood(dbm, guide, x: torch.Tensor, log_z: float) -> torch.Tensor:
    r"""The mean-field lower bound :math:`-E(v, \mu) + H(Q) - \log Z` of each row of ``x``,
    with :math:`\mu` the fixed point of ``guide`` (a :class:`MeanFieldDBM`)."""
    mu = guide.mean_field(x)
    entropy = sum(torch.distributions.Bernoulli(probs=m.clamp(1e-7, 1 - 1e-7)).entropy().sum(-1)
                  for m in mu[1:])
    return -dbm.energy(mu) + entropy - log_z


@torch.no_grad()
def log_partition_floor(x: torch.Tensor, log_unnormalized: torch.Tensor) -> float:
    r"""A certified lower bound of :math:`\log Z` from binary states ``x`` (one per row) and
    lower bounds ``log_unnormalized`` of their :math:`\log P^*(v_n)`:
    :math:`\log \sum_n e^{\ell_n}` over the distinct rows (see the module docstring)."""
    rows, inverse = torch.unique(x, dim=0, return_inverse=True)
    one_per_row = torch.zeros(len(rows), dtype=torch.long, device=x.device)
    one_per_row.scatter_(0, inverse, torch.arange(len(x), device=x.device))
    return torch.logsumexp(log_unnormalized[one_per_row], 0).item()


# -- exact values, by enumeration (tiny models) -------------------------------------------
def all_binary(n: int) -> torch.Tensor:
    """The ``2**n`` binary vectors of length ``n``, one per row."""
    return ((torch.arange(2 ** n)[:, None] >> torch.arange(n)) & 1).float()


def _even_hidden_sizes(model) -> list[int]:
    return [model.sizes[l] for l in range(2, model.depth + 1, 2)]


def _check_enumerable(units: int) -> None:
    if units > MAX_ENUMERATED_UNITS:
        raise PyroDGMError(f"exact enumeration of {units} binary units is too large "
                           f"(at most {MAX_ENUMERATED_UNITS}); use AIS")


def _with_even_hidden(model, v: torch.Tensor, hidden: torch.Tensor) -> list[torch.Tensor]:
    """Layer states: each row of ``v`` with each row of ``hidden`` (the even hidden layers,
    concatenated), odd layers zero; shape ``(len(v) * len(hidden), size_l)``."""
    n, m = v.shape[0], hidden.shape[0]
    states = [v.repeat_interleave(m, 0)]
    pieces = iter(hidden.split(_even_hidden_sizes(model), -1)) if model.depth > 1 else iter(())
    for l in range(1, model.depth + 1):
        states.append(next(pieces).repeat(n, 1) if l % 2 == 0
                      else v.new_zeros(n * m, model.sizes[l]))
    return states


@torch.no_grad()
def exact_log_marginal(model, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\log P^*(v) = \log \sum_h e^{-E(v,h)}` of each row of ``x``, summing the odd layers
    analytically and enumerating the even hidden layers."""
    units = sum(_even_hidden_sizes(model))
    _check_enumerable(units)
    hidden = all_binary(units).to(x)
    log_f = log_path(model, _with_even_hidden(model, x, hidden), 1.0, default_base(model))
    return torch.logsumexp(log_f.view(x.shape[0], -1), -1)


@torch.no_grad()
def exact_log_partition(model) -> float:
    """:math:`\\log Z` by enumerating the visible and even hidden layers."""
    _check_enumerable(model.sizes[0] + sum(_even_hidden_sizes(model)))
    visible = all_binary(model.sizes[0]).to(model.biases[0])
    return torch.logsumexp(exact_log_marginal(model, visible), 0).item()
