"""The stick-breaking VAE with Kumaraswamy posteriors (Nalisnick & Smyth 2017), seed ``000``:
``sbvae``."""

from __future__ import annotations

from pyro_dgm.guides import KumaraswamyEncoder
from pyro_dgm.models import SBVAE
from pyro_dgm.zoo.core import ZooEntry, register


def build_sbvae(hyper: dict, data) -> tuple:
    model = SBVAE(data.dim, hyper["truncation"], hyper["alpha0"], hyper["hidden"], data.likelihood)
    guide = KumaraswamyEncoder(data.dim, hyper["truncation"], hyper["hidden"],
                               taylor_terms=hyper["kl_terms"])
    return model, guide


register(ZooEntry(
    name="sbvae",
    description="stick-breaking VAE with Kumaraswamy posteriors (Nalisnick & Smyth 2017)",
    model="pyro_dgm.models.SBVAE", guide="pyro_dgm.guides.KumaraswamyEncoder",
    build=build_sbvae,
    objective="meanfield", objectives=("meanfield", "elbo", "tracegraph", "iwae"),
    # kl_terms: None = the accurate KL(Kumaraswamy || Beta) under `meanfield`; 10 = the paper's
    # 10-term Taylor series, which is always too low (pyro_dgm.distributions.kumaraswamy)
    defaults={"truncation": 50, "alpha0": 5.0, "hidden": 500, "kl_terms": None},
    training={"lr": 3e-4, "batch_size": 100, "epochs": 60},
    source="seed 000, 'MODEL #1: Stick-Breaking Variational Autoencoder'",
))
