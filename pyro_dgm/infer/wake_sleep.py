r"""Objectives that learn the model and the guide from different estimators: wake-sleep,
reweighted wake-sleep, importance sampling from the prior, and NVIL-style baselines.

Seed ``004`` ("Wake-sleep algorithm", "Reweighted wake-sleep"); Hinton et al. (1995),
Bornschein & Bengio (2015); seed ``000`` (importance sampling from the prior, MacKay & Gibbs'
density networks); Mnih & Gregor (2014) for NVIL. With ``K`` proposals
:math:`z_{n,k} \sim r(z \mid x_n)` and per-example weights

.. math::

    \log w_{n,k} = \log p_\theta(x_n, z_{n,k}) - \log r(z_{n,k} \mid x_n), \qquad
    \tilde w_{n,k} = w_{n,k} \Big/ \sum_j w_{n,j},

- **wake-theta** ascends :math:`\sum_n \log \frac1K \sum_k w_{n,k}` in :math:`\theta`
  (the IWAE bound, whose gradient is :math:`\sum_k \tilde w_{n,k} \nabla_\theta \log p_\theta(x_n, z_{n,k})`);
- **wake-phi** ascends :math:`\sum_n \sum_k \tilde w_{n,k} \log q_\phi(z_{n,k} \mid x_n)`, a
  self-normalized estimate of :math:`-\mathrm{KL}(p_\theta(z|x_n) \,\|\, q_\phi(z|x_n))` + const;
- **sleep-phi** ascends :math:`\log q_\phi(z \mid x)` on dreams :math:`(x, z) \sim p_\theta`,
  i.e. :math:`-\mathbb E_{p_\theta(x)} \mathrm{KL}(p_\theta(z|x) \,\|\, q_\phi(z|x))` + const.

The weights are normalized **per data point**, over the ``K`` particles only, so these
objectives train on mini-batches of any size. Pyro's ``ReweightedWakeSleep`` multiplies the
weights of the whole batch together ("mini-batch training is not supported yet"), so its
particles degenerate as the batch grows; at batch size 1 the two coincide (tested).

=================  ================================================================================
``rws``            proposal = guide, ``K = 5``; the guide learns by wake-phi (``insomnia=1``), sleep-phi
                   (``insomnia=0``) or a mixture
``wake-sleep``     proposal = guide, ``K = 1``; the guide learns by sleep-phi only (Hinton et al.)
``prior-is``       proposal = the model's prior, ``K = 50``: the density network trained by importance
                   sampling; the guide is fit on the side by sleep-phi and only serves evaluation
``nvil``           ``TraceGraph_ELBO`` with a learned input-dependent baseline network per
                   non-reparameterized guide site (the baselines belong to the objective)
=================  ================================================================================

Each is an :class:`~pyro_dgm.infer.objectives.ObjectiveLoss`: its value is the wake-theta loss
(for ``nvil``, ``-ELBO``) and its gradient is each parameter set's own update, through the
surrogate ``theta_loss.detach() + S - S.detach()`` with ``S = theta_loss + phi_loss``.

Every latent site must sit in ``plate("data")`` and the observation site be ``x`` (the zoo's
contract), so that weights are per example and the guide can read dreams.
"""

from __future__ import annotations

import math

import torch

import pyro
import pyro.poutine as poutine
from pyro.infer import TraceGraph_ELBO
from pyro.poutine import Trace
from pyro.poutine.messenger import Messenger

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.estimators import (
    guess_max_plate_nesting,
    importance_traces,
    per_example_log_density,
    plate_nesting,
    sample_sites,
)
from pyro_dgm.infer.objectives import (
    SCORE_FUNCTION_BF16,
    STATELESS,
    Objective,
    ObjectiveLoss,
    TraceGraphLoss,
    check_particles,
    register_objective,
    with_surrogate_gradient,
)
from pyro_dgm.nn import MLP

PROPOSALS = ("guide", "prior")


