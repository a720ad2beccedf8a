r"""Importance sampling with a proposal program: log-weights, effective sample size, log-evidence.

Seed ``004`` ("Learning importance sampling proposals"): for data :math:`y` and a proposal
:math:`q(x \mid y)`, draws :math:`x_s \sim q` get the weights
:math:`w_s = p(x_s, y) / q(x_s \mid y)`; then

.. math::

    \hat p(y) = \frac1S \sum_s w_s, \qquad
    \hat{\mathbb E}[f(x) \mid y] = \frac{\sum_s w_s f(x_s)}{\sum_s w_s}, \qquad
    \mathrm{ESS} = \frac{(\sum_s w_s)^2}{\sum_s w_s^2} .

All in log space. The particles are vectorized by an outer ``plate`` (no Python loop), and
the weights are per element of the model's ``plate("data")`` (one independent problem each,
e.g. one data set of polynomial regression). :func:`prior_proposal` turns a model into the
proposal that samples its latents from the prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import pyro
import pyro.poutine as poutine
from pyro.poutine.util import site_is_subsample

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.estimators import guess_max_plate_nesting, per_example_log_density


@dataclass
class ImportanceSamples:
    """``log_weights`` of shape ``(S, B)`` and the latent ``samples`` (site -> ``(S, B, ...)``)."""

    log_weights: torch.Tensor
    samples: dict

    @property
    def num_samples(self) -> int:
        return self.log_weights.shape[0]

    def normalized_weights(self) -> torch.Tensor:
        """Self-normalized weights, shape ``(S, B)``, each column summing to 1."""
        return torch.softmax(self.log_weights, dim=0)

    def log_evidence(self) -> torch.Tensor:
        """``log (1/S sum_s w_s)`` per data set: the (unbiased in p, not log p) estimate."""
        return torch.logsumexp(self.log_weights, 0) - math.log(self.num_samples)

    def ess(self) -> torch.Tensor:
        """Kish's effective sample size ``(sum w)^2 / sum w^2`` per data set."""
        return torch.exp(2 * torch.logsumexp(self.log_weights, 0)
                         - torch.logsumexp(2 * self.log_weights, 0))

    def posterior_mean(self, site: str) -> torch.Tensor:
        """``sum_s wbar_s x_s`` for latent ``site``, shape ``(B, ...)``."""
        value = self.samples[site]
        weights = self.normalized_weights().reshape(*self.log_weights.shape,
                                                    *(1,) * (value.dim() - 2))
        return (weights * value).sum(0)

    def resample(self, n: int, generator: torch.Generator | None = None) -> dict:
        """``n`` draws per data set from the weighted samples (multinomial resampling)."""
        index = torch.multinomial(self.normalized_weights().T, n, replacement=True,
                                  generator=generator).T  # (n, B)
        columns = torch.arange(index.shape[1])
        return {name: value[index, columns] for name, value in self.samples.items()}

    @staticmethod
    def cat(parts: list["ImportanceSamples"]) -> "ImportanceSamples":
        return ImportanceSamples(torch.cat([p.log_weights for p in parts]),
                                 {k: torch.cat([p.samples[k] for p in parts])
                                  for k in parts[0].samples})


@torch.no_grad()
def importance_sample(model, proposal, *args, num_samples: int = 1000,
                      max_plate_nesting: int | None = None, **kwargs) -> ImportanceSamples:
    """Draw ``num_samples`` latents per data set from ``proposal`` and weight them by ``model``.

    ``args`` are the programs' arguments; the first one's leading dimension counts the data sets.
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise PyroDGMError(f"the number of importance samples must be positive, got {num_samples}")
    if max_plate_nesting is None:
        with poutine.block():
            max_plate_nesting = guess_max_plate_nesting(
                lambda _: model(*args, **kwargs), lambda _: proposal(*args, **kwargs), args[0])
    particles = pyro.plate("_particles", num_samples, dim=-(max_plate_nesting + 1))
    with poutine.block():
        guide_trace = poutine.trace(particles(proposal)).get_trace(*args, **kwargs)
        model_trace = poutine.trace(
            poutine.replay(particles(model), trace=guide_trace)).get_trace(*args, **kwargs)
    n_dims, batch = max_plate_nesting + 1, args[0].shape[0]
    log_weights = (args[0].new_zeros(num_samples, batch)
                   + per_example_log_density(model_trace, max_plate_nesting)
                   - per_example_log_density(guide_trace, max_plate_nesting, observed=False))
    samples = {}
    for name, site in guide_trace.nodes.items():
        if site["type"] == "sample" and not site_is_subsample(site) and not site["is_observed"]:
            value = site["value"]
            samples[name] = value.expand(num_samples, batch, *value.shape[n_dims:]) \
                if value.dim() >= n_dims else value.reshape(num_samples, batch)
    if not bool(torch.isfinite(log_weights).all()):
        raise PyroDGMError("importance weights are not finite: the proposal put mass where the "
                           "model has none, or a log-density is NaN")
    return ImportanceSamples(log_weights, samples)


def prior_proposal(model, observed=("y",)):
    """The proposal that samples the latents of ``model`` from its prior (the observed sites
    ``observed`` hidden), so that the log-weights are the log-likelihoods."""
    def proposal(*args, **kwargs):
        return poutine.block(model, hide=list(observed))(*args, **kwargs)
    return proposal
