r"""Inference compilation: the sleep objective, vectorized, and Pyro's ``CSIS`` loop.

Seed ``004``, "Learning importance sampling proposals" (Le, Baydin & Wood 2017, "Inference
compilation and universal probabilistic programming"): a proposal :math:`q(x \mid
\varphi(\eta, y))` is trained before any data are seen by minimizing

.. math::

    \mathcal J(\eta) = \mathbb E_{p(y)}\big[\mathrm{KL}(p(x \mid y) \,\|\, q(x \mid \varphi(\eta, y)))\big]
      = \mathbb E_{p(x, y)}\big[-\log q(x \mid \varphi(\eta, y))\big] + \text{const},

whose gradient :math:`\mathbb E_{p(x,y)}[-\nabla_\eta \log q(x \mid \varphi(\eta, y))]` is
estimated with samples of the joint: the *sleep* step of wake-sleep.

=========  =====================================================================================
name       objective
=========  =====================================================================================
``sleep``  one trace of the model, unconditioned, simulates a whole batch of data sets (one per
           element of ``plate("data")``); the loss is ``-sum_b log q(x_b | y_b)``
``csis``   Pyro's :class:`pyro.infer.CSIS`, one simulated data set per trace, in its Python loop
=========  =====================================================================================

Both take the batch's program arguments (e.g. ``(t, y, mask)``) only for the *design* (inputs,
number of points): the observed values are replaced by fresh draws from the model, so neither
needs observed data. The model and guide take ``observations={"y": ...}``, the keyword Pyro's
``CSIS`` uses. The loss is summed over the batch, as the ELBO objectives' are.
"""

from __future__ import annotations

import torch

import pyro.poutine as poutine
from pyro.infer import CSIS
from pyro.poutine import Trace

from pyro_dgm.infer.objectives import (
    STATELESS,
    Objective,
    ObjectiveLoss,
    check_particles,
    register_objective,
)


def observations_of(model_trace: Trace) -> dict:
    """The values of the sites that the model observes, as simulated by an unconditioned run."""
    return {name: site["value"] for name, site in model_trace.nodes.items()
            if site["type"] == "sample" and "was_observed" in site["infer"]}


def sample_from_joint(model, *args, **kwargs) -> Trace:
    """One trace of ``model`` with its observed sites sampled too (marked ``was_observed``)."""
    with torch.no_grad():
        return poutine.trace(poutine.uncondition(model)).get_trace(*args, **kwargs)


def guide_log_prob_on(model_trace: Trace, guide, *args, **kwargs) -> torch.Tensor:
    """``sum_b log q(x_b | y_b)`` for the latents ``x`` and data ``y`` of ``model_trace``."""
    observations = observations_of(model_trace)
    guide_trace = poutine.trace(poutine.replay(guide, trace=model_trace)).get_trace(
        *args, observations=observations, **kwargs)
    return guide_trace.log_prob_sum(lambda name, site: not site["is_observed"])


class Sleep(ObjectiveLoss):
    r"""The vectorized sleep objective: ``loss = -sum_b log q(x_b | y_b)``, ``(x, y) ~ p``.

    ``forward(*args)`` is that loss, averaged over ``particles`` simulated batches; only the
    guide's parameters get gradients (the model's are left alone: this is the sleep phase only).
    """

    def __init__(self, model, guide, particles: int = 1):
        super().__init__(model, guide)
        self.particles = check_particles(particles)

    def forward(self, *args) -> torch.Tensor:
        loss = 0.0
        for _ in range(self.particles):
            model_trace = sample_from_joint(self.model, *args)
            loss = loss - guide_log_prob_on(model_trace, self.guide, *args)
        return loss / self.particles


class PyroCSIS(ObjectiveLoss):
    """Pyro's :class:`pyro.infer.CSIS` as a loss module: the batch's ``B`` data sets are simulated
    and scored one trace at a time by ``CSIS``'s own sampler and particle loss, in its Python
    loop (summed over the batch, as :class:`Sleep`'s loss is)."""

    def __init__(self, model, guide, particles: int = 1):
        super().__init__(model, guide)
        self.particles = check_particles(particles)

    def forward(self, *args) -> torch.Tensor:
        csis = CSIS(self.model, self.guide, optim=None, training_batch_size=self.particles)
        loss = 0.0
        for b in range(args[0].shape[0]):  # one data set per trace: CSIS's own loop
            one = tuple(a[b:b + 1] if isinstance(a, torch.Tensor) else a for a in args)
            for _ in range(self.particles):
                with torch.no_grad():  # CSIS trains the guide only
                    model_trace = csis._sample_from_joint(*one)
                guide_trace = csis._get_matched_trace(model_trace, *one)
                loss = loss + csis._differentiable_loss_particle(guide_trace) / self.particles
        return loss


register_objective(Objective(
    "sleep", "sleep phase / inference compilation: -log q(latents | data) on a vectorized batch "
             "of data sets simulated from the model",
    lambda model, guide, particles: Sleep(model, guide, particles), {"particles": 1},
    **STATELESS,
))
register_objective(Objective(
    "csis", "Pyro's CSIS: the same loss, one simulated data set per trace in a Python loop",
    lambda model, guide, particles: PyroCSIS(model, guide, particles), {"particles": 1},
    **STATELESS,
))
