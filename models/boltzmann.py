r"""Boltzmann machines with binary units, seed ``002`` ("undirected models"): the restricted
Boltzmann machine (RBM) and the deep Boltzmann machine (DBM, Salakhutdinov & Hinton 2009).

A DBM over layers :math:`x_0 = v, x_1 = h^1, \dots, x_L = h^L` of binary units, with weights
:math:`W_l` between layers :math:`l-1` and :math:`l` and biases :math:`b_l`, has the energy

.. math::

    E(x) = -\sum_{l=0}^{L} b_l^\top x_l - \sum_{l=1}^{L} x_l^\top W_l\, x_{l-1}, \qquad
    P(v) = \frac{P^*(v)}{Z(\theta)} = \frac{1}{Z(\theta)} \sum_{h} e^{-E(v, h)},

and each layer, given its two neighbours, is a product of Bernoullis,

.. math:: p(x_l = 1 \mid x_{l-1}, x_{l+1}) = \sigma(b_l + W_l x_{l-1} + W_{l+1}^\top x_{l+1}),

so a Gibbs sweep samples the odd layers given the even ones, then the even layers given the
odd ones. The RBM is the DBM with one hidden layer (``L = 1``, :math:`W = W_1`, :math:`b = b_0`,
:math:`c = b_1`); its hidden units sum out, :math:`P^*(v) = e^{-F(v)}` with the free energy

.. math:: F(v) = -b^\top v - \sum_j \operatorname{softplus}(c_j + W_j v).

The partition function :math:`Z(\theta)` is intractable: the programs' factors are the
**unnormalized** log densities, and :math:`\log Z` is estimated by annealed importance sampling
(:mod:`pyro_dgm.infer.ais_gibbs`). Learning is by stochastic approximation
(:mod:`pyro_dgm.infer.pcd`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.errors import PyroDGMError

States = list  # one tensor (chains, size_l) per layer, visible first


class DBM(PyroModule):
    r"""A deep Boltzmann machine ``visible - layers[0] - layers[1] - ...`` with binary units.

    ``forward(x)`` is the program

    .. math:: h^l_n \sim \mathrm{Bernoulli}(\tfrac12)^{\otimes H_l}, \qquad
              \text{factor}\ x:\ -E(x_n, h_n) + \textstyle\sum_l H_l \log 2

    in ``plate("data")``: the uniform draws and the factor together give the log density
    :math:`\log P^*(x_n, h_n) = -E(x_n, h_n)`, **without** :math:`-\log Z`, so the ELBO of the
    mean-field guide (:class:`pyro_dgm.guides.boltzmann.MeanFieldDBM`) is
    :math:`\mathbb E_q[-E] + H(q)`, the variational bound of Salakhutdinov & Hinton (2009) up
    to :math:`\log Z`. ``sample_steps`` Gibbs sweeps from :meth:`start_states` make
    ``sample(n)``.
    """

    def __init__(self, visible: int, layers=(500, 1000), init_scale: float = 0.01,
                 sample_steps: int = 1000, visible_logits: torch.Tensor | None = None):
        super().__init__(name="dbm")
        layers = list(layers)
        if not layers or any(not isinstance(h, int) or h < 1 for h in layers):
            raise PyroDGMError(f"layers must be a non-empty list of positive whole numbers, "
                               f"got {layers!r}")
        if not isinstance(sample_steps, int) or sample_steps < 1:
            raise PyroDGMError(f"sample_steps must be a positive whole number, got {sample_steps!r}")
        self.sizes = [visible, *layers]
        self.sample_steps = sample_steps
        self.weights = nn.ParameterList(
            [nn.Parameter(init_scale * torch.randn(upper, lower))
             for lower, upper in zip(self.sizes[:-1], self.sizes[1:])])
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(size)) for size in self.sizes])
        if visible_logits is None:
            visible_logits = torch.zeros(visible)
        elif tuple(visible_logits.shape) != (visible,):
            raise PyroDGMError(f"visible_logits must have {visible} entries, "
                               f"got shape {tuple(visible_logits.shape)}")
        # the training pixels' logits: the visible biases' start (Hinton 2010, section 8) and
        # the base model of AIS (Salakhutdinov & Murray 2008)
        self.register_buffer("base_visible_bias", visible_logits.detach().clone().float())
        with torch.no_grad():
            self.biases[0].copy_(self.base_visible_bias)

    @property
    def depth(self) -> int:
        """``L``, the number of hidden layers."""
        return len(self.sizes) - 1

    # -- energy and conditionals ----------------------------------------------------------
    def energy(self, states: States) -> torch.Tensor:
        r""":math:`E(x)` of each row of the layer states (or of mean-field means)."""
        energy = -sum(x @ b for x, b in zip(states, self.biases))
        for l in range(1, self.depth + 1):
            energy = energy - ((states[l] @ self.weights[l - 1]) * states[l - 1]).sum(-1)
        return energy

    def layer_input(self, states: States, l: int, scale: float = 1.0,
                    up: float = 1.0) -> torch.Tensor:
        r""":math:`\beta\,(b_l + u\,W_l x_{l-1} + W_{l+1}^\top x_{l+1})`, the total input to
        layer ``l`` from its neighbours, at inverse temperature ``scale`` (:math:`\beta`),
        with the input from below counted ``up`` times (2 in the doubled bottom-up pass)."""
        total = self.biases[l]
        if l > 0:
            total = total + up * states[l - 1] @ self.weights[l - 1].T
        if l < self.depth:
            total = total + states[l + 1] @ self.weights[l]
        return scale * total

    def gibbs_sweep(self, states: States, scale: float = 1.0,
                    base: list[torch.Tensor] | None = None) -> States:
        r"""One sweep: every odd layer given the even ones, then every even layer given the odd
        ones, at inverse temperature ``scale``. ``base`` (one bias vector per layer) adds
        :math:`(1-\beta)\, a_l` to each layer's input (the AIS path of
        :mod:`pyro_dgm.infer.ais_gibbs`)."""
        states = list(states)
        for parity in (1, 0):
            for l in range(parity, self.depth + 1, 2):
                logits = self.layer_input(states, l, scale)
                if base is not None:
                    logits = logits + (1 - scale) * base[l]
                states[l] = torch.bernoulli(torch.sigmoid(logits))
        return states

    def noise(self, n: int) -> States:
        """``n`` uniform random states of every layer (the persistent chains' start)."""
        device = self.biases[0].device
        return [torch.bernoulli(torch.full((n, size), 0.5, device=device)) for size in self.sizes]

    def start_states(self, n: int) -> States:
        r"""``n`` starts of sampling chains: visible units drawn from the training pixels' means
        (:math:`\sigma` of ``base_visible_bias``), hidden units off. From uniform noise the
        chains of a trained DBM can settle where the first hidden layer is off (the top layer's
        random input silences it) and stay there for thousands of sweeps; from the data's pixel
        statistics they reach the digits (README, "Boltzmann machines and AIS")."""
        device = self.biases[0].device
        visible = torch.bernoulli(torch.sigmoid(self.base_visible_bias).expand(n, -1))
        return [visible, *(torch.zeros(n, size, device=device) for size in self.sizes[1:])]

    @torch.no_grad()
    def gibbs_chain(self, n: int, steps: int, start: States | None = None) -> States:
        """The states after ``steps`` Gibbs sweeps of ``n`` chains from ``start``
        (default :meth:`start_states`)."""
        states = self.start_states(n) if start is None else list(start)
        for _ in range(steps):
            states = self.gibbs_sweep(states)
        return states

    @torch.no_grad()
    def visible_means(self, states: States) -> torch.Tensor:
        r""":math:`p(v = 1 \mid h^1)` of the chain states: grey images for plots."""
        return torch.sigmoid(self.layer_input(states, 0))

    # -- the program ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            hidden = [pyro.sample(f"h{l}", dist.Bernoulli(x.new_full((size,), 0.5)).to_event(1))
                      for l, size in enumerate(self.sizes[1:], start=1)]
            log_uniform = sum(self.sizes[1:]) * math.log(2)
            pyro.factor("x", -self.energy([x, *hidden]) + log_uniform)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` binary images: the visible layer after ``sample_steps`` Gibbs sweeps."""
        return self.gibbs_chain(n, self.sample_steps)[0]


class RBM(DBM):
    r"""A restricted Boltzmann machine, ``visible`` binary units and ``hidden`` binary units:
    the one-layer :class:`DBM` with :math:`W = W_1`, visible biases :math:`b` and hidden
    biases :math:`c`.

    ``forward(x)`` is the program ``factor x: -F(x_n)`` in ``plate("data")``, the
    unnormalized log marginal :math:`\log P^*(x_n)` with the hidden units summed out and
    **without** :math:`-\log Z` (estimated by AIS); its guide is empty
    (:class:`pyro_dgm.guides.empty.EmptyGuide`): the exact conditional
    :math:`p(h \mid v)` needs no guide.
    """

    def __init__(self, visible: int, hidden: int = 500, init_scale: float = 0.01,
                 sample_steps: int = 1000, visible_logits: torch.Tensor | None = None):
        super().__init__(visible, [hidden], init_scale=init_scale, sample_steps=sample_steps,
                         visible_logits=visible_logits)

    @property
    def W(self) -> torch.Tensor:
        return self.weights[0]

    @property
    def b(self) -> torch.Tensor:
        return self.biases[0]

    @property
    def c(self) -> torch.Tensor:
        return self.biases[1]

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        r""":math:`F(v) = -b^\top v - \sum_j \operatorname{softplus}(c_j + W_j v)` of each row."""
        return -(v @ self.b) - F.softplus(v @ self.W.T + self.c).sum(-1)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        r""":math:`p(h_j = 1 \mid v) = \sigma(c_j + W_j v)`."""
        return torch.sigmoid(v @ self.W.T + self.c)

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.factor("x", -self.free_energy(x))
