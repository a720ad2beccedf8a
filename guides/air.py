r"""AIR's inference network: a recurrent network that attends to one object per step.

Eslami et al. (2016); seed ``004`` ("inference: counting and locating": the inference network
is a recurrent neural network). At step ``t`` an LSTM reads the image (through an embedding
:math:`e(x)` computed once per image; ``embed=0`` feeds the raw pixels, as in AIR) and the previous
step's latents, :math:`h_t = \mathrm{LSTM}(h_{t-1}, [e(x), z^{where}_{t-1}, z^{what}_{t-1}, z^{pres}_{t-1}])`,
and proposes

.. math::

    q(z^{pres}_t \mid x, z_{<t}) = \mathrm{Bernoulli}(z^{pres}_{t-1}\, \sigma(f^{pres}(h_t))), \qquad
    q(z^{where}_t \mid \cdot) = \mathcal N(\mu^{where}(h_t), \sigma^{where}(h_t)^2),

    q(z^{what}_t \mid \cdot) = \mathcal N(\mu^{what}(y_t), \sigma^{what}(y_t)^2), \qquad
    y_t = \mathrm{read}(x, z^{where}_t),

the glimpse :math:`y_t` being read back through the spatial transformer at the proposed
position. ``z_where``/``z_what`` are reparameterized; ``z_pres`` is discrete and gets a
score-function gradient under ``TraceGraph_ELBO``, with a **data-dependent baseline** (Mnih &
Gregor 2014) per step: an MLP of the (detached) LSTM state and the image's ink, fitted to the
downstream cost by Pyro (``infer={"baseline": {"nn_baseline": ..., "nn_baseline_input": ...}}``).
The zoo's default objective, ``count-enum`` (:mod:`pyro_dgm.infer.count_enum`), needs neither:
it sums the count out of the ELBO exactly and ignores the baselines.

The baselines learn ``baseline_lr_scale`` times faster than the rest (Pyro's AIR example uses
lr 1e-4 and baseline lr 1e-1; the zoo, lr 1e-3 and scale 100): the Trainer has one Adam
learning rate, and Adam's step does not depend on the gradient's scale, so the baseline network
stores its weights divided by ``baseline_lr_scale`` and multiplies them back in ``forward``
(:class:`ScaledLinear`): the same network, moved ``baseline_lr_scale`` times further per step.

Shapes broadcast over extra leading (particle) dimensions, as the model's do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.nn import MLP, read_glimpse


class ScaledLinear(nn.Module):
    """``y = k (W' x + b')`` with ``W' = W / k``: a linear layer whose Adam steps are ``k`` times larger."""

    def __init__(self, n_in: int, n_out: int, k: float):
        super().__init__()
        reference = nn.Linear(n_in, n_out)
        self.k = float(k)
        self.weight = nn.Parameter(reference.weight.detach() / self.k)
        self.bias = nn.Parameter(reference.bias.detach() / self.k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.k * self.weight, self.k * self.bias)


class Baseline(nn.Module):
    """A per-example baseline ``b(h_t, ink)`` (shape (...,)) for one presence site."""

    def __init__(self, n_in: int, hidden: int, k: float):
        super().__init__()
        self.net = nn.Sequential(ScaledLinear(n_in, hidden, k), nn.ReLU(), ScaledLinear(hidden, 1, k))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs).squeeze(-1)


