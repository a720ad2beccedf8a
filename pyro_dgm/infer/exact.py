r"""Held-out numbers of exact-likelihood models (NADE, normalizing flows), which have no latent
site and so no importance sampling: the log-likelihood is the model's own density,
``model.log_prob(x)``, one value per example.

They are reported under the keys the latent models use (``nll`` as in
:func:`pyro_dgm.infer.evaluate`, ``test_elbo``: the ELBO of an empty guide is
:math:`\log p(x)`), with ``nll_method`` saying what the number is:

- ``"exact"``: :math:`-\frac1N \sum_n \log p(x_n)` of binary or continuous data;
- ``"dequantized"``: for a flow on 8-bit grey levels, :math:`-\frac1N \sum_n \log p(k_n + v_n)`
  with one uniform draw :math:`v_n` per image, an unbiased estimate of an upper bound on the
  discrete NLL (see :mod:`pyro_dgm.models.flow_density`); ``bits_per_dim`` is
  :math:`\mathrm{nll} / (D \log 2)`;
- ``"cross-entropy"``: grey levels scored by a Bernoulli model (e.g. NADE without
  binarization): the Bernoulli cross-entropy, not a log-likelihood.
"""

from __future__ import annotations

import math

import torch

import pyro

from pyro_dgm.infer.ais_hmc import refuse_ais
from pyro_dgm.infer.evaluate import device_of


@torch.no_grad()
def exact_log_likelihood(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``model.log_prob`` of each row of ``x``, in evaluation mode (batch normalization uses
    its running statistics), in batches of ``batch_size``."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model.log_prob(chunk) for chunk in x.split(batch_size)])
    finally:
        model.train(was_training)


def nll_method(model, test, x: torch.Tensor) -> str:
    """``"dequantized"``, ``"exact"`` or ``"cross-entropy"`` (see the module docstring)."""
    if getattr(model, "levels", None) is not None:
        return "dequantized"
    binary = bool(((x == 0) | (x == 1)).all())
    return "cross-entropy" if test.likelihood == "bernoulli" and not binary else "exact"


def exact_metrics(model, test, *, seed: int = 0) -> dict:
    """``test_elbo`` (= mean log-likelihood), ``nll`` ``{"k": 1, "value"}``, ``nll_method``
    and, for dequantized images, ``bits_per_dim``, on ``test`` as the model sees it."""
    pyro.set_rng_seed(seed)
    x = test.observed(device=device_of(model))
    nll = -exact_log_likelihood(model, x).mean().item()
    method = nll_method(model, test, x)
    metrics = {"test_elbo": -nll, "nll": {"k": 1, "value": nll}, "nll_method": method}
    if method == "dequantized":
        metrics["bits_per_dim"] = nll / (x.shape[1] * math.log(2))
    return metrics


def exact_test_metrics(model, guide, test, num_samples: int) -> dict:
    """The ``metrics.json`` hook of exact models: :func:`exact_metrics` with ``test_nll``
    for ``nll`` (``num_samples`` is not needed: the likelihood is exact)."""
    metrics = exact_metrics(model, test)
    nll = metrics.pop("nll")["value"]
    return {**metrics, "test_elbo_samples": 1, "test_nll": nll}


def exact_evaluate(model, guide, test, train=None, *, iwae_samples: int = 1, knn: bool = False,
                   seed: int = 0, ais_steps: int | None = None,
                   ais_chains: int | None = None) -> dict:
    """The ``eval.json`` hook of exact models: :func:`exact_metrics`, and no latent codes
    (``knn_error`` and ``active_dims`` are None; ``iwae_samples`` and ``knn`` do not apply,
    AIS is refused: there is nothing to anneal)."""
    refuse_ais(model, ais_steps, ais_chains, "its likelihood is exact, there is no latent to "
               "anneal")
    return {**exact_metrics(model, test, seed=seed), "knn_error": None, "active_dims": None}
