"""NADE (Larochelle & Murray 2011), seeds ``001``/``002``: ``nade``, an exact-likelihood model
of binary images trained by maximum likelihood (the ``elbo`` of its empty guide).

Its ``metrics.json`` and ``eval.json`` carry the exact NLL (:mod:`pyro_dgm.infer.exact`,
``nll_method: "exact"`` on binary data); its figures are samples drawn pixel by pixel and the
training curve.
"""

from __future__ import annotations

from pathlib import Path

from pyro_dgm import plots
from pyro_dgm.guides.empty import EmptyGuide
from pyro_dgm.infer.exact import exact_evaluate, exact_test_metrics
from pyro_dgm.models.nade import NADE
from pyro_dgm.zoo.core import ZooEntry, register


def build_nade(hyper: dict, data) -> tuple:
    return NADE(data.dim, hyper["hidden"]), EmptyGuide()


def figures(model, guide, train, test, history, out) -> None:
    """Samples (ancestral, pixel by pixel) and the training curve (the exact NLL per example)."""
    out = Path(out)
    plots.image_grid(model.sample(100), train.image_shape, out / "samples.png",
                     title="samples from NADE")
    plots.training_curve(history, out / "training_curve.png", title="training NLL (exact)")


register(ZooEntry(
    name="nade",
    description="NADE, exact-likelihood autoregressive model of binary images "
                "(Larochelle & Murray 2011)",
    model="pyro_dgm.models.nade.NADE", guide="pyro_dgm.guides.empty.EmptyGuide",
    build=build_nade,
    objective="elbo", objectives=("elbo",),
    defaults={"hidden": 500},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 50},
    datasets=("bars", "mnist"),
    source="seed 001, 'auto-regressive models'; seed 002, 'tractable models'; seed 000 table",
    test_metrics=exact_test_metrics,
    evaluate=exact_evaluate,
    figures=figures,
))