class PerDatapointRWS(ObjectiveLoss):
    """Reweighted wake-sleep with weights normalized per data point (mini-batch safe).

    :param num_particles: ``K``, proposals per data point (``K = 1`` with ``insomnia=0`` is
        plain wake-sleep).
    :param insomnia: weight of wake-phi against sleep-phi in the guide's loss, in ``[0, 1]``
        (as Pyro's ``ReweightedWakeSleep``).
    :param proposal: ``"guide"``, or ``"prior"`` for importance sampling from the model's prior
        (the guide then learns by sleep-phi only).

    The value of ``forward(x)`` is the wake-theta loss, ``-sum_n log (1/K) sum_k w_nk``, the
    negative IWAE-K bound of the batch (for ``K = 1`` the negative ELBO of one sample); its
    gradient is wake-theta's for the model and wake-phi's / sleep-phi's for the guide.
    """

    def __init__(self, model, guide, num_particles: int = 5, insomnia: float = 1.0,
                 proposal: str = "guide", max_plate_nesting: float = float("inf")):
        check_particles(num_particles)
        if not 0.0 <= insomnia <= 1.0:
            raise PyroDGMError(f"insomnia must lie in [0, 1], got {insomnia!r}")
        if proposal not in PROPOSALS:
            raise PyroDGMError(f"proposal must be one of {PROPOSALS}, got {proposal!r}")
        if proposal == "prior" and insomnia > 0:
            raise PyroDGMError("with the prior as proposal the guide can only learn by sleep-phi "
                               "(insomnia=0)")
        super().__init__(model, guide)
        # the particle plate is our own, outside max_plate_nesting
        self.num_particles, self.max_plate_nesting = num_particles, max_plate_nesting
        self.insomnia, self.proposal = insomnia, proposal

    def prepare(self, args, guide_trace: Trace, model_trace: Trace) -> None:
        if self.max_plate_nesting == float("inf"):
            self.max_plate_nesting = plate_nesting(guide_trace, model_trace)

    # -- the three estimators ---------------------------------------------------------------
    def wake(self, x: torch.Tensor):
        """``(log_weights, log_q)``, each ``(K, N)``; proposals detached, densities not."""
        model, guide = self.model, self.guide
        nesting = self._nesting(x)
        if self.proposal == "guide":
            model_trace, guide_trace = importance_traces(model, guide, x, self.num_particles,
                                                         nesting)
            guide_trace.detach_()  # values only: log q keeps its graph to phi
            log_q = per_example_log_density(guide_trace, nesting, observed=False)
            log_joint = per_example_log_density(model_trace, nesting)
            return log_joint - log_q.detach(), log_q
        particles = pyro.plate("_particles", self.num_particles, dim=-(nesting + 1))
        model_trace = poutine.trace(particles(model)).get_trace(x)
        model_trace.detach_()
        log_joint = per_example_log_density(model_trace, nesting)
        log_prior = per_example_log_density(model_trace, nesting, observed=False)
        return log_joint - log_prior.detach(), None

    def sleep(self, x: torch.Tensor) -> torch.Tensor:
        """``-sum log q(z | x)`` over one dream ``(x, z) ~ p_theta`` per example of the batch."""
        dream = poutine.trace(poutine.uncondition(self.model)).get_trace(x)
        dream.detach_()
        dreamed_x = dream.nodes["x"]["value"]
        guide_trace = poutine.trace(poutine.replay(self.guide, trace=dream)).get_trace(dreamed_x)
        return -guide_trace.log_prob_sum()

    def losses(self, x: torch.Tensor):
        """``(theta_loss, phi_loss)``: wake-theta's loss and the guide's (wake-phi and sleep-phi
        mixed by ``insomnia``)."""
        log_weights, log_q = self.wake(x)
        log_evidence = torch.logsumexp(log_weights, 0) - math.log(self.num_particles)
        theta_loss = -log_evidence.sum()
        phi_loss = 0.0
        if self.insomnia > 0:
            normalized_weights = torch.softmax(log_weights.detach(), 0)
            phi_loss = phi_loss - self.insomnia * (normalized_weights * log_q).sum()
        if self.insomnia < 1:
            phi_loss = phi_loss + (1 - self.insomnia) * self.sleep(x)
        return theta_loss, phi_loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta_loss, phi_loss = self.losses(x)
        return with_surrogate_gradient(theta_loss, theta_loss + phi_loss)

    def _nesting(self, x) -> int:
        if self.max_plate_nesting == float("inf"):
            self.max_plate_nesting = guess_max_plate_nesting(self.model, self.guide, x)
        return int(self.max_plate_nesting)


