"""The registry of objectives: a name -> a torch ``nn.Module`` loss over a model and a guide.

``build_objective(name, model, guide, **options)`` returns an :class:`ObjectiveLoss`, a
``torch.nn.Module`` that holds the model and the guide (as submodules when they are modules)
and any networks the objective owns (NVIL's baselines, for example). Calling it on a batch,
``loss(*args)``, gives one scalar tensor:

- its **value** is the objective's reported loss summed over the batch (for the ELBO
  objectives, the negative ELBO in nats);
- its **gradient**, after ``.backward()``, is the objective's update direction for every
  parameter. Objectives with separate updates for separate parameter sets (reweighted
  wake-sleep, sleep, NVIL's baselines) return a surrogate,
  ``value.detach() + surrogate - surrogate.detach()``, whose gradient with respect to each
  parameter set is that set's update.

So the Trainer drives every objective with one torch optimizer step, and anything written for
``torch.nn.Module`` losses works with them. An objective may also declare a ``check`` that the
Trainer runs once on the first batch's guide trace, to refuse a model/guide combination it
cannot train.

Each objective also says whether it trains **data-parallel** (``data_parallel``: its loss and
every gradient are sums over the examples of the batch and it keeps no state outside its
parameters, so shards summed over processes give one process's step) and whether its forward
pass may run in **bfloat16** autocast (``bf16``); each is ``True`` or the reason it may not, and
the Trainer refuses the rest in one sentence naming the objective (:func:`refuse_unless`).
An objective that does not declare them is refused both: a new objective with state of its own
(a discriminator with its own optimizer, persistent chains) is not silently wrong.

=============  =============================================================================
name           objective
=============  =============================================================================
``elbo``       ``Trace_ELBO``: Monte Carlo ELBO, reparameterized or score-function gradients
``meanfield``  ``TraceMeanField_ELBO``: analytic KL terms where registered (e.g. Kumaraswamy || Beta)
``tracegraph`` ``TraceGraph_ELBO``: score-function gradients with Rao-Blackwellization and baselines
``iwae``       ``RenyiELBO(alpha=0)``: the importance-weighted bound of Burda et al. (2016), k particles
=============  =============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

import pyro
import pyro.infer
from pyro.infer.enum import get_importance_trace
from pyro.infer.util import get_dependent_plate_dims, torch_sum
from pyro.poutine import Trace

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.estimators import plate_nesting, sample_sites
from pyro_dgm.registry import Registry, check_settings


class ObjectiveLoss(torch.nn.Module):
    """An objective as a torch loss: ``forward(*args)`` is a scalar whose value is the loss summed
    over the batch and whose gradient is the objective's update for every parameter.

    ``model`` and ``guide`` are Pyro programs: ``nn.Module`` s become submodules (so
    ``parameters()`` and ``state_dict()`` include them), plain functions are kept as they are
    and keep their parameters in Pyro's param store.
    """

    def __init__(self, model: Callable | None, guide: Callable | None):
        super().__init__()
        self.model, self.guide = model, guide
        # extra numbers of the last ``forward``, each summed over its batch (e.g. each
        # player's loss of an adversarial objective): the Trainer averages them per example
        # into each epoch's history entry, beside ``loss``
        self.step_metrics: dict[str, float] = {}

    def prepare(self, args: tuple, guide_trace: Trace, model_trace: Trace) -> None:
        """One-time set-up from the first batch's program arguments ``args`` and the traces of
        a first run of the programs on them (the Trainer calls it before the first step, with
        the random state restored afterwards): fix the plate nesting, build networks the
        objective owns."""

    def forward(self, *args) -> torch.Tensor:
        raise NotImplementedError

    def value(self, *args) -> float:
        """The loss summed over the batch ``args`` (the graph is built, as some of Pyro's
        losses refuse to run without one, and dropped at once)."""
        return self(*args).item()

    def own_state_dict(self) -> dict:
        """``state_dict()`` without the model's and the guide's entries: what the objective owns."""
        return {name: value for name, value in self.state_dict().items()
                if not name.startswith(("model.", "guide."))}


def with_surrogate_gradient(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """A tensor equal to ``value`` whose gradient is ``surrogate`` 's."""
    return value.detach() + (surrogate - surrogate.detach())


