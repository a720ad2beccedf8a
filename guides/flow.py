r"""Flow guides: a Gaussian-latent guide followed by an amortized normalizing flow.

Seed ``001`` ("Normalizing flows"; Rezende & Mohamed 2015, Tomczak & Welling 2016, Kingma et al.
2016, van den Berg et al. 2018):

.. math::

    z^{(0)} \sim \mathcal N\big(\mu_\phi(x), \mathrm{diag}\,\sigma^2_\phi(x)\big), \qquad
    z^{(T)} = f^{(T)}_{h(x)} \circ \cdots \circ f^{(1)}_{h(x)}(z^{(0)}),

    \log q(z^{(T)} \mid x) = \log \mathcal N(z^{(0)}) - \sum_t \log|\det \partial f^{(t)} / \partial z^{(t-1)}|,

where the flow's parameters come from a context :math:`h(x)` of the encoder. The sample site
(the wrapped guide's site, e.g. ``z``) is a Pyro ``TransformedDistribution`` of the base
Gaussian and the conditioned transforms, so ``Trace_ELBO``, the IWAE bound and
:func:`pyro_dgm.infer.evaluate` score it like any other site.

**Scoring.** Planar and Sylvester flows have no closed-form inverse; their log-density is
computed from the log-determinants cached when the sample was drawn. So ``log q`` is right
for the guide's own samples (what ELBOs and importance weights need), but such a guide cannot
score an arbitrary value (``posterior(x).log_prob(z)`` for a ``z`` it did not draw raises).
Householder and IAF flows can.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.distributions.flows import conditional_flow
from pyro_dgm.errors import PyroDGMError


class FlowGuide(PyroModule):
    """``q(z_T | x)``: the Gaussian ``encoder.posterior(x)`` pushed through ``length`` flow steps.

    ``encoder`` is a guide with ``posterior(x)`` (a diagonal Gaussian, event dim 1), ``site``
    and, unless ``context`` is given, a ``context(x)`` method giving its hidden layer (as
    :class:`pyro_dgm.guides.GaussianEncoder`), which the flow's heads then share.
    ``context`` is any ``x -> h`` of width ``context_dim``. ``flow`` is one of
    :data:`pyro_dgm.distributions.flows.FLOWS`.
    """

    def __init__(self, encoder: PyroModule, flow: str = "planar", length: int = 4, *,
                 context: Callable | None = None, context_dim: int | None = None, **flow_options):
        super().__init__(name=f"flow_guide_{encoder.site}")
        self.encoder = encoder
        self.site, self.flow, self.length = encoder.site, flow, length
        if context is None:
            if not hasattr(encoder, "context"):
                raise PyroDGMError("a flow guide needs a context h(x): pass context= and "
                                   "context_dim=, or an encoder with a context(x) method")
            context_dim = encoder.loc_head.in_features
        elif context_dim is None:
            raise PyroDGMError("a flow guide given a context function needs its context_dim")
        self._context = context
        z_dim = encoder.loc_head.out_features if hasattr(encoder, "loc_head") else None
        z_dim = flow_options.pop("z_dim", z_dim)
        self.transforms = nn.ModuleList(conditional_flow(flow, z_dim, context_dim, length,
                                                         **flow_options))

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """``h(x)``, the input of the flow parameters' heads."""
        if self._context is not None:
            return self._context(x)
        return self.encoder.context(x)

    def conditioned_transforms(self, x: torch.Tensor, h: torch.Tensor | None = None) -> list:
        h = self.context(x) if h is None else h
        return [transform.condition(h) for transform in self.transforms]

    def posterior(self, x: torch.Tensor) -> dist.TransformedDistribution:
        """``q(z_T | x)`` with batch shape ``x.shape[:-1]``, event shape ``(z_dim,)``."""
        h = self.context(x)
        base = (self.encoder.posterior(x) if self._context is not None
                else self.encoder.posterior(x, context=h))  # the hidden layer runs once
        return dist.TransformedDistribution(base, self.conditioned_transforms(x, h))

    def forward(self, x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.sample(self.site, self.posterior(x))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The flow applied to the base mean, ``f(mu(x))``: a deterministic code for kNN / plots."""
        z = self.posterior(x).base_dist.mean
        for transform in self.conditioned_transforms(x):
            z = transform(z)
        return z
