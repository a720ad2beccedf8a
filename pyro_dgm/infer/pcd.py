r"""Learning Boltzmann machines by stochastic approximation (seed ``002``, "stochastic
approximation"): persistent contrastive divergence (Tieleman 2008), contrastive divergence
(Hinton 2002), and the greedy layer-wise pretraining of a DBM (Salakhutdinov & Hinton 2009).

The log-likelihood gradient of a Boltzmann machine is a difference of two expectations of the
energy's gradient,

.. math::

    \nabla_\theta \log P(v) = -\mathbb E_{P(h \mid v)}[\nabla_\theta E(v, h)]
                             + \mathbb E_{P(v', h')}[\nabla_\theta E(v', h')],

the data term and the model term. ``pcd`` estimates the model term at the states of ``chains``
persistent Gibbs chains, moved ``gibbs_steps`` sweeps per update and never restarted; the data
term is exact for an RBM (the free energy :math:`F(v)` sums the hidden units out) and uses the
mean-field guide :math:`Q_\mu(h \mid v)` for a DBM. The loss's gradient is that of the surrogate

.. math::

    S = \sum_{n} \mathcal E(v_n) - \frac{N}{C} \sum_{c=1}^{C} \mathcal E(s_c), \qquad
    \mathcal E = F \text{ (RBM)}, \quad
    \mathcal E(v) = E(v, \mu(v)) = \mathbb E_{Q_\mu}[E(v, h)] \text{ (DBM, } \mu \text{ held fixed)},

with :math:`s_c` the chain states (for a DBM :math:`E(s_c)` at all the chain's layers). Its
**reported value** is the reconstruction cross-entropy of the batch,
:math:`-\sum_n \log p(v_n \mid h^1 = m(v_n))` with :math:`m` the hidden means
(:math:`p(h^1 \mid v)` for an RBM, the mean-field :math:`\mu^1` for a DBM): cheap, in nats,
and falling while the model learns (it is not the likelihood: that is AIS's job).

``cd`` is the same with the chains restarted at the batch for each update (CD-k, RBM only).
Defaults as Tieleman (2008): 100 chains (the batch size), one Gibbs sweep per update.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.objectives import (
    Objective,
    ObjectiveLoss,
    register_objective,
    with_surrogate_gradient,
)


def _whole(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PyroDGMError(f"{what} must be a positive whole number, got {value!r}")
    return value


class StochasticApproximation(ObjectiveLoss):
    """PCD (``persistent=True``) or CD-k over a :class:`~pyro_dgm.models.boltzmann.DBM` or
    :class:`~pyro_dgm.models.boltzmann.RBM`; see the module docstring.

    The chains are buffers ``chain_0`` (visible) ... ``chain_L``, saved in checkpoints; the
    model's ``persistent_chains`` attribute points at their latest states (for figures).
    """

    def __init__(self, model, guide, chains: int = 100, gibbs_steps: int = 1,
                 persistent: bool = True):
        from pyro_dgm.models.boltzmann import DBM, RBM

        if model is not None and not isinstance(model, DBM):
            raise PyroDGMError(f"the {'pcd' if persistent else 'cd'} objective trains Boltzmann "
                               f"machines (rbm, dbm), not {type(model).__name__}")
        self.rbm = isinstance(model, RBM)
        if model is not None and not self.rbm and not hasattr(guide, "mean_field"):
            raise PyroDGMError("a DBM needs its mean-field guide (MeanFieldDBM) for the data term")
        if model is not None and not self.rbm and not persistent:
            raise PyroDGMError("the 'cd' objective trains RBMs only; train a DBM with 'pcd'")
        super().__init__(model, guide)
        self.chains, self.gibbs_steps = _whole(chains, "chains"), _whole(gibbs_steps, "gibbs_steps")
        self.persistent = persistent
        if model is not None:
            for l, state in enumerate(model.noise(chains)):
                self.register_buffer(f"chain_{l}", state)

    def chain_states(self) -> list[torch.Tensor]:
        return [getattr(self, f"chain_{l}") for l in range(len(self.model.sizes))]

    @torch.no_grad()
    def negative_phase(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The chains after ``gibbs_steps`` sweeps: from their last states (PCD, written back)
        or from the first ``chains`` examples of the batch (CD)."""
        if self.persistent:
            states = self.chain_states()
        else:
            start = x[torch.arange(self.chains, device=x.device) % x.shape[0]]
            states = [start, *self.model.noise(self.chains)[1:]]
        for _ in range(self.gibbs_steps):
            states = self.model.gibbs_sweep(states)
        if self.persistent:
            for buffer, state in zip(self.chain_states(), states):
                buffer.copy_(state)
        self.model.persistent_chains = states
        return states

    def hidden_means(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[x, m^1, ...]``: :math:`p(h \\mid v)` for an RBM, the mean-field means for a DBM."""
        if self.rbm:
            return [x, self.model.hidden_probs(x)]
        return self.guide.mean_field(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        chain = self.negative_phase(x)
        with torch.no_grad():
            means = self.hidden_means(x)
        if self.rbm:
            data_term, model_term = model.free_energy(x), model.free_energy(chain[0])
        else:
            data_term, model_term = model.energy(means), model.energy(chain)
        surrogate = data_term.sum() - x.shape[0] * model_term.mean()
        with torch.no_grad():
            logits = model.layer_input(means, 0)
            reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        return with_surrogate_gradient(reconstruction, surrogate)


# Data-parallel: each rank's surrogate is its shard's data term minus (shard size) x the mean
# energy of its own chains, so the summed gradient is the global batch's data term minus N x
# the mean over all ranks' chains: PCD with ``ranks x chains`` persistent chains (each rank's
# buffers, moved by its own noise), or CD-k started at every shard's examples; an unbiased
# estimate of the same model term either way. Not in bfloat16: the gradient is a small
# difference of the data's and the chains' energy statistics, each rounded by about 0.4 %.
CONTRASTIVE_BF16 = ("its gradient is a small difference of the data's and the chains' energy "
                    "statistics, which bfloat16 rounding would swamp")

register_objective(Objective(
    "pcd", "persistent contrastive divergence: stochastic approximation with persistent Gibbs "
           "chains (Tieleman 2008; mean-field data term for a DBM)",
    lambda model, guide, chains, gibbs_steps: StochasticApproximation(
        model, guide, chains, gibbs_steps, persistent=True),
    {"chains": 100, "gibbs_steps": 1}, data_parallel=True, bf16=CONTRASTIVE_BF16,
))
register_objective(Objective(
    "cd", "contrastive divergence CD-k: Gibbs chains restarted at the data (Hinton 2002; RBM)",
    lambda model, guide, chains, gibbs_steps: StochasticApproximation(
        model, guide, chains, gibbs_steps, persistent=False),
    {"chains": 100, "gibbs_steps": 1}, data_parallel=True, bf16=CONTRASTIVE_BF16,
))


@torch.no_grad()
def pretrain_greedy(dbm, data, epochs: int, *, lr: float = 0.05, batch_size: int = 100,
                    seed: int = 0) -> list[float]:
    r"""Greedy layer-wise pretraining of ``dbm`` as a stack of RBMs trained by CD-1 with SGD
    (Hinton et al. 2006), ``epochs`` epochs per layer on the batches of ``data``; returns each
    layer's last-epoch reconstruction cross-entropy per example.

    With two or more hidden layers the bottom RBM doubles its bottom-up input,
    :math:`p(h^1 \mid v) = \sigma(c + 2 W_1 v)`, and the top RBM its top-down input,
    :math:`p(h^{L-1} \mid h^L) = \sigma(b + 2 W_L^\top h^L)`, so that in the composed DBM each
    layer gets half its input from each side (Salakhutdinov & Hinton 2009, section 3.1); the
    RBMs in between are plain. Each RBM reads the layer below as the doubled bottom-up means of
    the data.
    """
    _whole(epochs, "pretrain_epochs")
    generator = torch.Generator().manual_seed(seed)
    depth = dbm.depth
    errors = []
    for l in range(1, depth + 1):
        up = 2.0 if l == 1 and depth > 1 else 1.0
        down = 2.0 if l == depth and depth > 1 else 1.0
        W, lower, upper = dbm.weights[l - 1], dbm.biases[l - 1], dbm.biases[l]
        for _ in range(epochs):
            total, count = 0.0, 0
            for batch in data.batches(batch_size, generator=generator):
                v = batch[0] if isinstance(batch, tuple) else batch
                for k in range(1, l):  # the data's representation at layer l - 1
                    v = torch.sigmoid(2.0 * v @ dbm.weights[k - 1].T + dbm.biases[k])
                h0 = torch.sigmoid(up * v @ W.T + upper)
                logits = down * torch.bernoulli(h0) @ W + lower
                v1 = torch.sigmoid(logits)
                h1 = torch.sigmoid(up * v1 @ W.T + upper)
                n = v.shape[0]
                W += lr * (h0.T @ v - h1.T @ v1) / n
                lower += lr * (v - v1).mean(0)
                upper += lr * (h0 - h1).mean(0)
                total += F.binary_cross_entropy_with_logits(logits, v, reduction="sum").item()
                count += n
        errors.append(total / max(count, 1))
    return errors