@dataclass(frozen=True)
class Objective:
    """A registered objective: how to build its loss module, and what it can train.

    ``build(model, guide, **options)`` returns an :class:`ObjectiveLoss`. ``data_parallel``
    and ``bf16`` are ``True`` where the objective trains correctly data-parallel / in bfloat16
    autocast, else the reason it does not (a clause, completing "objective NAME cannot ...
    because ...").
    """

    name: str
    description: str
    build: Callable[..., ObjectiveLoss]
    options: dict = field(default_factory=dict)
    check: Callable[[Trace], None] | None = None
    data_parallel: bool | str = "it does not declare that its loss and gradients sum over examples"
    bf16: bool | str = "it does not declare that it tolerates bfloat16 rounding"


# why score-function objectives stay in fp32: their learning signal is a difference of large
# log-densities, and bfloat16 keeps 8 bits of mantissa (about 0.4 % of a 100-nat ELBO is 0.4 nats)
SCORE_FUNCTION_BF16 = ("its score-function learning signal, a difference of large "
                       "log-densities, would be swamped by bfloat16 rounding")

# what an ordinary objective declares: a sum over examples, no state outside its parameters
STATELESS = {"data_parallel": True, "bf16": True}


OBJECTIVES: Registry[Objective] = Registry("objective")


def register_objective(objective: Objective) -> Objective:
    """Add ``objective`` to the registry under its name."""
    return OBJECTIVES.register(objective.name, objective)


def get_objective(name: str) -> Objective:
    """The registered objective called ``name``; an unknown name lists the valid ones."""
    return OBJECTIVES[name]


def refuse_unless(name: str, what: str) -> None:
    """Refuse, in one sentence naming it, objective ``name`` where it does not allow ``what``:
    ``"data_parallel"`` (training under torchrun) or ``"bf16"`` (``--precision bf16``)."""
    allowed = getattr(get_objective(name), what)
    if allowed is not True:
        doing = {"data_parallel": "train data-parallel (under torchrun)",
                 "bf16": "train in bfloat16 (--precision bf16)"}[what]
        instead = {"data_parallel": "train it in one process",
                   "bf16": "use --precision fp32"}[what]
        raise PyroDGMError(f"objective {name!r} cannot {doing} because {allowed}; {instead}")


def build_objective(name: str, model: Callable | None, guide: Callable | None,
                    **options) -> ObjectiveLoss:
    """The loss module of objective ``name`` over ``model`` and ``guide``, with ``options``
    (e.g. ``particles=5``).

    Unknown options, and bad option values, raise a :class:`PyroDGMError`; ``model`` and
    ``guide`` may be ``None`` to check options only.
    """
    return get_objective(name).build(model, guide, **check_objective_options(name, options))


def check_objective_options(name: str, options: dict) -> dict:
    """The options of objective ``name`` with its defaults filled in; an unknown option, or a
    value of the wrong type (a whole number where the default is one, a finite number where it
    is a float), is refused in one sentence."""
    return check_settings(f"objective {name!r}", "option", get_objective(name).options, options,
                          positive=False)


def check_particles(particles: int) -> int:
    """``particles`` if it is a positive whole number; else one sentence saying so."""
    if not isinstance(particles, int) or isinstance(particles, bool) or particles < 1:
        raise PyroDGMError(f"particles must be a positive whole number, got {particles!r}")
    return particles


def particle_options(particles: int) -> dict:
    """Pyro ELBO keyword arguments for ``particles`` vectorized particles."""
    check_particles(particles)
    return {"num_particles": particles, "vectorize_particles": particles > 1}


