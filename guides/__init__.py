"""Guides: amortized inference programs ``forward(x)`` over a model's latent sites, with ``encode(x)``."""

from pyro_dgm.guides.gaussian import GaussianEncoder
from pyro_dgm.guides.kumaraswamy import KumaraswamyEncoder
from pyro_dgm.guides.sbn import SBNRecognition

__all__ = ["GaussianEncoder", "KumaraswamyEncoder", "SBNRecognition"]
