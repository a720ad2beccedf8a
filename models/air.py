r"""Attend, Infer, Repeat: a scene of a variable number of objects (Eslami et al. 2016).

Seed ``004`` ("from one digit to many digits", "inference: counting and locating"). Up to
``N`` steps; step ``t`` decides whether an object is present, where it is, and what it is:

.. math::

    z^{pres}_t \sim \mathrm{Bernoulli}(\rho \, z^{pres}_{t-1}) \quad (z^{pres}_0 := 1), \qquad
    z^{where}_t \sim \mathcal N(\mu_{where}, \sigma_{where}^2), \qquad
    z^{what}_t \sim \mathcal N(0, I),

    \bar x = \min\Big(1, \sum_t z^{pres}_t \, \mathrm{write}\big(g_\theta(z^{what}_t), z^{where}_t\big)\Big),
    \qquad x \sim \mathcal N(\bar x, \sigma_x^2 I).

The factor :math:`z^{pres}_{t-1}` makes presence stop for good after the first absence, so the
number of objects is :math:`n = \sum_t z^{pres}_t` with the truncated-geometric prior
:math:`p(n) \propto \rho^n (1 - \rho)`; ``z_where`` and ``z_what`` of absent steps are masked out
of the joint density (``.mask(z_pres)``). :math:`g_\theta` is the glimpse decoder
``sigmoid(MLP(z_what) + bias)`` and ``write`` the spatial transformer of
:mod:`pyro_dgm.nn.spatial` (``z_where = (scale, x, y)``, scale = glimpse side / canvas side).

Defaults (the zoo's ``air`` entry; measured in ``benchmarks/air_multi_mnist.py``):

- ``pres_prior = 0.1`` (the zoo's; Pyro's AIR example uses 0.01): every object costs
  :math:`-\log 0.1 \approx 2.3` nats, so the model does not spend several steps on one digit;
- ``decoder_bias = -2``: the glimpse starts almost blank (``sigmoid(-2) = 0.12``), so writing an
  object is cheap early on and presence is not switched off before the decoder learns digits;
- ``where_loc = (0.5, 0, 0)``, ``where_scale = (0.05, 1, 1)`` in the zoo: glimpses about half
  the canvas, as narrow in size as the data's digit frames (20 to 28 of 50 pixels), anywhere on
  it; a wider size prior (sd 0.1) let one glimpse cover two overlapping digits more often;
- ``obs_scale = 0.3``: the fixed pixel noise of the Normal likelihood (AIR's);
- ``compose = "clip"``: the glimpses are summed, as in AIR, and the sum is clipped at 1, as ink
  is (``multi-mnist`` with ``overlap="max"`` pastes overlapping digits by the pixel-wise max).
  With AIR's plain sum (``"sum"``) the crossing strokes of two overlapping digits are drawn
  twice as bright, a cost that only a single glimpse over both digits avoids; ``"max"`` is that
  data's rule;
- ``z_what_dim = 20``: enough for one digit (AIR used 50); each extra object costs less, and a
  glimpse that draws two digits at once fits worse.

The program broadcasts over extra leading (particle) dimensions: every shape comes from the
sampled values, not from ``x.size(0)``.
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.nn import MLP, write_glimpse


class AIR(PyroModule):
    """The AIR generative model; sites ``z_pres_t``, ``z_where_t``, ``z_what_t`` (t < N) and ``x``."""

    def __init__(self, canvas: int = 50, steps: int = 3, glimpse: int = 28, z_what_dim: int = 20,
                 hidden: int = 200, pres_prior: float = 0.1, decoder_bias: float = -2.0,
                 where_loc: tuple = (0.5, 0.0, 0.0), where_scale: tuple = (0.05, 1.0, 1.0),
                 obs_scale: float = 0.3, compose: str = "clip"):
        super().__init__(name="air")
        if compose not in COMPOSE:
            raise PyroDGMError(f"unknown compose {compose!r}; valid ones are {', '.join(COMPOSE)}")
        self.compose = compose
        self.canvas, self.steps, self.glimpse, self.z_what_dim = canvas, steps, glimpse, z_what_dim
        self.pres_prior, self.decoder_bias, self.obs_scale = pres_prior, decoder_bias, obs_scale
        self.decoder = MLP([z_what_dim, hidden, glimpse * glimpse])
        self.register_buffer("where_loc", torch.tensor(where_loc, dtype=torch.float32))
        self.register_buffer("where_scale", torch.tensor(where_scale, dtype=torch.float32))

    def decode(self, z_what: torch.Tensor) -> torch.Tensor:
        """``g_theta(z_what)``: glimpses (..., g, g) with pixels in (0, 1)."""
        logits = self.decoder(z_what) + self.decoder_bias
        return torch.sigmoid(logits).unflatten(-1, (self.glimpse, self.glimpse))

    def forward(self, x: torch.Tensor | None, batch_size: int | None = None) -> torch.Tensor:
        """The model program; with ``x=None`` it generates ``batch_size`` scenes. Returns the canvas mean."""
        batch_size = x.shape[0] if x is not None else batch_size
        z_pres = self.where_loc.new_ones(batch_size)
        layers = []
        with pyro.plate("data", batch_size):
            for t in range(self.steps):
                z_pres, z_where, z_what = self.step(t, z_pres)
                written = write_glimpse(self.decode(z_what), z_where, self.canvas)
                layers.append(z_pres[..., None, None] * written)
            layers = torch.stack(torch.broadcast_tensors(*layers))
            mean = COMPOSE[self.compose](layers).flatten(-2)
            pyro.sample("x", dist.Normal(mean, self.obs_scale).to_event(1), obs=x)
        return mean

    def step(self, t: int, previous_pres: torch.Tensor):
        """Sample step ``t``'s presence (0 for good once absent), position and appearance."""
        z_pres = pyro.sample(f"z_pres_{t}", dist.Bernoulli(self.pres_prior * previous_pres))
        present = z_pres.bool()
        where = dist.Normal(self.where_loc, self.where_scale).expand([*z_pres.shape, 3])
        z_where = pyro.sample(f"z_where_{t}", where.to_event(1).mask(present))
        what = dist.Normal(self.where_loc.new_zeros(()), 1.0).expand([*z_pres.shape, self.z_what_dim])
        z_what = pyro.sample(f"z_what_{t}", what.to_event(1).mask(present))
        return z_pres, z_where, z_what

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Mean canvases (n, canvas * canvas) of ``n`` scenes drawn from the prior."""
        return self.forward(None, n)

    def render(self, z_pres: torch.Tensor, z_where: torch.Tensor, z_what: torch.Tensor) -> torch.Tensor:
        """The canvas mean (B, canvas * canvas) of given latents (B, N), (B, N, 3), (B, N, D)."""
        written = write_glimpse(self.decode(z_what), z_where, self.canvas)
        return COMPOSE[self.compose]((z_pres[..., None, None] * written).movedim(-3, 0)).flatten(-2)


COMPOSE = {
    "sum": lambda layers: layers.sum(0),
    "max": lambda layers: layers.amax(0),
    "clip": lambda layers: layers.sum(0).clamp(max=1.0),
}
"""How the written glimpses, stacked on dimension 0, make the canvas: AIR's sum; the pixel-wise
max (how ``multi-mnist`` with ``overlap="max"`` pastes overlapping digits); or the sum
clipped at 1."""


def presence_prior(steps: int, pres_prior: float) -> torch.Tensor:
    r"""The prior over the count implied by the model: :math:`p(n) \propto \rho^n (1 - \rho)`, and
    :math:`p(N) = \rho^N` (no stop after the last step)."""
    counts = torch.arange(steps + 1, dtype=torch.float64)
    probs = pres_prior ** counts * (1 - pres_prior)
    probs[-1] = pres_prior ** steps
    return probs


__all__ = ["AIR", "presence_prior"]
