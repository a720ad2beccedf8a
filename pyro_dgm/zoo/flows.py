"""The VAE with an amortized normalizing-flow guide, seed ``001`` ("Normalizing flows",
"Householder Flow", "Sylvester Normalizing Flows"): ``vae-flow`` with planar, IAF,
Householder and Sylvester (orthogonal, Householder, triangular) flows."""

from __future__ import annotations

from pyro_dgm.guides import GaussianEncoder
from pyro_dgm.guides.flow import FlowGuide
from pyro_dgm.models import VAE
from pyro_dgm.zoo.core import ZooEntry, register


def build_vae_flow(hyper: dict, data) -> tuple:
    model = VAE(data.dim, hyper["z_dim"], hyper["hidden"], data.likelihood)
    encoder = GaussianEncoder(data.dim, hyper["z_dim"], hyper["hidden"])
    return model, FlowGuide(encoder, hyper["flow"], hyper["flow_length"])


register(ZooEntry(
    name="vae-flow",
    description="VAE with an amortized flow guide: planar, iaf, householder, sylvester-o/h/t",
    model="pyro_dgm.models.VAE", guide="pyro_dgm.guides.flow.FlowGuide",
    build=build_vae_flow,
    objective="elbo", objectives=("elbo", "iwae"),
    defaults={"z_dim": 50, "hidden": 500, "flow": "sylvester-o", "flow_length": 4},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
    source="seed 001, 'Normalizing flows', 'Householder Flow', 'Sylvester Normalizing Flows'",
))
