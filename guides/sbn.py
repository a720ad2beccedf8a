r"""The layer-wise recognition network of a Helmholtz machine (Dayan et al., 1995).

Seed ``004`` ("Wake-sleep"); Bornschein & Bengio (2015). The guide mirrors the sigmoid belief
net bottom-up, each layer a logistic regression on the one below,

.. math::

    q_\phi(h^{(1)}_n \mid x_n) = \mathrm{Bernoulli}\big(\sigma(U^{(1)} x_n + c^{(1)})\big), \qquad
    q_\phi(h^{(l+1)}_n \mid h^{(l)}_n) = \mathrm{Bernoulli}\big(\sigma(U^{(l+1)} h^{(l)}_n + c^{(l+1)})\big),

over the sites ``h1 ... hL`` of :class:`pyro_dgm.models.SigmoidBeliefNet`. Its sites are
discrete and not reparameterizable: the IWAE objective (``RenyiELBO(alpha=0)``) would leave it
with a zero gradient and refuses it.
"""

from __future__ import annotations

import torch

import pyro
from pyro.nn import PyroModule

from pyro_dgm.models.sbn import bernoulli_logits


class SBNRecognition(PyroModule):
    """``q(h1 | x) q(h2 | h1) ... q(hL | h_{L-1})``, sigmoid layers bottom-up."""

    def __init__(self, x_dim: int, layers: list[int] = (200,)):
        super().__init__(name="sbn_recognition")
        layers = list(layers)
        sizes = [x_dim, *layers]
        self.encoders = torch.nn.ModuleList(
            torch.nn.Linear(sizes[l], sizes[l + 1]) for l in range(len(layers)))

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            h = x
            for l, encoder in enumerate(self.encoders):
                h = pyro.sample(f"h{l + 1}", bernoulli_logits(encoder(h)))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``q(h1 = 1 | x)``, the first layer's firing probabilities: the code used by kNN."""
        return torch.sigmoid(self.encoders[0](x))
