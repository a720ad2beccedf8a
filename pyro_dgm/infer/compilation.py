r"""Inference compilation on polynomial regression: Markov chain baselines and proposal metrics.

Seed ``004``, "Learning importance sampling proposals": on held-out data sets, importance
sampling (IS) with the learned proposal is compared with IS from the prior and with
random-walk Metropolis-Hastings (MH), against a long NUTS run as the reference posterior (the
seed's figure of regression curves is :func:`pyro_dgm.zoo.polyreg.regression_curves`).

- :func:`random_walk_mh`: Pyro's ``RandomWalkKernel`` (adaptive step size, unconstrained space)
  driven step by step until a number of steps or a wall-clock budget is used up;
- :func:`nuts_reference`: Pyro's ``NUTS`` through ``MCMC``;
- :func:`proposal_metrics`: ESS, log-evidence and ``-log q(true latents | y)`` on a test split
  (what the ``polyreg`` zoo entry's ``test_metrics`` / ``evaluate`` hooks report).
"""

from __future__ import annotations

import time

import torch

import pyro
import pyro.poutine as poutine
from pyro.infer.mcmc import MCMC, NUTS, RandomWalkKernel

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.importance import importance_sample, prior_proposal


# -- Markov chain baselines -----------------------------------------------------------------
def random_walk_mh(model, *args, num_steps: int | None = None, seconds: float | None = None,
                   warmup: int = 500, step_size: float = 0.1, check_every: int = 50,
                   min_kept: int = 50) -> dict:
    """Random-walk MH on one data set: ``{"samples": {site: (S, ...)}, "seconds", "steps"}``.

    Runs Pyro's :class:`~pyro.infer.mcmc.RandomWalkKernel` (isotropic Gaussian steps in the
    unconstrained space, step size adapted towards acceptance 0.234 during the first
    ``warmup`` steps, which are discarded) until ``num_steps`` steps or ``seconds`` of wall
    clock, whichever comes first (but at least ``min_kept`` steps after warm-up, so a slow
    machine overruns ``seconds`` rather than returning nothing); the time includes set-up and
    warm-up and is returned as ``seconds``.
    """
    if num_steps is None and seconds is None:
        raise PyroDGMError("random_walk_mh needs num_steps or seconds")
    started = time.perf_counter()
    kernel = RandomWalkKernel(model, init_step_size=float(step_size))
    kernel.setup(warmup, *args)
    params, kept, steps = kernel.initial_params, [], 0
    with poutine.block():
        while True:
            params = kernel.sample(params)
            steps += 1
            if steps > warmup:
                kept.append(params)
            if num_steps is not None and steps >= num_steps:
                break
            if (seconds is not None and steps % check_every == 0 and len(kept) >= min_kept
                    and time.perf_counter() - started >= seconds):
                break
    if not kept:
        raise PyroDGMError(f"num_steps ({num_steps}) must exceed the {warmup} warm-up steps")
    constrained = {name: torch.stack([kernel.transforms[name].inv(p[name]) for p in kept])
                   for name in kept[0]}
    return {"samples": constrained, "seconds": time.perf_counter() - started, "steps": steps,
            "accept_rate": kernel.diagnostics()["acceptance rate"]}


def nuts_reference(model, *args, num_samples: int = 1000, warmup: int = 500,
                   seed: int = 0) -> dict:
    """NUTS on one data set (Pyro's ``MCMC``): ``{"samples": {site: (S, ...)}, "seconds"}``."""
    pyro.set_rng_seed(seed)
    started = time.perf_counter()
    mcmc = MCMC(NUTS(model), num_samples=num_samples, warmup_steps=warmup,
                disable_progbar=True)
    mcmc.run(*args)
    return {"samples": mcmc.get_samples(), "seconds": time.perf_counter() - started}


# -- metrics of a proposal on a test split --------------------------------------------------
@torch.no_grad()
def true_latent_log_q(guide, test) -> torch.Tensor:
    """``log q(w*, sigma* | y)`` of the latents that simulated each test data set: ``(B,)``."""
    t, y, mask = test.arrays()
    truth = {"w": test.info["w"], "sigma": test.info["sigma"]}
    trace = poutine.trace(poutine.condition(guide, data=truth)).get_trace(t, y, mask)
    trace.compute_log_prob()
    return sum(site["log_prob"] for site in trace.nodes.values()
               if site["type"] == "sample" and site["name"] in truth)


@torch.no_grad()
def proposal_metrics(model, guide, test, num_samples: int) -> dict:
    """Mean ESS (absolute and per sample), mean log-evidence estimate, for the learned proposal
    and for the prior; and the held-out sleep loss ``-mean log q(true latents | y)``."""
    t, y, mask = test.arrays()
    metrics = {"is_samples": num_samples,
               "test_sleep_loss": -true_latent_log_q(guide, test).mean().item()}
    for label, proposal in (("proposal", guide), ("prior", prior_proposal(model))):
        samples = importance_sample(model, proposal, t, y, mask, num_samples=num_samples)
        ess = samples.ess()
        metrics[f"ess_{label}"] = ess.mean().item()
        metrics[f"ess_fraction_{label}"] = (ess / num_samples).mean().item()
        metrics[f"log_evidence_{label}"] = samples.log_evidence().mean().item()
    return metrics
