r"""The spread of an objective's gradient estimator: what explains why one objective learns
faster than another.

With :math:`M` independent estimates :math:`g_1, \dots, g_M` of :math:`\nabla_\phi \mathcal L`
for the guide parameters :math:`\phi` on one fixed batch,

.. math::

    \bar g = \frac1M \sum_m g_m, \qquad
    \mathrm{tr}\,\widehat{\mathrm{Cov}}[g] = \frac1{M-1} \sum_m \lVert g_m - \bar g \rVert^2,
    \qquad \mathrm{SNR} = \frac{\lVert \bar g \rVert}{\sqrt{\mathrm{tr}\,\widehat{\mathrm{Cov}}[g]}},

the trace of the covariance (total variance) and a signal-to-noise ratio, as in Rainforth et
al. (2018), "Tighter variational bounds are not necessarily better", who show that the IWAE
bound's guide-gradient SNR falls as k grows.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

import pyro
import pyro.poutine as poutine

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.objectives import ObjectiveLoss, gradient_estimate


# -- gradient variance --------------------------------------------------------------------
def _as_args(batch) -> tuple:
    return batch if isinstance(batch, tuple) else (batch,)


def guide_parameters(guide: Callable, *args) -> dict[str, torch.Tensor]:
    """The guide's parameters, as the leaf tensors that objectives put gradients on.

    They are read from the ``param`` sites of one guide trace (a ``PyroModule`` guide's
    parameters, ``pyro.module`` networks and ``pyro.param`` sites alike), so that the model's
    parameters are excluded even for objectives that also set the model's gradients.
    """
    with poutine.block():
        trace = poutine.trace(guide).get_trace(*args)
    store = pyro.get_param_store()
    return {name: store.get_param(name).unconstrained()
            for name, site in trace.nodes.items() if site["type"] == "param"}


def gradient_variance(loss: ObjectiveLoss, batch, num_estimates: int = 100,
                      params: dict[str, torch.Tensor] | Sequence[torch.Tensor] | None = None,
                      seed: int | None = None, per_example: bool = True) -> dict:
    r"""Spread of ``loss``'s gradient estimator for the guide parameters at the current point.

    Back-propagates the loss module ``loss`` (an
    :class:`~pyro_dgm.infer.objectives.ObjectiveLoss`) ``num_estimates`` times on the same
    ``batch`` (a tensor or a tuple of program arguments), clearing every gradient in between,
    and flattens the gradients of ``params`` (default: :func:`guide_parameters` of
    ``loss.guide``; a parameter with no gradient counts as zero). Parameters are not changed.
    With ``per_example`` the gradients are those of the loss per example (divided by the batch
    size), so numbers compare across batch sizes.

    Returns ``num_estimates``, ``num_params``, ``batch_size``, ``mean`` and ``variance`` (per
    coordinate of the flattened gradient, in the order of ``params``), ``total_variance``
    (trace of the sample covariance, unbiased), ``mean_squared_norm`` (mean of ``|g|^2``),
    ``squared_norm_of_mean`` (``|mean|^2``), ``snr`` (``|mean| / sqrt(total_variance)``) and
    ``mean_coordinate_snr`` (mean over coordinates of ``|mean_i| / sd_i``, Rainforth et al.
    2018, coordinates with ``sd_i > 0``).
    """
    if num_estimates < 2:
        raise PyroDGMError(f"gradient variance needs at least 2 estimates, got {num_estimates}")
    args = _as_args(batch)
    if seed is not None:
        pyro.set_rng_seed(seed)
    if params is None:
        params = guide_parameters(loss.guide, *args)
    params = list(params.values()) if isinstance(params, dict) else list(params)
    if not params:
        raise PyroDGMError("the guide has no parameters to measure the gradient variance of")
    scale = 1.0 / args[0].shape[0] if per_example else 1.0
    estimates = [gradient_estimate(loss, args, params).detach() * scale
                 for _ in range(num_estimates)]
    return gradient_statistics(torch.stack(estimates), batch_size=args[0].shape[0])


def gradient_statistics(estimates: torch.Tensor, batch_size: int | None = None) -> dict:
    """The statistics of :func:`gradient_variance` from ``estimates`` of shape ``(M, P)``."""
    estimates = estimates.double()
    mean = estimates.mean(0)
    variance = estimates.var(0, unbiased=True)
    total_variance = variance.sum().item()
    sd = variance.sqrt()
    spread = sd > 0
    return {
        "num_estimates": estimates.shape[0], "num_params": estimates.shape[1],
        "batch_size": batch_size,
        "mean": mean, "variance": variance,
        "total_variance": total_variance,
        "mean_squared_norm": estimates.pow(2).sum(1).mean().item(),
        "squared_norm_of_mean": mean.pow(2).sum().item(),
        "snr": mean.norm().item() / math.sqrt(total_variance) if total_variance > 0 else math.inf,
        "mean_coordinate_snr": (mean.abs()[spread] / sd[spread]).mean().item()
        if spread.any() else math.inf,
    }


