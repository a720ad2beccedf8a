"""The zoo: a registry from a model's name to its model, guide, objectives and defaults.

Each entry builds a ``(model, guide)`` pair for a data set from hyper-parameters; the defaults
are the published ones where the seed or paper gives them. Later models register themselves
here with :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides import GaussianEncoder, KumaraswamyEncoder
from pyro_dgm.models import SBVAE, VAE


@dataclass(frozen=True)
class ZooEntry:
    """A trainable model of the zoo.

    ``build(hyper, data)`` returns ``(model, guide)`` for a :class:`pyro_dgm.data.Dataset`;
    ``hyper`` holds every key of ``defaults`` (overrides validated by :meth:`hyper`).
    ``training`` holds the default ``lr``, ``batch_size`` and ``epochs``.

    Models whose data are not images, or whose programs take more than ``x``, replace the
    CLI's image-VAE defaults with three optional hooks:

    - ``test_metrics(model, guide, test, num_samples) -> dict``: the held-out numbers written
      to ``metrics.json`` after training (default: ``{"test_elbo": ...}`` from importance
      weights);
    - ``evaluate(model, guide, test, train, *, iwae_samples, knn, seed) -> dict``: what
      ``pyro-dgm evaluate`` writes to ``eval.json`` (default :func:`pyro_dgm.infer.evaluate`);
    - ``figures(model, guide, train, test, history, out)``: the PNG figures of a run folder
      (default: samples, reconstructions, training curve, latent embedding, code usage).
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
    test_metrics: Callable | None = None
    evaluate: Callable | None = None
    figures: Callable | None = None

    def hyper(self, overrides: dict | None = None) -> dict:
        """The defaults updated with ``overrides``; an unknown key lists the valid ones."""
        overrides = overrides or {}
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise PyroDGMError(f"model {self.name!r} has no hyper-parameter(s) {sorted(unknown)}; "
                               f"valid ones are {sorted(self.defaults)}")
        for key, value in overrides.items():
            default = self.defaults[key]
            expected = (int, float) if isinstance(default, float) else type(default)
            if isinstance(value, bool) or not isinstance(value, expected):
                raise PyroDGMError(f"hyper-parameter {key!r} of model {self.name!r} takes a "
                                   f"{type(default).__name__}, got {value!r}")
            if isinstance(value, (int, float)) and not value > 0:
                raise PyroDGMError(f"hyper-parameter {key!r} of model {self.name!r} must be "
                                   f"positive, got {value!r}")
        return {**self.defaults, **overrides}


ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    ZOO[entry.name] = entry
    return entry


def get_entry(name: str) -> ZooEntry:
    """The zoo entry called ``name``; an unknown name lists the valid ones."""
    if name not in ZOO:
        raise PyroDGMError(f"unknown model {name!r}; the zoo has: {', '.join(sorted(ZOO))}")
    return ZOO[name]


def _build_vae(hyper: dict, data) -> tuple:
    model = VAE(data.dim, hyper["z_dim"], hyper["hidden"], data.likelihood)
    guide = GaussianEncoder(data.dim, hyper["z_dim"], hyper["hidden"])
    return model, guide


def _build_sbvae(hyper: dict, data) -> tuple:
    model = SBVAE(data.dim, hyper["truncation"], hyper["alpha0"], hyper["hidden"], data.likelihood)
    guide = KumaraswamyEncoder(data.dim, hyper["truncation"], hyper["hidden"],
                               taylor_terms=hyper["kl_terms"])
    return model, guide


register(ZooEntry(
    name="vae",
    description="Gaussian-latent VAE (Kingma & Welling 2014)",
    model="pyro_dgm.models.VAE", guide="pyro_dgm.guides.GaussianEncoder",
    build=_build_vae,
    objective="elbo", objectives=("elbo", "meanfield", "tracegraph", "iwae"),
    defaults={"z_dim": 50, "hidden": 500},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
    source="seed 000, 'The Variational Autoencoder'",
))
register(ZooEntry(
    name="sbvae",
    description="stick-breaking VAE with Kumaraswamy posteriors (Nalisnick & Smyth 2017)",
    model="pyro_dgm.models.SBVAE", guide="pyro_dgm.guides.KumaraswamyEncoder",
    build=_build_sbvae,
    objective="meanfield", objectives=("meanfield", "elbo", "tracegraph", "iwae"),
    defaults={"truncation": 50, "alpha0": 5.0, "hidden": 500, "kl_terms": 10},
    training={"lr": 3e-4, "batch_size": 100, "epochs": 60},
    source="seed 000, 'MODEL #1: Stick-Breaking Variational Autoencoder'",
))