class AIRGuide(PyroModule):
    """The recurrent inference network of AIR over sites ``z_pres_t``, ``z_where_t``, ``z_what_t``."""

    def __init__(self, canvas: int = 50, steps: int = 3, glimpse: int = 28, z_what_dim: int = 20,
                 rnn_hidden: int = 256, hidden: int = 200, baseline_hidden: int = 200,
                 baseline_lr_scale: float = 100.0, where_loc: tuple = (0.5, 0.0, 0.0),
                 embed: int = 256):
        super().__init__(name="air_guide")
        self.canvas, self.steps, self.glimpse, self.z_what_dim = canvas, steps, glimpse, z_what_dim
        x_dim, latent_dim = canvas * canvas, 3 + z_what_dim + 1
        # embed > 0: the LSTM reads a learned embedding of the image, computed once per image,
        # instead of its raw pixels at every step (the "embed net" option of Pyro's AIR example;
        # 1.5-1.8x faster steps at the zoo's sizes); embed = 0: the raw pixels, as in AIR
        self.embed = nn.Sequential(nn.Linear(x_dim, embed), nn.ReLU()) if embed else nn.Identity()
        self.rnn = nn.LSTMCell((embed or x_dim) + latent_dim, rnn_hidden)
        self.predict = MLP([rnn_hidden, hidden, 1 + 3 + 3])
        self.encoder = MLP([glimpse * glimpse, hidden, 2 * z_what_dim])
        self.baselines = nn.ModuleList(
            [Baseline(rnn_hidden + 1, baseline_hidden, baseline_lr_scale) for _ in range(steps)])
        self.register_buffer("where_loc", torch.tensor(where_loc, dtype=torch.float32))
        self.rnn_hidden = rnn_hidden

    # -- one step of the recurrence ------------------------------------------------------------
    def initial_state(self, x: torch.Tensor) -> dict:
        zeros = x.new_zeros(x.shape[:-1])
        return {"h": x.new_zeros(*x.shape[:-1], self.rnn_hidden),
                "c": x.new_zeros(*x.shape[:-1], self.rnn_hidden),
                "z_pres": zeros + 1, "z_where": x.new_zeros(*x.shape[:-1], 3),
                "z_what": x.new_zeros(*x.shape[:-1], self.z_what_dim)}

    def propose_pres_where(self, features: torch.Tensor, state: dict):
        """Advance the LSTM on the image ``features`` (:attr:`embed` of it) and the previous
        step; return (new h, c, presence probability, z_where loc, z_where scale)."""
        previous = (state["z_where"], state["z_what"], state["z_pres"].unsqueeze(-1))
        joined_shape = torch.broadcast_shapes(features.shape[:-1], state["h"].shape[:-1],
                                              *(t.shape[:-1] for t in previous))
        flat = lambda t: t.expand(*joined_shape, t.shape[-1]).reshape(-1, t.shape[-1])  # noqa: E731
        inputs = torch.cat([flat(features), *(flat(t) for t in previous)], -1)
        h, c = self.rnn(inputs, (flat(state["h"]), flat(state["c"])))
        out = self.predict(h)
        unflat = lambda t: t.reshape(*joined_shape, *t.shape[1:])  # noqa: E731
        pres_prob = torch.sigmoid(out[:, 0])
        where_loc = self.where_loc + out[:, 1:4]
        where_scale = F.softplus(out[:, 4:7] - 2.0) + 1e-3
        return unflat(h), unflat(c), unflat(pres_prob), unflat(where_loc), unflat(where_scale)

    def propose_what(self, x: torch.Tensor, z_where: torch.Tensor):
        """Read the glimpse at ``z_where`` (inverse transform) and return z_what's (loc, scale)."""
        image = x.unflatten(-1, (self.canvas, self.canvas))
        glimpse = read_glimpse(image, z_where, self.glimpse).flatten(-2)
        loc, scale = self.encoder(glimpse).chunk(2, -1)
        return loc, F.softplus(scale) + 1e-3

    @staticmethod
    def baseline_input(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """What the baselines see (detached): the LSTM state, which summarizes the image and the
        steps so far, and the image's total ink (in units of 100 pixels), which sets the scale
        of the reconstruction cost downstream of a presence decision."""
        ink = x.sum(-1, keepdim=True).expand(*h.shape[:-1], 1) / 100.0
        return torch.cat([h, ink], -1).detach()

    # -- the guide program ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, batch_size: int | None = None) -> None:
        """The guide program (``batch_size`` is the model's generation argument, unused here)."""
        state, features = self.initial_state(x), self.embed(x)
        with pyro.plate("data", x.shape[0]):
            for t in range(self.steps):
                h, c, pres_prob, where_loc, where_scale = self.propose_pres_where(features, state)
                baseline = {"nn_baseline": self.baselines[t],
                            "nn_baseline_input": self.baseline_input(x, h)}
                z_pres = pyro.sample(f"z_pres_{t}", dist.Bernoulli(pres_prob * state["z_pres"]),
                                     infer={"baseline": baseline})
                present = z_pres.bool()
                z_where = pyro.sample(f"z_where_{t}",
                                      dist.Normal(where_loc, where_scale).to_event(1).mask(present))
                what_loc, what_scale = self.propose_what(x, z_where)
                z_what = pyro.sample(f"z_what_{t}",
                                     dist.Normal(what_loc, what_scale).to_event(1).mask(present))
                state = {"h": h, "c": c, "z_pres": z_pres, "z_where": z_where, "z_what": z_what}

    # -- deterministic summaries ---------------------------------------------------------------
    @torch.no_grad()
    def scene(self, x: torch.Tensor) -> dict:
        """The most probable scene, step by step (presence if its probability > 1/2, the means):
        ``{"z_pres": (B, N), "z_where": (B, N, 3), "z_what": (B, N, D), "pres_prob": (B, N)}``."""
        state, features = self.initial_state(x), self.embed(x)
        steps = {"z_pres": [], "z_where": [], "z_what": [], "pres_prob": []}
        for _ in range(self.steps):
            h, c, pres_prob, z_where, _ = self.propose_pres_where(features, state)
            pres_prob = pres_prob * state["z_pres"]
            z_pres = (pres_prob > 0.5).float()
            z_what, _ = self.propose_what(x, z_where)
            state = {"h": h, "c": c, "z_pres": z_pres, "z_where": z_where, "z_what": z_what}
            for key, value in (("z_pres", z_pres), ("z_where", z_where), ("z_what", z_what),
                               ("pres_prob", pres_prob)):
                steps[key].append(value)
        return {key: torch.stack(values, 1) for key, values in steps.items()}

    def count(self, x: torch.Tensor) -> torch.Tensor:
        """The inferred number of objects (B,) of the most probable scene."""
        return self.scene(x)["z_pres"].sum(-1).long()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """A deterministic summary of q: each step's presence probability and z_where, flattened."""
        scene = self.scene(x)
        return torch.cat([scene["pres_prob"], scene["z_where"].flatten(-2)], -1)


__all__ = ["AIRGuide", "Baseline", "ScaledLinear"]
