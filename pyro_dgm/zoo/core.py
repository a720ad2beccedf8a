"""The zoo's entry type, its registry, and the engine's default hooks.

A :class:`ZooEntry` says how to build a ``(model, guide)`` pair for a data set, which
objectives and data sets apply, the published defaults, and three hooks that turn a trained
pair into the numbers and figures of a run folder. Families of image models use the defaults
defined here, :func:`test_elbo`, :func:`pyro_dgm.infer.evaluate` and :func:`image_figures`;
other families (mixtures of points, regression data sets, scenes of objects) pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pyro_dgm import plots
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import encode_all, evaluate, log_likelihood_bounds
from pyro_dgm.registry import Registry, check_settings


# -- the default hooks --------------------------------------------------------------------
def test_elbo(model, guide, test, num_samples: int) -> dict:
    r"""The default held-out numbers of ``metrics.json``: the mean test ELBO per example,
    :math:`\frac1N \sum_n \frac1k \sum_s \log w_{n,s}` with the guide as proposal
    (:func:`pyro_dgm.infer.log_likelihood_bounds`)."""
    device = next(model.parameters()).device
    elbo, _ = log_likelihood_bounds(model, guide, test.observed(device=device),
                                    num_samples=num_samples)
    return {"test_elbo": elbo.mean().item(), "test_elbo_samples": num_samples}


def image_figures(model, guide, train, test, history, out) -> None:
    """The default figures of a run folder of an image model: samples, reconstructions,
    training curve, latent embedding and code usage of the first 1,000 test images."""
    out = Path(out)
    device = next(model.parameters()).device
    x_test = test.x[:1000].to(device)
    plots.image_grid(model.sample(100), train.image_shape, out / "samples.png",
                     title="samples from the model")
    plots.reconstructions(model, guide, x_test, train.image_shape, out / "reconstructions.png")
    plots.training_curve(history, out / "training_curve.png")
    codes = encode_all(guide.encode, x_test)
    labels = test.y[:1000] if test.y is not None else None
    plots.embedding(codes, labels, out / "latent_embedding.png")
    plots.code_usage(codes, out / "code_usage.png")


# -- the entry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZooEntry:
    """A trainable model of the zoo.

    ``build(hyper, data)`` returns ``(model, guide)`` for a :class:`pyro_dgm.data.Dataset`;
    ``hyper`` holds every key of ``defaults`` (overrides validated by :meth:`hyper`).
    ``training`` holds the default ``lr``, ``batch_size`` and ``epochs``.

    Three hooks make a run folder; their defaults suit image VAEs:

    - ``test_metrics(model, guide, test, num_samples) -> dict``: the held-out numbers written
      to ``metrics.json`` after training (default :func:`test_elbo`);
    - ``evaluate(model, guide, test, train, *, iwae_samples, knn, seed, ais_steps=None,
      ais_chains=None) -> dict``: what ``pyro-dgm evaluate`` writes to ``eval.json`` (default
      :func:`pyro_dgm.infer.evaluate`); a hook that cannot run AIS refuses ``ais_steps``;
    - ``figures(model, guide, train, test, history, out)``: the PNG figures of a run folder
      (default :func:`image_figures`).
    """

    name: str
    description: str
    model: str
    guide: str
    build: Callable
    objective: str
    objectives: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    datasets: tuple[str, ...] = ("bars", "mnist", "freyfaces")
    status: str = "ready"
    source: str = ""
    test_metrics: Callable = test_elbo
    evaluate: Callable = evaluate
    figures: Callable = image_figures

    def hyper(self, overrides: dict | None = None) -> dict:
        """The defaults updated with ``overrides``; an unknown key lists the valid ones."""
        return check_settings(f"model {self.name!r}", "hyper-parameter", self.defaults,
                              overrides or {})


ZOO: Registry[ZooEntry] = Registry("model")


def register(entry: ZooEntry) -> ZooEntry:
    """Add ``entry`` to the zoo under its name."""
    return ZOO.register(entry.name, entry)


def get_entry(name: str) -> ZooEntry:
    """The zoo entry called ``name``; an unknown name lists the valid ones."""
    return ZOO[name]
