"""The truncated stick-breaking DP mixture of Gaussians by minibatch SVI, seed ``000`` ("The
Dirichlet Process", "SGVB for the Dirichlet Process"): ``dp-mixture``, and what its run
folder gets: the posterior predictive log-likelihood of held-out points, the components in use,
and the fitted mixture drawn over its training points."""

from __future__ import annotations

from pathlib import Path

import pyro

from pyro_dgm import plots
from pyro_dgm.infer.ais_hmc import refuse_ais
from pyro_dgm.data.synthetic import true_log_density
from pyro_dgm.guides.dp_mixture import DPMixtureGuide
from pyro_dgm.models.dp_mixture import (
    DPMixture,
    components_with_weight,
    expected_weights,
    fitted_components,
    predictive_log_density,
)
from pyro_dgm.zoo.core import ZooEntry, register


def build_dp_mixture(hyper: dict, data) -> tuple:
    model = DPMixture.from_data(data.x, hyper["truncation"], hyper["alpha0"])
    guide = DPMixtureGuide.from_data(data.x, hyper["truncation"], hyper["stick_posterior"],
                                     hyper["kl_terms"], init_alpha0=hyper["alpha0"])
    return model, guide


def held_out_metrics(model, guide, test, num_samples: int = 100, threshold: float = 0.01) -> dict:
    """``metrics.json`` numbers: the predictive log-likelihood per held-out point
    (``test_loglik``, nats), the components with weight above ``threshold`` and all weights;
    for synthetic data also the generating density's ``true_test_loglik`` and component count."""
    weights = expected_weights(guide)
    metrics = {"test_loglik": predictive_log_density(guide, test.x, num_samples).mean().item(),
               "test_loglik_samples": num_samples,
               "components_with_weight": components_with_weight(weights, threshold),
               "weight_threshold": threshold, "weights": [round(w, 5) for w in weights.tolist()]}
    if "means" in test.info:
        metrics["true_test_loglik"] = true_log_density(test).mean().item()
        metrics["true_components"] = int(test.info["means"].shape[0])
    return metrics


def evaluate_run(model, guide, test, train, *, iwae_samples: int, knn: bool, seed: int,
                 ais_steps: int | None = None, ais_chains: int | None = None) -> dict:
    """``eval.json``: :func:`held_out_metrics` with ``iwae_samples`` posterior draws (AIS is
    refused: the mixture's assignments are discrete)."""
    refuse_ais(model, ais_steps, ais_chains, "its component assignments are discrete")
    pyro.set_rng_seed(seed)
    return held_out_metrics(model, guide, test, iwae_samples)


def run_figures(model, guide, train, test, history, out) -> None:
    """``fitted_mixture.png`` (the mixture on its training points) and ``training_curve.png``."""
    plots.training_curve(history, Path(out) / "training_curve.png",
                         title="training loss (-ELBO / N, nats per point)")
    fitted = fitted_components(guide)
    truth = train.info if "means" in train.info else None
    plots.mixture_fit(train.x[:20_000], fitted["weights"], fitted["means"], fitted["scales"],
                      Path(out) / "fitted_mixture.png", truth=truth, title="DP mixture")


register(ZooEntry(
    name="dp-mixture",
    description="truncated stick-breaking DP mixture of Gaussians, minibatch SVI",
    model="pyro_dgm.models.dp_mixture.DPMixture", guide="pyro_dgm.guides.dp_mixture.DPMixtureGuide",
    build=build_dp_mixture,
    objective="meanfield", objectives=("meanfield", "elbo"),
    defaults={"truncation": 20, "alpha0": 1.0, "stick_posterior": "kumaraswamy", "kl_terms": None},
    training={"lr": 0.05, "batch_size": 100, "epochs": 100},
    datasets=("gaussian-clusters",),
    source="seed 000, 'The Dirichlet Process', 'SGVB for the Dirichlet Process'",
    test_metrics=held_out_metrics,
    evaluate=evaluate_run,
    figures=run_figures,
))
