"""Inference compilation on non-conjugate Bayesian polynomial regression, seed ``004``
("Amortized inference without deep generative models", "Learning importance sampling
proposals"): ``polyreg``, an amortized importance-sampling proposal trained by ``sleep`` or
``csis``.

Its run folder reports how good a proposal the guide is on held-out data sets
(:func:`pyro_dgm.infer.compilation.proposal_metrics`: ESS, log-evidence, ``-log q`` of the
true latents, against the prior as proposal), and draws the seed's figure
(:func:`regression_curves`): regression curves :math:`f_w(t)` from the prior, from the
proposal and after importance weighting, over the data points.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

import pyro

from pyro_dgm import plots
from pyro_dgm.guides.polyreg import PolyRegProposal
from pyro_dgm.infer.ais_hmc import refuse_ais
from pyro_dgm.infer.compilation import proposal_metrics
from pyro_dgm.infer.importance import importance_sample, prior_proposal
from pyro_dgm.models.polyreg import PolyRegression
from pyro_dgm.zoo.core import ZooEntry, register


def build_polyreg(hyper: dict, data) -> tuple:
    model = PolyRegression(hyper["degree"], hyper["df"], min_points=data.info["min_points"],
                           max_points=data.max_points)
    guide = PolyRegProposal(hyper["degree"], hyper["hidden"], hyper["components"])
    return model, guide


def test_metrics(model, guide, test, num_samples: int) -> dict:
    """``metrics.json``: :func:`~pyro_dgm.infer.compilation.proposal_metrics` with
    ``num_samples`` importance samples."""
    return proposal_metrics(model, guide, test, max(int(num_samples), 1))


def evaluate(model, guide, test, train, *, iwae_samples: int, knn: bool, seed: int,
             ais_steps: int | None = None, ais_chains: int | None = None) -> dict:
    """``eval.json``: :func:`~pyro_dgm.infer.compilation.proposal_metrics` with
    ``iwae_samples`` importance samples (AIS is refused: its latent is not per example)."""
    refuse_ais(model, ais_steps, ais_chains, "its regression weights are shared by the data "
               "set, not one latent per example")
    pyro.set_rng_seed(seed)
    return proposal_metrics(model, guide, test, int(iwae_samples))


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
    return plots.save_figure(fig, path)


@torch.no_grad()
def figures(model, guide, train, test, history, out) -> None:
    """The training curve and, for the first three test data sets, curves from the prior, the
    proposal and after importance weighting."""
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


register(ZooEntry(
    name="polyreg",
    description="non-conjugate Bayesian polynomial regression, amortized IS proposal (inference "
                "compilation)",
    model="pyro_dgm.models.polyreg.PolyRegression", guide="pyro_dgm.guides.polyreg.PolyRegProposal",
    build=build_polyreg,
    objective="sleep", objectives=("sleep", "csis"),
    defaults={"degree": 3, "df": 4.0, "hidden": 128, "components": 3},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 50},
    datasets=("polyreg",),
    source="seed 004, 'Amortized inference without deep generative models', "
           "'Learning importance sampling proposals'",
    test_metrics=test_metrics,
    evaluate=evaluate,
    figures=figures,
))
