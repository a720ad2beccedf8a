"""Semi-supervised M2 (Kingma et al. 2014) and its stick-breaking version SB-M2, seed ``000``
("Semi-Supervised: nonparametric version of Kingma et al.'s M2"): ``m2`` and ``sb-m2``.

Their programs take ``(x, y)`` and their guides classify (``guide.classify(x)``), so their run
folders report the test classification error of :math:`q(y \\mid x)` next to the ELBO, and draw
samples by class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from pyro_dgm import plots
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.ssvae import M2Guide
from pyro_dgm.infer import encode_all, log_likelihood_bounds
from pyro_dgm.infer import evaluate as standard_evaluate
from pyro_dgm.infer.evaluate import device_of
from pyro_dgm.models.ssvae import M2
from pyro_dgm.zoo.core import ZooEntry, register


def build_m2(latent: str) -> Callable:
    """The builder of M2 with a ``"gaussian"`` or ``"stick-breaking"`` latent."""
    def build(hyper: dict, data) -> tuple:
        if data.y is None:
            raise PyroDGMError(f"M2 needs a labelled data set, and {data.name!r} has no labels")
        n_classes = int(data.y.max()) + 1
        z_dim = hyper["z_dim"] if latent == "gaussian" else hyper["truncation"]
        model = M2(data.dim, n_classes, z_dim, latent, hyper.get("alpha0", 5.0), hyper["hidden"],
                   data.likelihood)
        guide = M2Guide(data.dim, n_classes, z_dim, latent, hyper["hidden"])
        return model, guide
    return build


@torch.no_grad()
def classification_error(classify, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """The fraction of examples whose predicted label ``classify(x)`` differs from ``y``."""
    if y is None or y.shape[0] != x.shape[0]:
        raise PyroDGMError("classification error needs one label per example")
    wrong = sum(int((classify(x[i:i + batch_size]) != y[i:i + batch_size]).sum())
                for i in range(0, x.shape[0], batch_size))
    return wrong / x.shape[0]


def test_metrics(model, guide, test, num_samples: int) -> dict:
    """``metrics.json``'s held-out numbers: test classification error and the test ELBO."""
    x = test.observed(device=device_of(model, guide))
    elbo, _ = log_likelihood_bounds(model, guide, x, num_samples=num_samples)
    return {"test_error": classification_error(guide.classify, x, test.y.to(x.device)),
            "test_elbo": elbo.mean().item(), "test_elbo_samples": num_samples}


def evaluate(model, guide, test, train=None, *, iwae_samples: int = 1000, knn: bool = False,
             seed: int = 0, ais_steps: int | None = None, ais_chains: int | None = None) -> dict:
    """``eval.json``: test classification error of ``q(y|x)``, plus the standard metrics.

    The IWAE bound and ELBO are of the unlabelled test images (``y`` summed over by sampling
    it from ``q(y|x)``); kNN, when asked for, is on ``guide.encode`` with the training labels.
    """
    metrics = standard_evaluate(model, guide, test, train, iwae_samples=iwae_samples, knn=knn,
                                seed=seed, ais_steps=ais_steps, ais_chains=ais_chains)
    x = test.observed(device=device_of(model, guide))
    metrics["test_error"] = classification_error(guide.classify, x, test.y.to(x.device))
    if train is not None and hasattr(train, "n_labelled"):
        metrics["n_labelled"] = train.n_labelled
    return metrics


def figures(model, guide, train, test, history, out) -> None:
    """Samples by class (row = class, column = one shared code: style kept, class changed),
    the training curve, and the codes of the test images."""
    out = Path(out)
    plots.image_grid(model.sample_by_class(10), train.image_shape, out / "samples_by_class.png",
                     nrow=10, title="samples: row = class, column = shared code")
    plots.training_curve(history, out / "training_curve.png")
    device = next(model.parameters()).device
    x_test = test.x[:1000].to(device)
    codes = encode_all(guide.encode, x_test)
    plots.embedding(codes, test.y[:1000] if test.y is not None else None,
                    out / "latent_embedding.png")


for _latent, _name, _description, _defaults in (
        ("gaussian", "m2", "semi-supervised M2 with a Gaussian latent (Kingma et al. 2014)",
         {"z_dim": 50, "hidden": 500}),
        ("stick-breaking", "sb-m2", "semi-supervised M2 with a stick-breaking latent (SB-DGM)",
         {"truncation": 50, "alpha0": 5.0, "hidden": 500})):
    register(ZooEntry(
        name=_name, description=_description,
        model="pyro_dgm.models.ssvae.M2", guide="pyro_dgm.guides.ssvae.M2Guide",
        build=build_m2(_latent),
        objective="ss-elbo", objectives=("ss-elbo", "enum-elbo"),
        defaults=_defaults,
        training={"lr": 1e-3, "batch_size": 100, "epochs": 50},
        datasets=("mnist-ssl", "bars-ssl"),
        source="seed 000, 'Semi-Supervised: nonparametric version of Kingma et al.'s M2'",
        test_metrics=test_metrics,
        evaluate=evaluate,
        figures=figures,
    ))
