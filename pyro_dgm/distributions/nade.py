r"""The NADE distribution over binary vectors (Larochelle & Murray 2011), seeds ``001``/``002``.

An autoregressive factorization :math:`p(x) = \prod_{d=1}^{D} p(x_d \mid x_{<d})` whose
conditionals share one hidden layer with tied weights (the paper's eq. 2-3):

.. math::

    a_d = c + W_{:, <d}\, x_{<d}, \qquad h_d = \sigma(a_d), \qquad
    p(x_d = 1 \mid x_{<d}) = \sigma(b_d + V_{d,:} \cdot h_d),

with :math:`W \in \mathbb R^{H \times D}`, :math:`c \in \mathbb R^H`,
:math:`V \in \mathbb R^{D \times H}`, :math:`b \in \mathbb R^D`. Since
:math:`a_{d+1} = a_d + W_{:,d} x_d`, every :math:`a_d` is an exclusive cumulative sum of the
columns :math:`W_{:,j} x_j`, so :meth:`NADE.log_prob` scores all :math:`D` conditionals in
vectorized blocks (:math:`O(DH)` per example, as the paper's sequential algorithm), and
:meth:`NADE.sample` draws pixel by pixel (ancestral sampling).

For grey levels in [0, 1], ``validate_args=False`` makes ``log_prob`` the Bernoulli
cross-entropy, as for the zoo's Bernoulli decoders; it is a log-likelihood only on binary data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch.distributions import constraints

PIXEL_BLOCK = 16


class NADE(TorchDistribution):
    """``NADE(W, c, V, b)``: a distribution over binary vectors of length ``D``.

    Shapes: ``W`` (H, D), ``c`` (H,), ``V`` (D, H), ``b`` (D,); the parameters are shared by
    every element of the batch (``batch_shape`` comes from :meth:`expand`); the event shape
    is ``(D,)``.
    """

    arg_constraints = {"W": constraints.real, "c": constraints.real,
                       "V": constraints.real, "b": constraints.real}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(self, W: torch.Tensor, c: torch.Tensor, V: torch.Tensor, b: torch.Tensor,
                 batch_shape=torch.Size(), validate_args=None):
        hidden, dim = W.shape if W.dim() == 2 else (-1, -1)
        if W.dim() != 2 or c.shape != (hidden,) or V.shape != (dim, hidden) or b.shape != (dim,):
            raise ValueError(f"NADE needs W (H, D), c (H,), V (D, H), b (D,); got W "
                             f"{tuple(W.shape)}, c {tuple(c.shape)}, V {tuple(V.shape)}, "
                             f"b {tuple(b.shape)}")
        self.W, self.c, self.V, self.b = W, c, V, b
        super().__init__(torch.Size(batch_shape), torch.Size([dim]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(NADE, _instance)
        new.W, new.c, new.V, new.b = self.W, self.c, self.V, self.b
        super(NADE, new).__init__(torch.Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def conditional_logits(self, x: torch.Tensor) -> torch.Tensor:
        r"""The logits of :math:`p(x_d = 1 \mid x_{<d})` for every ``d``, shape of ``x``:
        :math:`b_d + V_{d,:} \cdot \sigma(a_d)`, with
        :math:`a_d = c + \sum_{j<d} W_{:,j} x_j` a cumulative sum of the columns
        :math:`(c, W_{:,1} x_1, \dots, W_{:,D-1} x_{D-1})`, taken ``PIXEL_BLOCK`` pixels at a
        time (each block starts from the last :math:`a` of the one before), which keeps the
        ``(..., block, H)`` tensors small: several times faster than one ``(..., D, H)`` pass."""
        inputs = torch.cat([torch.ones_like(x[..., :1]), x[..., :-1]], -1)   # (1, x_1, ...)
        columns = torch.cat([self.c[:, None], self.W[:, :-1]], 1).T          # (D, H)
        activation = self.c.new_zeros(())
        logits = []
        for start in range(0, x.shape[-1], PIXEL_BLOCK):
            block = slice(start, start + PIXEL_BLOCK)
            activations = activation + (inputs[..., block, None] * columns[block]).cumsum(-2)
            logits.append((torch.sigmoid(activations) * self.V[block]).sum(-1))
            activation = activations[..., -1:, :]
        return self.b + torch.cat(logits, -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_d \\log p(x_d \\mid x_{<d})`, summed over the event; shape
        ``broadcast(value.shape[:-1], batch_shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        logits = self.conditional_logits(value)
        log_p = -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)
        return log_p.expand(torch.broadcast_shapes(log_p.shape, self.batch_shape))

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Ancestral sampling: :math:`x_1, x_2, \\dots` in turn, each from its conditional,
        carrying :math:`a_{d+1} = a_d + W_{:,d} x_d`."""
        shape = self._extended_shape(sample_shape)
        x = self.b.new_zeros(shape)
        activation = self.c.expand(*shape[:-1], -1)
        for d in range(shape[-1]):
            logit = self.b[d] + torch.sigmoid(activation) @ self.V[d]
            x[..., d] = torch.bernoulli(torch.sigmoid(logit))
            activation = activation + x[..., d:d + 1] * self.W[:, d]
        return x
