"""VAEs with a VampPrior of learned pseudo-inputs (Tomczak & Welling 2018), seed ``001`` ("VAE
with a VampPrior"): ``vamp-vae`` (one latent layer) and ``vamp-hvae`` (two, L = 2)."""

from __future__ import annotations

import torch

from pyro_dgm.guides import GaussianEncoder
from pyro_dgm.guides.hvae import HVAEGuide
from pyro_dgm.models.vamp import VampHVAE, VampVAE
from pyro_dgm.zoo.core import ZooEntry, register


def pseudo_input_init(data, n_pseudo: int) -> torch.Tensor:
    """``n_pseudo`` training images (fixed draw) as the pseudo-inputs' starting point."""
    generator = torch.Generator().manual_seed(0)
    index = torch.randint(data.x.shape[0], (n_pseudo,), generator=generator)
    return data.x[index]


def build_vamp_vae(hyper: dict, data) -> tuple:
    encoder = GaussianEncoder(data.dim, hyper["z_dim"], hyper["hidden"])
    model = VampVAE(data.dim, encoder, hyper["z_dim"], hyper["hidden"], data.likelihood,
                    hyper["pseudo_inputs"], pseudo_input_init(data, hyper["pseudo_inputs"]))
    return model, encoder


def build_vamp_hvae(hyper: dict, data) -> tuple:
    guide = HVAEGuide(data.dim, hyper["z1_dim"], hyper["z2_dim"], hyper["hidden"])
    model = VampHVAE(data.dim, guide.z2_encoder, hyper["z1_dim"], hyper["z2_dim"],
                     hyper["hidden"], data.likelihood, hyper["pseudo_inputs"],
                     pseudo_input_init(data, hyper["pseudo_inputs"]))
    return model, guide


register(ZooEntry(
    name="vamp-vae",
    description="VAE with a VampPrior of learned pseudo-inputs (Tomczak & Welling 2018)",
    model="pyro_dgm.models.vamp.VampVAE", guide="pyro_dgm.guides.GaussianEncoder",
    build=build_vamp_vae,
    objective="elbo", objectives=("elbo", "iwae"),
    defaults={"z_dim": 40, "hidden": 300, "pseudo_inputs": 500},
    training={"lr": 5e-4, "batch_size": 100, "epochs": 60},
    source="seed 001, 'VAE with a VampPrior'",
))
register(ZooEntry(
    name="vamp-hvae",
    description="two-level hierarchical VAE (L = 2) with a VampPrior on z2 (Tomczak & Welling 2018)",
    model="pyro_dgm.models.vamp.VampHVAE", guide="pyro_dgm.guides.hvae.HVAEGuide",
    build=build_vamp_hvae,
    objective="elbo", objectives=("elbo", "iwae"),
    defaults={"z1_dim": 40, "z2_dim": 40, "hidden": 300, "pseudo_inputs": 500},
    training={"lr": 5e-4, "batch_size": 100, "epochs": 60},
    source="seed 001, 'VAE with a VampPrior', HVAE (L = 2)",
))
