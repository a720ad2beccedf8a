r"""The ELBO of a step-indexed scene model with the number of objects summed out exactly.

In AIR (Eslami et al. 2016; seed ``004``, "inference: counting and locating") the count is
coded in unary by presence sites ``z_pres_0, z_pres_1, ...`` that stop for good at the first
absence, so a scene of ``N`` steps has only ``N + 1`` presence patterns, one per count
:math:`n`. The guide proposes step ``t`` after steps ``< t``; write :math:`\rho_t` for its
presence probability given that every earlier step was present and :math:`z_t` for the
continuous latents (``z_where_t``, ``z_what_t``). The guide's probability of the count is

.. math::

    Q_n = \prod_{t<n} \rho_t \, (1 - \rho_n) \qquad (\rho_N := 0),

and, since the first :math:`n` steps of a scene with :math:`n` objects are drawn exactly as
in the scene where every step is present, the ELBO is

.. math::

    \mathcal L(x) = \mathbb E_{z_{0:N} \sim q(\cdot \mid x, \text{all present})}
    \sum_{n=0}^{N} Q_n \Big[\log p(x, z_{<n}, n) - \log q(z_{<n} \mid x) - \log Q_n\Big].

Every term is differentiable: :math:`Q_n` exactly, the continuous latents by
reparameterization. No score function is needed for the presence sites, so no baselines
either: the sum over counts is the Rao-Blackwellization of ``TraceGraph_ELBO``'s estimator
carried to the end. It costs one guide run with every step present and one model run
vectorized over the ``N + 1`` patterns (a leading dimension left of the plates), so it is
about as fast as one ``TraceGraph_ELBO`` step.

Conventions it relies on (AIR's): presence sites are Bernoulli and named ``z_pres_t``; every
other site of step ``t`` ends in ``_t``; the programs broadcast over a leading dimension, and
mask the latents of absent steps out of their densities.
"""

from __future__ import annotations

import re

import torch

from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.messenger import Messenger

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.estimators import sample_sites
from pyro_dgm.infer.objectives import STATELESS, Objective, ObjectiveLoss, register_objective
from pyro_dgm.infer.stepwise import STEP

PRESENCE = re.compile(r"^z_pres_(\d+)$")


class PresencePattern(Messenger):
    """Fix every presence site ``z_pres_t`` to ``pattern(t, batch_shape)`` as an observation."""

    def __init__(self, pattern):
        super().__init__()
        self.pattern = pattern

    def _pyro_sample(self, msg):
        match = PRESENCE.match(msg["name"])
        if match:
            fn = msg["fn"]
            msg["value"] = self.pattern(int(match.group(1)), fn.batch_shape).to(fn.mean.device)
            msg["is_observed"] = True


def all_present(t: int, batch_shape) -> torch.Tensor:
    return torch.ones(batch_shape)


def count_patterns(steps: int):
    """``pattern(t, batch_shape)``: presence of step ``t`` under every count ``n = 0..steps``,
    shape ``(steps + 1, B)``: the counts on a dimension left of the (one) data plate."""

    def pattern(t: int, batch_shape) -> torch.Tensor:
        present = (torch.arange(steps + 1) > t).float()
        return present.unsqueeze(-1).expand(steps + 1, batch_shape[-1])

    return pattern


class CountEnum_ELBO(ObjectiveLoss):
    """``-ELBO`` with the count of a unary-coded scene summed out (module docstring); every
    term is differentiable, so the loss is its own surrogate."""

    def elbo_per_example(self, *args, **kwargs) -> torch.Tensor:
        """The ELBO of each example (its batch shape), differentiable in every parameter."""
        model, guide = self.model, self.guide
        guide_trace = poutine.trace(PresencePattern(all_present)(guide)).get_trace(*args, **kwargs)
        steps = sum(1 for name in guide_trace.nodes if PRESENCE.match(name))
        if steps == 0:
            raise PyroDGMError("the 'count-enum' objective needs presence sites named "
                               "'z_pres_0', 'z_pres_1', ...; this guide has none")
        model_trace = poutine.trace(
            poutine.replay(PresencePattern(count_patterns(steps))(model), trace=guide_trace)
        ).get_trace(*args, **kwargs)
        model_trace.compute_log_prob()
        guide_trace.compute_log_prob()

        log_joint = 0.0  # (N + 1, B): log p(x, z_<n, n) under each count n
        for site in sample_sites(model_trace):
            log_joint = log_joint + site["log_prob"]

        counts = torch.arange(steps + 1, device=log_joint.device)
        log_q_count, log_q_latents = 0.0, 0.0  # (N + 1, B): log Q_n and log q(z_<n | x)
        for site in sample_sites(guide_trace):
            name = site["name"]
            presence = PRESENCE.match(name)
            step = STEP.search(name)
            if presence:
                t = int(presence.group(1))
                log_rho = site["log_prob"]  # the site is observed at 1
                log_stop = scale_and_mask(site["fn"].log_prob(torch.zeros_like(site["value"])),
                                          site["scale"], site["mask"])
                on = (counts > t).float().unsqueeze(-1)
                at_stop = (counts == t).float().unsqueeze(-1)
                log_q_count = log_q_count + on * log_rho + at_stop * log_stop
            elif step:
                used = (counts > int(step.group(1))).float().unsqueeze(-1)
                log_q_latents = log_q_latents + used * site["log_prob"]
            else:
                log_q_latents = log_q_latents + site["log_prob"]
        count_probs = log_q_count.exp()
        return (count_probs * (log_joint - log_q_latents - log_q_count)).sum(0)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return -self.elbo_per_example(*args, **kwargs).sum()


register_objective(Objective(
    "count-enum", "ELBO with the number of objects summed out exactly (AIR-style scenes)",
    lambda model, guide: CountEnum_ELBO(model, guide), {}, **STATELESS,
))
