r"""The sigmoid belief network (Neal, 1992): a Helmholtz machine's generative model.

Seed ``004`` ("Wake-sleep", "Reweighted wake-sleep"), after Bornschein & Bengio (2015): ``L``
layers of binary latents above the pixels, each layer a logistic regression on the one above,

.. math::

    h^{(L)}_{n} \sim \mathrm{Bernoulli}\big(\sigma(b^{(L)})\big), \qquad
    h^{(l)}_{n} \mid h^{(l+1)}_{n} \sim \mathrm{Bernoulli}\big(\sigma(W^{(l)} h^{(l+1)}_{n} + b^{(l)})\big),

    x_n \mid h^{(1)}_{n} \sim \mathrm{Bernoulli}\big(\sigma(W^{(0)} h^{(1)}_{n} + b^{(0)})\big).

Sites ``h1`` (next to the data) ... ``hL`` (top) and ``x``. The latents are discrete, so no
reparameterization exists: it is trained by wake-sleep, reweighted wake-sleep, score-function
ELBOs with baselines (NVIL), or importance sampling from the prior
(:mod:`pyro_dgm.infer.wake_sleep`), with the layer-wise recognition network
:class:`pyro_dgm.guides.SBNRecognition` as guide. Bornschein & Bengio's MNIST models have
200 units in one layer, or 200-200-200 (and 10 at the top in their deepest model).
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule


def bernoulli_logits(logits: torch.Tensor) -> dist.Distribution:
    """Independent Bernoulli units with ``logits``, one event over the last dimension.

    Argument validation is off so that grey-level pixels can be scored as a Bernoulli
    cross-entropy, as the rest of the zoo does.
    """
    return dist.Bernoulli(logits=logits, validate_args=False).to_event(1)


class SigmoidBeliefNet(PyroModule):
    """``hL ~ Bern(sigmoid(b))``, ``h_l ~ Bern(sigmoid(W h_{l+1} + b))``, ``x ~ Bern(sigmoid(W h1 + b))``.

    ``layers`` lists the latent layer sizes from the data upwards, e.g. ``[200]`` or
    ``[200, 200, 200]``.
    """

    def __init__(self, x_dim: int, layers: list[int] = (200,)):
        super().__init__(name="sbn")
        layers = list(layers)
        if not layers or any(int(size) < 1 for size in layers):
            raise ValueError(f"layers must be a non-empty list of positive sizes, got {layers}")
        self.layers = layers
        self.top_logits = torch.nn.Parameter(torch.zeros(layers[-1]))
        sizes = [x_dim, *layers]  # decoders[l] maps layer l+1 (1-based latent) to layer l
        self.decoders = torch.nn.ModuleList(
            torch.nn.Linear(sizes[l + 1], sizes[l]) for l in range(len(layers)))

    @property
    def sites(self) -> list[str]:
        """Latent site names from the data upwards: ``["h1", ..., "hL"]``."""
        return [f"h{l + 1}" for l in range(len(self.layers))]

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            self._generate(x)

    def _generate(self, x: torch.Tensor | None) -> torch.Tensor:
        """Ancestral sampling from the top layer down; ``x`` observed if given. Returns the
        pixel probabilities' logits."""
        top = self.sites[-1]
        h = pyro.sample(top, bernoulli_logits(self.top_logits.expand(self.layers[-1])))
        for l in reversed(range(1, len(self.layers))):
            h = pyro.sample(self.sites[l - 1], bernoulli_logits(self.decoders[l](h)))
        pixel_logits = self.decoders[0](h)
        pyro.sample("x", bernoulli_logits(pixel_logits), obs=x)
        return pixel_logits

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Pixel probabilities ``E[x | h1]`` for ``n`` ancestral samples of the latents."""
        with pyro.poutine.block(), pyro.plate("data", n):
            return torch.sigmoid(self._generate(None))
