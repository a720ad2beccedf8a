"""Sigmoid belief nets / Helmholtz machines (Neal 1992) with a recognition network, seed
``004``: ``sbn``, trained by the wake-sleep family (Bornschein & Bengio 2015)."""

from __future__ import annotations

from pyro_dgm.guides import SBNRecognition
from pyro_dgm.models import SigmoidBeliefNet
from pyro_dgm.zoo.core import ZooEntry, register


def build_sbn(hyper: dict, data) -> tuple:
    return SigmoidBeliefNet(data.dim, hyper["layers"]), SBNRecognition(data.dim, hyper["layers"])


register(ZooEntry(
    name="sbn",
    description="sigmoid belief net / Helmholtz machine with binary latent layers (Neal 1992)",
    model="pyro_dgm.models.SigmoidBeliefNet", guide="pyro_dgm.guides.SBNRecognition",
    build=build_sbn,
    objective="rws", objectives=("rws", "wake-sleep", "nvil", "tracegraph", "prior-is"),
    defaults={"layers": [200]},
    training={"lr": 1e-3, "batch_size": 100, "epochs": 60},
    source="seed 004, 'Wake-sleep algorithm', 'Reweighted wake-sleep' (Bornschein & Bengio 2015)",
))