class PyroELBOLoss(ObjectiveLoss):
    r"""The negative ELBO of one of Pyro's ELBO classes as a module (Pyro's ``ELBOModule``).

    Value: :math:`-\mathrm{ELBO}` of the batch; gradient: the ELBO class's own surrogate
    (reparameterized terms, score-function terms, baselines), the gradient its
    ``loss_and_grads`` would set.
    """

    def __init__(self, model, guide, elbo: pyro.infer.ELBO):
        super().__init__(model, guide)
        self.elbo = elbo

    @property
    def num_particles(self) -> int:
        return self.elbo.num_particles

    def prepare(self, args: tuple, guide_trace: Trace, model_trace: Trace) -> None:
        """Fix ``max_plate_nesting`` of an ELBO that would otherwise guess it on its first call
        (drawing random numbers); as in ``pyro.infer.ELBO.__init__``, the count includes a
        vectorized particle plate."""
        if self.elbo.max_plate_nesting == float("inf"):
            particle_plate = int(self.elbo.vectorize_particles)
            self.elbo.max_plate_nesting = plate_nesting(guide_trace, model_trace) + particle_plate

    def forward(self, *args) -> torch.Tensor:
        return self.elbo.differentiable_loss(self.model, self.guide, *args)


class TraceGraphLoss(PyroELBOLoss):
    """``TraceGraph_ELBO`` (or a subclass): value ``-ELBO``, gradient its Rao-Blackwellized
    surrogate with baselines (Schulman et al. 2015; Mnih & Gregor 2014)."""

    def forward(self, *args) -> torch.Tensor:
        elbo, surrogate_loss = self.elbo._loss_and_surrogate_loss(self.model, self.guide, args, {})
        return with_surrogate_gradient(-torch.as_tensor(elbo), surrogate_loss)


class IWAELoss(PyroELBOLoss):
    r"""The importance-weighted bound of Burda et al. (2016), as ``RenyiELBO(alpha=0)`` computes it.

    With :math:`k` particles :math:`z_s \sim q(z \mid x_n)` and
    :math:`\log w_{n,s} = \log p(x_n, z_s) - \log q(z_s \mid x_n)` (summed over every plate but
    the data plate), the loss is :math:`-\sum_n \log \frac1k \sum_s w_{n,s}`, differentiated
    through the reparameterized draws: its gradient is
    :math:`-\sum_n \sum_s \tilde w_{n,s} \nabla \log w_{n,s}` with normalized weights
    :math:`\tilde w`, the gradient ``RenyiELBO(alpha=0).loss_and_grads`` sets (where the
    score-function term has weight :math:`\alpha / (1 - \alpha) = 0`).
    """

    def forward(self, *args) -> torch.Tensor:
        elbo, model, guide = self.elbo, self.model, self.guide
        if elbo.max_plate_nesting == float("inf"):
            elbo._guess_max_plate_nesting(model, guide, args, {})
        if elbo.vectorize_particles:  # as RenyiELBO: one trace, particles on an outer plate
            particles = pyro.plate("num_particles_vectorized", elbo.num_particles,
                                   dim=-elbo.max_plate_nesting)
            log_weights = self._log_weight(particles(model), particles(guide), args)
        else:
            log_weights = self._log_weight(model, guide, args).unsqueeze(0)
        log_mean_weight = torch.logsumexp(log_weights, 0) - math.log(elbo.num_particles)
        return -log_mean_weight.sum()

    def _log_weight(self, model, guide, args) -> torch.Tensor:
        model_trace, guide_trace = get_importance_trace("flat", self.elbo.max_plate_nesting,
                                                        model, guide, args, {})
        sum_dims = get_dependent_plate_dims(model_trace.nodes.values())
        log_weight = 0.0
        for site in sample_sites(model_trace):
            log_weight = log_weight + torch_sum(site["log_prob"], sum_dims)
        for site in sample_sites(guide_trace):
            log_weight = log_weight - torch_sum(site["log_prob"], sum_dims)
        return torch.as_tensor(log_weight)


