r"""Objectives with exact enumeration of discrete sites, and Kingma et al.'s semi-supervised bound.

=============  =============================================================================
name           objective
=============  =============================================================================
``enum-elbo``  ``TraceEnum_ELBO``: discrete sites marked ``infer={"enumerate": "parallel"}``
               are summed out exactly (e.g. the DP-VAE's mixture component, M2's label)
``ss-elbo``    ``TraceEnum_ELBO`` plus :math:`\alpha \sum_{\text{labelled}} \log q(y_n|x_n)`,
               Kingma et al. (2014) eq. 9, for guides with ``classifier_log_prob(x, y)``
=============  =============================================================================

For M2 (:mod:`pyro_dgm.models.ssvae`) the enumerated ELBO of a batch with labels ``y`` (``-1``
where unknown) is :math:`\sum_{\text{labelled}} L(x, y) + \sum_{\text{unlabelled}} U(x)`; the
auxiliary term lets the classifier :math:`q(y|x)` learn from the labels directly, which the
ELBO alone does not (labelled examples do not involve :math:`q(y|x)` in :math:`L(x, y)`).
"""

from __future__ import annotations

import torch

import pyro.infer

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.objectives import (
    STATELESS,
    Objective,
    PyroELBOLoss,
    particle_options,
    register_objective,
)


class SemiSupervisedELBO(PyroELBOLoss):
    r"""Loss :math:`-\big(\mathrm{ELBO}_{\text{enum}} + \alpha \sum_{n: y_n \ge 0} \log q(y_n \mid x_n)\big)`.

    The programs take ``(x, y)`` with ``y = -1`` for unknown labels; the guide provides
    ``classifier_log_prob(x, y)``. Without labels (``(x,)`` only) it is ``TraceEnum_ELBO``.
    Both terms are differentiable (``TraceEnum_ELBO``'s is its surrogate), so the sum is too.
    """

    def __init__(self, model, guide, alpha: float = 50.0, **elbo_options):
        if not alpha >= 0:
            raise PyroDGMError(f"alpha must be zero or positive, got {alpha!r}")
        super().__init__(model, guide, pyro.infer.TraceEnum_ELBO(**elbo_options))
        self.alpha = float(alpha)

    def classification_loss(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """``-alpha * sum log q(y|x)`` over the labelled examples (a tensor, or 0.0)."""
        if y is None or self.alpha == 0 or not bool((y >= 0).any()):
            return 0.0
        if not hasattr(self.guide, "classifier_log_prob"):
            raise PyroDGMError("the 'ss-elbo' objective needs a guide with a classifier "
                               "(classifier_log_prob(x, y)), such as M2Guide")
        known = y >= 0
        return -self.alpha * self.guide.classifier_log_prob(x[known], y[known]).sum()

    def forward(self, *args) -> torch.Tensor:
        return super().forward(*args) + self.classification_loss(*args)


def _enum_options(particles: int) -> dict:
    return {**particle_options(particles), "strict_enumeration_warning": False}


register_objective(Objective(
    "enum-elbo", "TraceEnum_ELBO: ELBO with enumerated discrete sites summed out exactly",
    lambda model, guide, particles: PyroELBOLoss(
        model, guide, pyro.infer.TraceEnum_ELBO(**_enum_options(particles))),
    {"particles": 1}, **STATELESS,
))
register_objective(Objective(
    "ss-elbo", "TraceEnum_ELBO + alpha * log q(y|x) on labelled data (Kingma et al. 2014, M2)",
    lambda model, guide, particles, alpha: SemiSupervisedELBO(
        model, guide, alpha=alpha, **_enum_options(particles)),
    {"particles": 1, "alpha": 50.0}, **STATELESS,
))
