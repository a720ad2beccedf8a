"""The Gaussian-latent VAE (Kingma & Welling 2014), seed ``000``: ``vae``."""

from __future__ import annotations

from pyro_dgm.guides import GaussianEncoder
from pyro_dgm.models import VAE
from pyro_dgm.zoo.core import ZooEntry, register


def build_vae(hyper: dict, data) -> tuple:
    model = VAE(data.dim, hyper["z_dim"], hyper["hidden"], data.likelihood)
    guide = GaussianEncoder(data.dim, hyper["z_dim"], hyper["hidden"])
    return model, guide


register(ZooEntry(
    name="vae",
    description="Gaussian-latent VAE (Kingma & Welling 2014)",
    model="pyro_dgm.models.VAE", guide="pyro_dgm.guides.GaussianEncoder",
    build=build_vae,
    objective="elbo", objectives=("elbo", "meanfield", "tracegraph", "iwae", "rws"),
    defaults={"z_dim": 50, "hidden": 500},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
    source="seed 000, 'The Variational Autoencoder'",
))
