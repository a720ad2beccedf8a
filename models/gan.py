r"""The generator of a generative adversarial network (Goodfellow et al. 2014) as a Pyro model;
seed ``004`` ("z ~ p(z), x = f_theta(z) ... an implicit or likelihood-free generative model
... trained by learning a second network, a discriminator, which performs the role of a
two-sample test").

.. math::

    z_n \sim \mathcal N(0, I_{d_z}), \qquad \tilde x_n = G_\theta(z_n), \qquad
    x_n \sim \mathcal N(\tilde x_n, \sigma^2 I),

with :math:`G_\theta` an MLP (``hidden`` sizes, ReLU; a sigmoid last for images, whose grey
levels lie in [0, 1]). The GAN itself is the implicit model :math:`x = G_\theta(z)`; the
Gaussian observation site ``x`` of scale :math:`\sigma` = ``obs_scale`` exists only so that the
program is a proper Pyro model with a density that annealed importance sampling can score, as
Wu et al. (2017, "On the quantitative analysis of decoder-based generative models") evaluate
GANs, with the same Gaussian observation model on MNIST grey levels. Training never reads
``obs_scale``: the ``adversarial`` objective (:mod:`pyro_dgm.infer.adversarial`) compares the
generator's outputs :math:`G_\theta(z)`, the mean of site ``x``, with the data.
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.nn import MLP


class Generator(PyroModule):
    """``z ~ N(0, I)``, ``x ~ N(G(z), obs_scale^2 I)`` with ``G`` an MLP
    ``z_dim -> hidden... -> x_dim`` (``sigmoid`` last when ``images``)."""

    def __init__(self, x_dim: int, z_dim: int = 100, hidden: tuple[int, ...] = (256, 256),
                 images: bool = False, obs_scale: float = 0.1):
        super().__init__(name="generator")
        self.z_dim, self.obs_scale, self.images = z_dim, obs_scale, images
        self.net = MLP([z_dim, *hidden, x_dim])

    def prior(self, n: int) -> dist.Distribution:
        """``p(z) = N(0, I)`` for ``n`` examples."""
        zeros = torch.zeros(n, self.z_dim, device=self.net[0].weight.device)
        return dist.Normal(zeros, 1.0).to_event(1)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """``G(z)``: the generated example, in [0, 1] for images."""
        out = self.net(z)
        return torch.sigmoid(out) if self.images else out

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", self.prior(x.shape[0]))
            pyro.sample("x", dist.Normal(self.generate(z), self.obs_scale).to_event(1), obs=x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` draws of ``G(z)``, without observation noise."""
        return self.generate(self.prior(n).sample())
