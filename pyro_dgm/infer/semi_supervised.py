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
    {"particles": 1},
))
register_objective(Objective(
    "ss-elbo", "TraceEnum_ELBO + alpha * log q(y|x) on labelled data (Kingma et al. 2014, M2)",
    lambda model, guide, particles, alpha: SemiSupervisedELBO(
        model, guide, alpha=alpha, **_enum_options(particles)),
    {"particles": 1, "alpha": 50.0},
))


@torch.no_grad()
def classification_error(classify, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """The fraction of examples whose predicted label ``classify(x)`` differs from ``y``."""
    if y is None or y.shape[0] != x.shape[0]:
        raise PyroDGMError("classification error needs one label per example")
    wrong = sum(int((classify(x[i:i + batch_size]) != y[i:i + batch_size]).sum())
                for i in range(0, x.shape[0], batch_size))
    return wrong / x.shape[0]


# -- zoo hooks for M2-type models (programs model(x, y), guides with classify(x)) --------------
def test_metrics(model, guide, test, num_samples: int) -> dict:
    """``metrics.json``'s held-out numbers: test classification error and the test ELBO."""
    from pyro_dgm.infer.estimators import log_likelihood_bounds
    from pyro_dgm.infer.evaluate import _device_of, observed_data

    x = observed_data(test, _device_of(model, guide))
    elbo, _ = log_likelihood_bounds(model, guide, x, num_samples=num_samples)
    return {"test_error": classification_error(guide.classify, x, test.y.to(x.device)),
            "test_elbo": elbo.mean().item(), "test_elbo_samples": num_samples}


def evaluate(model, guide, test, train=None, *, iwae_samples: int = 1000, knn: bool = False,
             seed: int = 0) -> dict:
    """``eval.json``: test classification error of ``q(y|x)``, plus the standard metrics.

    The IWAE bound and ELBO are of the unlabelled test images (``y`` summed over by sampling
    it from ``q(y|x)``); kNN, when asked for, is on ``guide.encode`` with the training labels.
    """
    from pyro_dgm.infer.evaluate import _device_of, evaluate as standard, observed_data

    metrics = standard(model, guide, test, train, iwae_samples=iwae_samples, knn=knn, seed=seed)
    x = observed_data(test, _device_of(model, guide))
    metrics["test_error"] = classification_error(guide.classify, x, test.y.to(x.device))
    if train is not None and hasattr(train, "n_labelled"):
        metrics["n_labelled"] = train.n_labelled
    return metrics


def figures(model, guide, train, test, history, out) -> None:
    """Samples by class (row = class, column = one shared code: style kept, class changed),
    the training curve, and the codes of the test images."""
    from pathlib import Path

    from pyro_dgm import plots
    from pyro_dgm.infer.estimators import encode_all

    out = Path(out)
    plots.image_grid(model.sample_by_class(10), train.image_shape, out / "samples_by_class.png",
                     nrow=10, title="samples: row = class, column = shared code")
    plots.training_curve(history, out / "training_curve.png")
    device = next(model.parameters()).device
    x_test = test.x[:1000].to(device)
    codes = encode_all(guide.encode, x_test)
    plots.embedding(codes, test.y[:1000] if test.y is not None else None,
                    out / "latent_embedding.png")
