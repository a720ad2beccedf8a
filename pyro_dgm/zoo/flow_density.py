"""A normalizing-flow density model, seed ``004`` ("Normalizing flows"): ``flow``, trained by
maximum likelihood (the ``elbo`` of its empty guide), with ``flow=realnvp|maf|spline``.

Not to be confused with ``vae-flow`` (:mod:`pyro_dgm.zoo.flows`), where a flow is the VAE's
posterior. Grey-level images are dequantized (``levels=256`` when the data set's likelihood is
Bernoulli: values in [0, 1]), continuous vectors (``toy2d``) modelled as they are. Its numbers
come from :mod:`pyro_dgm.infer.exact` (``nll_method`` ``"exact"`` or ``"dequantized"`` with
``bits_per_dim``); its figures are samples (images) or the learned density beside the data
(2-D), and the training curve.
"""

from __future__ import annotations

from pathlib import Path

from pyro_dgm import plots
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.empty import EmptyGuide
from pyro_dgm.infer.exact import exact_evaluate, exact_log_likelihood, exact_test_metrics
from pyro_dgm.models.flow_density import FLOW_LAYERS, FlowDensity
from pyro_dgm.zoo.core import ZooEntry, register

GREY_LEVELS = 256


def build_flow(hyper: dict, data) -> tuple:
    if hyper["flow"] not in FLOW_LAYERS:
        raise PyroDGMError(f"unknown flow {hyper['flow']!r}; expected one of "
                           f"{', '.join(FLOW_LAYERS)}")
    levels = GREY_LEVELS if data.likelihood == "bernoulli" else None
    model = FlowDensity(data.dim, hyper["flow"], hyper["flow_length"], hyper["hidden"],
                        hyper["batchnorm"], levels)
    return model, EmptyGuide()


def figures(model, guide, train, test, history, out) -> None:
    """Samples (images) or data | learned density | samples (2-D), and the training curve."""
    out = Path(out)
    was_training = model.training
    model.eval()
    try:
        if train.image_shape is not None:
            plots.image_grid(model.sample(100), train.image_shape, out / "samples.png",
                             title="samples from the flow")
        elif train.dim == 2:
            plots.density_2d(lambda points: exact_log_likelihood(model, points),
                             test.x[:2000], model.sample(2000), out / "density.png",
                             title=f"learned density ({len(model.layers)} layers)")
    finally:
        model.train(was_training)
    plots.training_curve(history, out / "training_curve.png", title="training NLL")


register(ZooEntry(
    name="flow",
    description="normalizing-flow density model by maximum likelihood (RealNVP, MAF, "
                "neural spline)",
    model="pyro_dgm.models.flow_density.FlowDensity", guide="pyro_dgm.guides.empty.EmptyGuide",
    build=build_flow,
    objective="elbo", objectives=("elbo",),
    defaults={"flow": "realnvp", "flow_length": 6, "hidden": 256, "batchnorm": False},
    training={"lr": 3e-4, "batch_size": 100, "epochs": 50},  # 1e-3 diverges on MNIST
    datasets=("toy2d", "bars", "mnist", "freyfaces"),
    source="seed 004, 'Normalizing flows'",
    test_metrics=exact_test_metrics,
    evaluate=exact_evaluate,
    figures=figures,
))
