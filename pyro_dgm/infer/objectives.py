"""The registry of objectives: a name -> a Pyro loss object that the Trainer drives through SVI.

Every objective is something with Pyro's ELBO interface, ``loss(model, guide, *args)`` and
``loss_and_grads(model, guide, *args)``: that is the one interface the Trainer uses, and it
also covers objectives with separate model and guide updates (reweighted wake-sleep, for
example, sets the gradients of both parameter sets inside ``loss_and_grads``). An objective
may also declare a ``check`` that the Trainer runs once on the first batch's guide trace, to
refuse a model/guide combination it cannot train.

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
from typing import Any, Callable

import torch

import pyro.infer
from pyro.poutine import Trace
from pyro.poutine.util import site_is_subsample

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.registry import Registry


@dataclass(frozen=True)
class Objective:
    """A registered objective: how to build its Pyro loss, and what it can train."""

    name: str
    description: str
    build: Callable[..., Any]
    options: dict = field(default_factory=dict)
    check: Callable[[Trace], None] | None = None


OBJECTIVES: Registry[Objective] = Registry("objective")


def register_objective(objective: Objective) -> Objective:
    """Add ``objective`` to the registry under its name."""
    return OBJECTIVES.register(objective.name, objective)


def get_objective(name: str) -> Objective:
    """The registered objective called ``name``; an unknown name lists the valid ones."""
    return OBJECTIVES[name]


def build_objective(name: str, **options) -> Any:
    """Build the Pyro loss for objective ``name`` with ``options`` (e.g. ``particles=5``).

    Unknown options raise a :class:`PyroDGMError` listing the ones the objective takes.
    """
    objective = get_objective(name)
    unknown = set(options) - set(objective.options)
    if unknown:
        raise PyroDGMError(
            f"objective {name!r} does not take option(s) {sorted(unknown)}; "
            f"it takes {sorted(objective.options) or 'none'}"
        )
    return objective.build(**{**objective.options, **options})


class DifferentiableLossELBO(pyro.infer.ELBO):
    """An objective defined by its ``differentiable_loss``: ``loss`` evaluates it without a graph,
    ``loss_and_grads`` back-propagates it (for objectives whose every term is differentiable)."""

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()

    def _get_trace(self, model, guide, args, kwargs):  # ELBO's abstract hook, unused here
        raise NotImplementedError


def check_objective_options(name: str, options: dict) -> dict:
    """The options of objective ``name`` with its defaults filled in; an unknown option, or a
    value of the wrong type (a whole number where the default is one, a finite number where it
    is a float), is refused in one sentence."""
    objective = get_objective(name)
    unknown = set(options) - set(objective.options)
    if unknown:
        raise PyroDGMError(f"objective {name!r} does not take option(s) {sorted(unknown)}; "
                           f"it takes {sorted(objective.options) or 'none'}")
    for key, value in options.items():
        default = objective.options[key]
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        whole = isinstance(default, int)
        valid = (not isinstance(value, bool) and isinstance(value, int if whole else (int, float))
                 and math.isfinite(value) and (value >= 1 if whole else True))
        if not valid:
            kind = "a positive whole number" if whole else "a finite number"
            raise PyroDGMError(f"option {key!r} of objective {name!r} takes {kind}, got {value!r}")
    return {**objective.options, **options}


def check_particles(particles: int) -> int:
    """``particles`` if it is a positive whole number; else one sentence saying so."""
    if not isinstance(particles, int) or isinstance(particles, bool) or particles < 1:
        raise PyroDGMError(f"particles must be a positive whole number, got {particles!r}")
    return particles


def _particle_options(particles: int) -> dict:
    check_particles(particles)
    return {"num_particles": particles, "vectorize_particles": particles > 1}


def require_reparameterized_guide(trace: Trace, objective: str) -> None:
    """Refuse guides with non-reparameterized sites for objectives whose gradient ignores them.

    ``RenyiELBO(alpha=0)`` weights the score-function term by ``alpha / (1 - alpha) = 0``, so
    a discrete or otherwise non-reparameterized guide site would get a zero gradient and the
    guide would never move.
    """
    for name, site in trace.nodes.items():
        if (site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
                and not site["fn"].has_rsample):
            fn = site["fn"]
            while hasattr(fn, "base_dist"):  # Independent, masked, expanded wrappers
                fn = fn.base_dist
            raise PyroDGMError(
                f"the {objective!r} objective needs reparameterized guide sites, but site "
                f"{name!r} ({type(fn).__name__}) is not: its gradient would be zero; "
                f"use 'tracegraph' (or a wake-sleep objective) for such guides"
            )


register_objective(Objective(
    "elbo", "Trace_ELBO: the Monte Carlo evidence lower bound",
    lambda particles: pyro.infer.Trace_ELBO(**_particle_options(particles)),
    {"particles": 1},
))
register_objective(Objective(
    "meanfield", "TraceMeanField_ELBO: ELBO with analytic KL terms where registered",
    lambda particles: pyro.infer.TraceMeanField_ELBO(**_particle_options(particles)),
    {"particles": 1},
))
register_objective(Objective(
    "tracegraph", "TraceGraph_ELBO: Rao-Blackwellized score-function gradients for discrete sites",
    lambda particles: pyro.infer.TraceGraph_ELBO(**_particle_options(particles)),
    {"particles": 1},
))
register_objective(Objective(
    "iwae", "RenyiELBO(alpha=0): the importance-weighted bound with k particles (Burda et al.)",
    lambda particles: pyro.infer.RenyiELBO(alpha=0.0, **_particle_options(particles)),
    {"particles": 5},
    check=lambda trace: require_reparameterized_guide(trace, "iwae"),
))
