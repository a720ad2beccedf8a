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
from pyro.infer import CSIS, ELBO
from pyro.poutine import Trace

from pyro_dgm.infer.objectives import (
    DifferentiableLossELBO,
    Objective,
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


class Sleep(DifferentiableLossELBO):
    r"""The vectorized sleep objective: ``loss = -sum_b log q(x_b | y_b)``, ``(x, y) ~ p``.

    ``loss(model, guide, *args)`` and ``loss_and_grads(model, guide, *args)`` have Pyro's ELBO
    interface, so :class:`pyro_dgm.infer.Trainer` drives it through ``SVI``; only the guide's
    parameters get gradients (the model's are left alone: this is the sleep phase only).
    """

    def __init__(self, particles: int = 1):
        super().__init__(num_particles=check_particles(particles))
        self.particles = particles

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        loss = 0.0
        for _ in range(self.particles):
            model_trace = sample_from_joint(model, *args, **kwargs)
            loss = loss - guide_log_prob_on(model_trace, guide, *args, **kwargs)
        return loss / self.particles


class PyroCSIS(ELBO):
    """Pyro's :class:`pyro.infer.CSIS` behind the ELBO interface: the batch's ``B`` data sets are
    simulated and scored one trace at a time, ``CSIS.loss_and_grads`` per data set (its loss and
    gradients are summed over the batch, as :class:`Sleep`'s are)."""

    def __init__(self, particles: int = 1):
        super().__init__(num_particles=check_particles(particles))
        self.particles = particles

    def _run(self, model, guide, args, kwargs, grads: bool) -> float:
        csis = CSIS(model, guide, optim=None, training_batch_size=self.particles)
        n = args[0].shape[0]
        loss = 0.0
        for b in range(n):  # one data set per trace: CSIS's own loop
            one = tuple(a[b:b + 1] if isinstance(a, torch.Tensor) else a for a in args)
            loss += csis.loss_and_grads(grads, None, *one, **kwargs)
        return loss

    def _get_trace(self, model, guide, args, kwargs):  # ELBO's abstract hook, unused here
        raise NotImplementedError

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return self._run(model, guide, args, kwargs, grads=False)

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        return self._run(model, guide, args, kwargs, grads=True)


register_objective(Objective(
    "sleep", "sleep phase / inference compilation: -log q(latents | data) on a vectorized batch "
             "of data sets simulated from the model",
    lambda particles: Sleep(particles), {"particles": 1},
))
register_objective(Objective(
    "csis", "Pyro's CSIS: the same loss, one simulated data set per trace in a Python loop",
    lambda particles: PyroCSIS(particles), {"particles": 1},
))
