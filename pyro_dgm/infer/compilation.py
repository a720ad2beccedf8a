r"""Inference compilation on polynomial regression: baselines, metrics, figures and zoo hooks.

Seed ``004``, "Learning importance sampling proposals": on held-out data sets, importance
sampling (IS) with the learned proposal is compared with IS from the prior and with
random-walk Metropolis-Hastings (MH), against a long NUTS run as the reference posterior; the
figure draws regression curves :math:`f_w(t)` from the prior, from the proposal, after
importance weighting and from MH over the data points.

- :func:`random_walk_mh`: Pyro's ``RandomWalkKernel`` (adaptive step size, unconstrained space)
  driven step by step until a number of steps or a wall-clock budget is used up;
- :func:`nuts_reference`: Pyro's ``NUTS`` through ``MCMC``;
- :func:`proposal_metrics`: ESS, log-evidence and ``-log q(true latents | y)`` on a test split
  (the ``test_metrics`` / ``evaluate`` hooks of the ``polyreg`` zoo entry);
- :func:`regression_curves`: the seed's figure.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

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


def test_metrics(model, guide, test, num_samples: int) -> dict:
    """The ``test_metrics`` hook of the ``polyreg`` zoo entry (``metrics.json``)."""
    return proposal_metrics(model, guide, test, max(int(num_samples), 1))


def evaluate(model, guide, test, train, *, iwae_samples: int, knn: bool, seed: int) -> dict:
    """The ``evaluate`` hook of the ``polyreg`` zoo entry (``eval.json``)."""
    pyro.set_rng_seed(seed)
    return proposal_metrics(model, guide, test, int(iwae_samples))


# -- figures --------------------------------------------------------------------------------
def regression_curves(model, t, y, mask, panels: dict, path, max_curves: int = 50,
                      title: str | None = None) -> Path:
    """The seed's figure: one panel per entry of ``panels`` (label -> coefficient samples
    ``(S, D+1)``), ``max_curves`` curves ``f_w(t)`` each, over the data points of one data set."""
    real = mask.bool()
    grid = torch.linspace(-1.05, 1.05, 100)
    fig = Figure(figsize=(3.2 * len(panels), 3.0))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    lo, hi = float(y[real].min()), float(y[real].max())
    pad = 0.5 * (hi - lo) + 0.3
    for ax, (label, w) in zip(axes, panels.items()):
        curves = model.regression_function(w[:max_curves], grid.expand(min(len(w), max_curves), -1))
        for curve in curves:
            ax.plot(grid.numpy(), curve.numpy(), color="tab:blue", alpha=0.15, lw=1)
        ax.scatter(t[real].numpy(), y[real].numpy(), color="black", s=12, zorder=3)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("t")
    axes[0].set_ylabel("y")
    if title:
        fig.suptitle(title, fontsize=10, y=1.04)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


@torch.no_grad()
def figures(model, guide, train, test, history, out) -> None:
    """The ``figures`` hook of the ``polyreg`` zoo entry: training curve and, for the first
    three test data sets, curves from the prior, the proposal and after importance weighting."""
    from pyro_dgm import plots

    out = Path(out)
    plots.training_curve(history, out / "training_curve.png", title="sleep loss -log q(x | y)")
    t, y, mask = test.arrays(slice(0, 3))
    learned = importance_sample(model, guide, t, y, mask, num_samples=1000)
    prior = importance_sample(model, prior_proposal(model), t, y, mask, num_samples=1000)
    weighted = learned.resample(50)
    for b in range(t.shape[0]):
        panels = {"samples from prior": prior.samples["w"][:, b],
                  "samples from proposal": learned.samples["w"][:, b],
                  "after importance weighting": weighted["w"][:, b]}
        regression_curves(model, t[b], y[b], mask[b], panels, out / f"curves_{b}.png",
                          title=f"test data set {b}: ESS {learned.ess()[b]:.0f} of 1000 "
                                f"(prior: {prior.ess()[b]:.1f})")
