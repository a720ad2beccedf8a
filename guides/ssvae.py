r"""The guide of the M2 semi-supervised model (Kingma et al., 2014; seed ``000``, "Semi-Supervised").

.. math::

    q_\phi(y_n \mid x_n) = \mathrm{Cat}(\mathrm{softmax}\, g_\phi(x_n)), \qquad
    q_\phi(h_n \mid x_n, y_n) = \begin{cases}
        \mathcal N(m(x_n, y_n), \mathrm{diag}\, s^2(x_n, y_n)) & \text{Gauss-DGM} \\
        \prod_k \mathrm{Kumaraswamy}(v_{n,k}; a_k(x_n, y_n), b_k(x_n, y_n)) & \text{SB-DGM.}
    \end{cases}

The label site ``y_unobserved`` is enumerated (``TraceEnum_ELBO``), so for an unlabelled
example the ELBO is Kingma's :math:`U(x) = \sum_y q(y|x) [L(x, y)] + H(q(y|x))`. For a labelled
example the same site is a point mass on the known label (weight 1, entropy 0; Pyro's
enumeration drops the zero-probability values), so its contribution is :math:`L(x, y)`.
The classifier :math:`q(y|x)` is also what predicts labels (:meth:`M2Guide.classify`), and
what the objective ``ss-elbo`` trains on labelled data with the extra term
:math:`\alpha \log q(y|x)` (Kingma et al., eq. 9).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.distributions import Kumaraswamy, StickBreakingFractions
from pyro_dgm.guides.kumaraswamy import MAX_CONCENTRATION, MIN_CONCENTRATION
from pyro_dgm.models.ssvae import LATENTS, check_labels, label_and_code
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.nn import MLP


class M2Guide(PyroModule):
    """``q(y | x)`` (an MLP classifier) and ``q(z | x, y)`` or ``q(v | x, y)``."""

    def __init__(self, x_dim: int, n_classes: int = 10, z_dim: int = 50,
                 latent: str = "gaussian", hidden: int = 500, min_scale: float = 1e-4):
        super().__init__(name="m2_guide")
        if latent not in LATENTS:
            raise PyroDGMError(f"unknown latent {latent!r}; expected one of {LATENTS}")
        self.n_classes, self.latent, self.min_scale = n_classes, latent, min_scale
        self.code_site = "z" if latent == "gaussian" else "v"
        code_params = z_dim if latent == "gaussian" else z_dim - 1
        self.classifier = MLP([x_dim, hidden, n_classes])
        self.body = MLP([n_classes + x_dim, hidden])  # input [onehot(y), x]
        self.head_1 = torch.nn.Linear(hidden, code_params)
        self.head_2 = torch.nn.Linear(hidden, code_params)
        self.stick_breaking = StickBreakingFractions()

    # -- q(y | x) -------------------------------------------------------------------------
    def classifier_log_prob(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``log q(y | x)`` per example: the auxiliary classification term of Kingma et al."""
        return dist.Categorical(logits=self.classifier(x)).log_prob(y)

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable label under ``q(y | x)``."""
        return self.classifier(x).argmax(-1)

    def label_posterior(self, x: torch.Tensor, y: torch.Tensor | None, known: torch.Tensor):
        """``q(y | x)``, replaced by a point mass on the label where the label is known."""
        logits = self.classifier(x)
        if y is not None and bool(known.any()):
            point_mass = F.one_hot(y.clamp(min=0), self.n_classes).to(logits.dtype).log()
            logits = torch.where(known.unsqueeze(-1), point_mass, logits)
        return dist.Categorical(logits=logits)

    # -- q(code | x, y) -------------------------------------------------------------------
    def code_posterior(self, x: torch.Tensor, label: torch.Tensor) -> dist.Distribution:
        """``q(z | x, y)`` or ``q(v | x, y)``; ``label`` may carry an enumeration dimension."""
        h = F.relu(self.body(label_and_code(label, x, self.n_classes)))
        if self.latent == "gaussian":
            return dist.Normal(self.head_1(h), self.min_scale + F.softplus(self.head_2(h))).to_event(1)
        a = F.softplus(self.head_1(h)).clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        b = F.softplus(self.head_2(h)).clamp(MIN_CONCENTRATION, MAX_CONCENTRATION)
        return Kumaraswamy(a, b).to_event(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        known = check_labels(x, y, self.n_classes)
        with pyro.plate("data", x.shape[0]):
            guessed = pyro.sample("y_unobserved", self.label_posterior(x, y, known),
                                  infer={"enumerate": "parallel"})
            label = torch.where(known, y, guessed) if y is not None else guessed
            pyro.sample(self.code_site, self.code_posterior(x, label))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code's posterior mean given the predicted label (``z``, or stick weights ``sb(E[v])``)."""
        mean = self.code_posterior(x, self.classify(x)).mean
        return mean if self.latent == "gaussian" else self.stick_breaking(mean)
