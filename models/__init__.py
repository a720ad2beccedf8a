"""Generative models, one module per model: each a Pyro program ``forward(x)`` over site ``x``."""

from pyro_dgm.models.sbvae import SBVAE
from pyro_dgm.models.sbn import SigmoidBeliefNet
from pyro_dgm.models.vae import VAE

__all__ = ["VAE", "SBVAE", "SigmoidBeliefNet"]
