r"""Kingma et al. (2014)'s M2 semi-supervised model, with a Gaussian or a stick-breaking latent.

Seed ``000`` ("Semi-Supervised", "Nonparametric version of (Kingma et al., NIPS 2014)'s M2
model"): a class label and a continuous code generate each image,

.. math::

    y_n \sim \mathrm{Cat}(1/C), \qquad
    h_n \sim \begin{cases} \mathcal N(0, I_d) & \text{Gauss-DGM (site } z) \\
                           \mathrm{GEM}_K(\alpha_0):\ v_{n,k} \sim \mathrm{Beta}(1, \alpha_0),\
                           h_n = \mathrm{sb}(v_n) & \text{SB-DGM (site } v) \end{cases}
    \qquad x_n \mid y_n, h_n \sim p_\theta(x_n \mid y_n, h_n).

The label is observed where known and latent where not: a batch carries ``y`` with ``-1``
for unknown labels, and the site is ``pyro.sample("y", ..., obs=y, obs_mask=y >= 0)``, which
Pyro splits into an observed site ``y_observed`` and a latent site ``y_unobserved`` that the
guide (:class:`pyro_dgm.guides.M2Guide`) enumerates. The decoder sees ``[onehot(y), h]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.distributions import StickBreakingFractions
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.nn import make_decoder

LATENTS = ("gaussian", "stick-breaking")


def check_labels(x: torch.Tensor, y: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """The mask of known labels; raise :class:`PyroDGMError` for labels that do not fit ``x``.

    ``y`` is ``None`` (nothing known) or an integer tensor of shape ``(N,)`` with values in
    ``0..n_classes-1``, or ``-1`` for unknown.
    """
    if y is None:
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise PyroDGMError(f"labels must have shape ({x.shape[0]},), one per example of x, got "
                           f"{tuple(y.shape)}")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise PyroDGMError(f"labels must be integers (-1 for unknown), got dtype {y.dtype}")
    if y.numel() and (int(y.min()) < -1 or int(y.max()) >= n_classes):
        raise PyroDGMError(f"labels must lie in 0..{n_classes - 1}, or be -1 for unknown; got "
                           f"values from {int(y.min())} to {int(y.max())}")
    return y >= 0


def label_and_code(label: torch.Tensor, code: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[onehot(label), code]``, broadcasting an enumerated label against the code's batch."""
    one_hot = F.one_hot(label, n_classes).to(code.dtype)
    batch = torch.broadcast_shapes(one_hot.shape[:-1], code.shape[:-1])
    return torch.cat([one_hot.expand(*batch, -1), code.expand(*batch, -1)], -1)


class M2(PyroModule):
    """``y ~ Cat(1/C)``, a Gaussian (``latent="gaussian"``) or stick-breaking code, ``x ~ p(x | y, code)``."""

    def __init__(self, x_dim: int, n_classes: int = 10, z_dim: int = 50,
                 latent: str = "gaussian", alpha0: float = 5.0, hidden: int = 500,
                 likelihood: str = "bernoulli"):
        super().__init__(name="m2")
        if latent not in LATENTS:
            raise PyroDGMError(f"unknown latent {latent!r}; expected one of {LATENTS}")
        if n_classes < 2 or z_dim < 2 or not alpha0 > 0:
            raise PyroDGMError(f"M2 needs n_classes >= 2, z_dim >= 2 and alpha0 > 0, got "
                               f"{n_classes}, {z_dim}, {alpha0}")
        self.n_classes, self.z_dim, self.latent, self.alpha0 = n_classes, z_dim, latent, alpha0
        self.stick_breaking = StickBreakingFractions()
        self.decoder = make_decoder(likelihood, n_classes + z_dim, [hidden], x_dim)

    @property
    def code_site(self) -> str:
        return "z" if self.latent == "gaussian" else "v"

    def label_prior(self) -> dist.Distribution:
        """``p(y) = Cat(1/C)``."""
        zeros = next(self.decoder.parameters()).new_zeros(self.n_classes)
        return dist.Categorical(logits=zeros)

    def code_prior(self) -> dist.Distribution:
        """``N(0, I_d)``, or ``Beta(1, alpha0)`` over the ``d - 1`` stick fractions."""
        zero = next(self.decoder.parameters()).new_zeros(())
        if self.latent == "gaussian":
            return dist.Normal(zero, 1.0).expand([self.z_dim]).to_event(1)
        return dist.Beta(zero + 1, zero + self.alpha0).expand([self.z_dim - 1]).to_event(1)

    def code(self, value: torch.Tensor) -> torch.Tensor:
        """What the decoder sees of the latent: ``z`` itself, or the stick weights ``sb(v)``."""
        return value if self.latent == "gaussian" else self.stick_breaking(value)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        known = check_labels(x, y, self.n_classes)
        observed = y.clamp(min=0) if y is not None else known.long()
        with pyro.plate("data", x.shape[0]):
            label = pyro.sample("y", self.label_prior(), obs=observed, obs_mask=known)
            code = self.code(pyro.sample(self.code_site, self.code_prior()))
            pyro.sample("x", self.decoder(label_and_code(label, code, self.n_classes)), obs=x)

    @torch.no_grad()
    def sample(self, n: int, label: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images for ``n`` codes from the prior, with random labels or the given ones."""
        if label is None:
            label = self.label_prior().sample([n])
        code = self.code(self.code_prior().sample([n]))
        return self.decoder(label_and_code(label, code, self.n_classes)).mean

    @torch.no_grad()
    def sample_by_class(self, n_per_class: int) -> torch.Tensor:
        """``C x n`` images: row ``c`` is class ``c``, column ``j`` shares one prior code (style)."""
        code = self.code(self.code_prior().sample([n_per_class]))
        labels = torch.arange(self.n_classes, device=code.device)
        inputs = label_and_code(labels.unsqueeze(-1), code, self.n_classes)  # (C, n, C + d)
        return self.decoder(inputs).mean.reshape(self.n_classes * n_per_class, -1)
