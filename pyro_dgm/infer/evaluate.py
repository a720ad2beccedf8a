"""``evaluate``: the standard metrics of a trained model and guide on held-out data."""

from __future__ import annotations

from typing import Callable

import torch

import pyro

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.ais_hmc import ais_metrics, check_ais_options, latent_site
from pyro_dgm.infer.estimators import active_dims, encode_all, knn_error, log_likelihood_bounds


def evaluate(model: Callable, guide: Callable, test, train=None, *, iwae_samples: int = 1000,
             knn: bool = True, encode: Callable | None = None, seed: int = 0,
             batch_size: int = 100, ais_steps: int | None = None,
             ais_chains: int | None = None) -> dict:
    """Held-out metrics, in the keys of ``eval.json``.

    - ``test_elbo``: mean ELBO per example (nats, Monte Carlo KL, ``iwae_samples`` draws);
    - ``nll``: ``{"k": K, "value": -mean IWAE-K bound}``, the marginal likelihood estimate;
    - ``knn_error``: ``{"3", "5", "10"}`` error fractions of kNN on ``encode(x)`` (needs labels
      in ``train`` and ``test``; ``None`` otherwise);
    - ``active_dims``: code dimensions with variance above 0.01 across the test set;
    - with ``ais_steps`` (and ``ais_chains``): a second marginal-likelihood estimate by AIS with
      HMC in latent space (:func:`pyro_dgm.infer.ais_hmc.ais_metrics`), ``ais_nll``,
      ``ais_nll_stderr``, ``ais_steps``, ``ais_chains``, ``ais_leapfrog_steps``,
      ``ais_acceptance``.

    ``encode`` defaults to ``guide.encode``; a guide without one gets no kNN or active dims.
    The data are taken as the model sees them, ``Dataset.observed`` (one fixed draw under
    dynamic binarization).
    """
    ais_steps, ais_chains = check_ais_options(ais_steps, ais_chains)
    pyro.set_rng_seed(seed)
    device = device_of(model, guide)
    x_test = test.observed(device=device)
    if ais_steps is not None:
        latent_site(model, x_test)  # refuse a model AIS cannot score before any long work
    elbo, iwae = log_likelihood_bounds(model, guide, x_test, num_samples=iwae_samples,
                                       batch_size=batch_size)
    metrics = {"test_elbo": elbo.mean().item(),
               "nll": {"k": iwae_samples, "value": -iwae.mean().item()},
               "knn_error": None, "active_dims": None}
    if ais_steps is not None:
        metrics.update(ais_metrics(model, x_test, ais_steps, ais_chains))
    encode = encode if encode is not None else getattr(guide, "encode", None)
    if encode is None:
        return metrics
    test_codes = encode_all(encode, x_test)
    metrics["active_dims"] = active_dims(test_codes)
    if knn:
        if train is None or train.y is None or test.y is None:
            raise PyroDGMError("kNN error needs labelled training and test data")
        train_codes = encode_all(encode, train.observed(device=device))
        metrics["knn_error"] = knn_error(train_codes, train.y.to(device), test_codes,
                                         test.y.to(device))
    return metrics


def device_of(*programs) -> torch.device:
    for program in programs:
        if isinstance(program, torch.nn.Module):
            for parameter in program.parameters():
                return parameter.device
    return torch.device("cpu")