class _BaselineInputs(Messenger):
    """Gives each non-reparameterized guide site an ``nn_baseline`` reading the data ``x``."""

    def __init__(self, baselines: torch.nn.ModuleDict, x: torch.Tensor):
        super().__init__()
        self.baselines, self.x = baselines, x

    def _pyro_sample(self, msg):
        if msg["name"] in self.baselines:
            msg["infer"] = {**msg["infer"], "baseline": {
                "nn_baseline": self.baselines[msg["name"]], "nn_baseline_input": self.x}}


class NVIL(TraceGraphLoss):
    r"""``TraceGraph_ELBO`` with a learned, input-dependent baseline per discrete guide site.

    Mnih & Gregor (2014): the score-function term of site :math:`z` uses the learning signal
    :math:`\log p(x, z) - \log q(z|x) - b_\psi(x)`, with :math:`b_\psi` a one-hidden-layer
    network (``hidden`` tanh units) fitted by least squares to the downstream cost, together with
    Pyro's Rao-Blackwellization. The baselines are the objective's own submodules
    (``baselines.<site>``), so the model and guide stay as they are; NVIL's variance
    normalization is not applied. Value ``-ELBO``; gradient the ELBO's surrogate for model and
    guide, the least-squares fit for the baselines.
    """

    def __init__(self, model, guide, hidden: int = 100, **elbo_options):
        super().__init__(model, guide, TraceGraph_ELBO(**elbo_options))
        self.hidden = hidden
        self.baselines: torch.nn.ModuleDict | None = None

    def prepare(self, args, guide_trace: Trace, model_trace: Trace) -> None:
        super().prepare(args, guide_trace, model_trace)
        self._build_baselines(guide_trace, args[0])

    def _build_baselines(self, guide_trace: Trace, x: torch.Tensor) -> None:
        if self.baselines is None:
            self.baselines = torch.nn.ModuleDict({
                site["name"]: torch.nn.Sequential(MLP([x.shape[-1], self.hidden, 1], torch.nn.Tanh),
                                                  torch.nn.Flatten(0))
                for site in sample_sites(guide_trace)
                if not site["is_observed"] and not site["fn"].has_rsample}).to(x.device)

    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        if self.baselines is None:  # used without prepare: build them from one guide run
            with poutine.block():
                self._build_baselines(poutine.trace(self.guide).get_trace(x, *args), x)
        guide = _BaselineInputs(self.baselines, x)(self.guide)
        elbo, surrogate_loss = self.elbo._loss_and_surrogate_loss(self.model, guide,
                                                                  (x, *args), {})
        return with_surrogate_gradient(-torch.as_tensor(elbo), surrogate_loss)

    def fit_baselines(self, x: torch.Tensor, steps: int = 200, lr: float = 1e-2) -> None:
        """Fit only the baselines, by ``steps`` Adam steps on ``x``, leaving the model and
        guide as they are: NVIL at a given parameter point, as after training to it."""
        self(x)  # builds the baselines if needed
        optimizer = torch.optim.Adam(self.baselines.parameters(), lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            self(x).backward()
            optimizer.step()
        self.zero_grad(set_to_none=True)


register_objective(Objective(
    "rws", "reweighted wake-sleep, weights per data point (Bornschein & Bengio 2015)",
    lambda model, guide, particles, insomnia: PerDatapointRWS(model, guide, particles, insomnia),
    {"particles": 5, "insomnia": 1.0}, **STATELESS,
))
register_objective(Objective(
    "wake-sleep", "wake-sleep: wake-theta on guide samples, sleep-phi on dreams (Hinton et al. 1995)",
    lambda model, guide: PerDatapointRWS(model, guide, 1, insomnia=0.0), **STATELESS,
))
register_objective(Objective(
    "prior-is", "importance sampling from the prior (density network); guide fit by sleep-phi",
    lambda model, guide, particles: PerDatapointRWS(model, guide, particles, insomnia=0.0,
                                                    proposal="prior"),
    {"particles": 50}, **STATELESS,
))
register_objective(Objective(
    "nvil", "TraceGraph_ELBO with learned input-dependent baselines per discrete site (NVIL)",
    lambda model, guide, hidden: NVIL(model, guide, hidden=hidden),
    {"hidden": 100}, data_parallel=True, bf16=SCORE_FUNCTION_BF16,
))
