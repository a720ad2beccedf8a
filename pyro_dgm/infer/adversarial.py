r"""The ``adversarial`` objective: a GAN's two players in one loss (Goodfellow et al. 2014);
seed ``004``: the discriminator "performs the role of a two-sample test".

The objective owns the discriminator :math:`D_\psi(x)`, an MLP giving a logit (``disc_hidden``
units in each of ``disc_depth`` LeakyReLU(0.2) hidden layers), built in ``prepare`` from the
data's width. The generator's fakes are the mean of the model's observation site ``x``,
:math:`\tilde x_n = G_\theta(z_n)` with :math:`z_n \sim p(z)` drawn by running the model on the
batch (one fake per real example). With :math:`\mathrm{softplus}(a) = \log(1 + e^a)`, the two
players' losses summed over a batch of :math:`N` real examples are

.. math::

    L_D(\psi) &= \sum_n \mathrm{softplus}(-D_\psi(x_n)) + \mathrm{softplus}(D_\psi(\tilde x_n))
      \;+\; \frac{\gamma}{2} \sum_n \lVert \nabla_x D_\psi(x_n) \rVert^2, \\
    L_G(\theta) &= \sum_n \mathrm{softplus}(-D_\psi(G_\theta(z_n))),

the discriminator's cross-entropy (real = 1, fake = 0), with the optional R1 gradient penalty
on real data of Mescheder et al. (2018, "Which training methods for GANs actually converge?")
of weight :math:`\gamma` = ``gradient_penalty`` (0: none), and the generator's
*non-saturating* loss :math:`-\log \sigma(D(G(z)))` (Goodfellow et al. 2014, section 3).

**One step, both players** (simultaneous gradient play). The Trainer takes one Adam step over
all parameters, so ``forward`` returns a tensor whose gradient with respect to :math:`\psi` is
:math:`\nabla_\psi L_D` (the fakes are detached) and with respect to :math:`\theta` is
:math:`\nabla_\theta L_G` (the discriminator is applied with its parameters detached, through
``torch.func.functional_call``): neither player's loss moves the other player. Both use the
Trainer's learning rate and Adam's default betas (0.9, 0.999); the papers' beta1 = 0.5 is not
an option of the Trainer. Its **value** is the discriminator's cross-entropy :math:`L_D`
without the penalty, per example :math:`\ge 0`; against the best discriminator it would be
:math:`\log 4 - 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_G)` (Goodfellow et al., theorem 1),
so it climbs towards :math:`\log 4 \approx 1.386` as the generator matches the data. Both
players' losses (without the penalty) are recorded per step as ``step_metrics``
(``discriminator_loss``, ``generator_loss``), so each epoch of the history carries them.

Under data parallelism each rank draws its own fakes for its shard and every term is a sum
over examples (the penalty too), so the summed gradients are those of the global batch. The
discriminator is an ordinary parameter of this loss module, stepped by the Trainer's one
optimizer (there is no optimizer step inside the loss): it is built in ``prepare``, before the
Trainer gathers, broadcasts and sums the gradients of every parameter, so it stays the same on
every rank. Hence ``data_parallel`` and ``bf16`` (sums of softplus of logits, no difference of
large terms) are both declared.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch.func import functional_call

import pyro.poutine as poutine
from pyro.poutine import Trace

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.objectives import (
    Objective,
    STATELESS,
    ObjectiveLoss,
    register_objective,
    with_surrogate_gradient,
)
from pyro_dgm.nn import MLP


def discriminator(x_dim: int, hidden: int, depth: int) -> torch.nn.Module:
    """``D(x)``: an MLP ``x_dim -> hidden (x depth) -> 1`` with LeakyReLU(0.2), one logit per row."""
    return torch.nn.Sequential(
        MLP([x_dim, *[hidden] * depth, 1], functools.partial(torch.nn.LeakyReLU, 0.2)),
        torch.nn.Flatten(0))


def r1_penalty(disc: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac12 \sum_n \lVert \nabla_x D(x_n) \rVert^2` on real data (Mescheder et al.
    2018), differentiable in the discriminator's parameters."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(x).sum(), x, create_graph=True)
    return 0.5 * grad.pow(2).sum()


class Adversarial(ObjectiveLoss):
    """The GAN objective: the discriminator's and the generator's losses in one surrogate (see
    the module docstring)."""

    def __init__(self, model, guide, disc_hidden: int = 256, disc_depth: int = 2,
                 gradient_penalty: float = 0.0):
        for name, value in (("disc_hidden", disc_hidden), ("disc_depth", disc_depth)):
            if value < 1:
                raise PyroDGMError(f"the adversarial option {name} must be at least 1, got {value}")
        if not gradient_penalty >= 0:
            raise PyroDGMError(f"the adversarial option gradient_penalty must be zero or more, "
                               f"got {gradient_penalty}")
        super().__init__(model, guide)
        self.disc_hidden, self.disc_depth = disc_hidden, disc_depth
        self.gradient_penalty = gradient_penalty
        self.disc: torch.nn.Module | None = None

    def prepare(self, args: tuple, guide_trace: Trace, model_trace: Trace) -> None:
        self._build_discriminator(args[0])

    def _build_discriminator(self, x: torch.Tensor) -> None:
        if self.disc is None:
            self.disc = discriminator(x.shape[-1], self.disc_hidden, self.disc_depth).to(x.device)

    def fakes(self, x: torch.Tensor) -> torch.Tensor:
        """``G(z_n)`` for one ``z_n ~ p(z)`` per row of ``x``: the mean of the model's site
        ``x`` in a run of the model on the batch."""
        trace = poutine.trace(self.model).get_trace(x)
        if "x" not in trace.nodes:
            raise PyroDGMError("the adversarial objective needs a model with an observation site "
                               "'x' whose mean is the generator's output")
        return trace.nodes["x"]["fn"].mean

    def losses(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(L_D, penalty, L_G)``, each summed over the batch; ``L_D`` and the penalty reach
        only the discriminator's parameters, ``L_G`` only the generator's."""
        self._build_discriminator(x)
        fake = self.fakes(x)
        disc_loss = F.softplus(-self.disc(x)).sum() + F.softplus(self.disc(fake.detach())).sum()
        penalty = (self.gradient_penalty * r1_penalty(self.disc, x) if self.gradient_penalty > 0
                   else torch.zeros((), device=x.device))
        frozen = {name: p.detach() for name, p in self.disc.named_parameters()}
        gen_loss = F.softplus(-functional_call(self.disc, frozen, (fake,))).sum()
        return disc_loss, penalty, gen_loss

    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        disc_loss, penalty, gen_loss = self.losses(x)
        self.step_metrics = {"discriminator_loss": disc_loss.item(),
                             "generator_loss": gen_loss.item()}
        return with_surrogate_gradient(disc_loss, disc_loss + penalty + gen_loss)


register_objective(Objective(
    "adversarial", "GAN: discriminator cross-entropy and the non-saturating generator loss, "
                   "simultaneous steps, optional R1 penalty (Goodfellow et al. 2014)",
    lambda model, guide, disc_hidden, disc_depth, gradient_penalty: Adversarial(
        model, guide, disc_hidden, disc_depth, gradient_penalty),
    {"disc_hidden": 256, "disc_depth": 2, "gradient_penalty": 0.0}, **STATELESS,
))