def elbo_loss(model, guide, elbo: pyro.infer.ELBO) -> PyroELBOLoss:
    """One of Pyro's ELBO objects over ``model`` and ``guide`` as a loss module (the route of
    Pyro's ``elbo(model, guide)``, for every ELBO class this package trains with)."""
    if isinstance(elbo, pyro.infer.TraceGraph_ELBO):
        return TraceGraphLoss(model, guide, elbo)
    if isinstance(elbo, pyro.infer.RenyiELBO):
        if elbo.alpha != 0:
            raise PyroDGMError(f"only RenyiELBO(alpha=0), the IWAE bound, is supported as a "
                               f"loss module, got alpha={elbo.alpha}")
        return IWAELoss(model, guide, elbo)
    if not hasattr(elbo, "differentiable_loss"):
        raise PyroDGMError(f"{type(elbo).__name__} has no differentiable loss to train with")
    return PyroELBOLoss(model, guide, elbo)


def gradient_estimate(loss: ObjectiveLoss, args: tuple, params) -> torch.Tensor:
    """One draw of ``loss``'s gradient with respect to ``params``, flattened in their order
    (a parameter with no gradient counts as zero); every gradient is cleared afterwards."""
    params = list(params)
    for p in params:
        p.grad = None
    loss(*args).backward()
    estimate = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in params])
    loss.zero_grad(set_to_none=True)
    for p in params:
        p.grad = None
    return estimate


def require_reparameterized_guide(trace: Trace, objective: str) -> None:
    """Refuse guides with non-reparameterized sites for objectives whose gradient ignores them.

    ``RenyiELBO(alpha=0)`` weights the score-function term by ``alpha / (1 - alpha) = 0``, so
    a discrete or otherwise non-reparameterized guide site would get a zero gradient and the
    guide would never move.
    """
    for site in sample_sites(trace):
        if not site["is_observed"] and not site["fn"].has_rsample:
            fn = site["fn"]
            while hasattr(fn, "base_dist"):  # Independent, masked, expanded wrappers
                fn = fn.base_dist
            raise PyroDGMError(
                f"the {objective!r} objective needs reparameterized guide sites, but site "
                f"{site['name']!r} ({type(fn).__name__}) is not: its gradient would be zero; "
                f"use 'tracegraph' (or a wake-sleep objective) for such guides"
            )


register_objective(Objective(
    "elbo", "Trace_ELBO: the Monte Carlo evidence lower bound",
    lambda model, guide, particles: elbo_loss(
        model, guide, pyro.infer.Trace_ELBO(**particle_options(particles))),
    {"particles": 1}, **STATELESS,
))
register_objective(Objective(
    "meanfield", "TraceMeanField_ELBO: ELBO with analytic KL terms where registered",
    lambda model, guide, particles: elbo_loss(
        model, guide, pyro.infer.TraceMeanField_ELBO(**particle_options(particles))),
    {"particles": 1}, **STATELESS,
))
register_objective(Objective(
    "tracegraph", "TraceGraph_ELBO: Rao-Blackwellized score-function gradients for discrete sites",
    lambda model, guide, particles: elbo_loss(
        model, guide, pyro.infer.TraceGraph_ELBO(**particle_options(particles))),
    {"particles": 1}, data_parallel=True, bf16=SCORE_FUNCTION_BF16,
))
register_objective(Objective(
    "iwae", "RenyiELBO(alpha=0): the importance-weighted bound with k particles (Burda et al.)",
    lambda model, guide, particles: elbo_loss(
        model, guide, pyro.infer.RenyiELBO(alpha=0.0, **particle_options(particles))),
    {"particles": 5},
    check=lambda trace: require_reparameterized_guide(trace, "iwae"), **STATELESS,
))
