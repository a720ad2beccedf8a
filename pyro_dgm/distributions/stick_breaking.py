"""Stick-breaking: from fractions of a unit stick to weights on the simplex.

Breaking off the fraction :math:`v_1` of a unit stick, then the fraction :math:`v_2`
of what is left, and so on, gives the weights of Sethuraman's (1994) construction of
the Dirichlet process; cut after finitely many breaks it is the truncated prior of
Ishwaran & James (2001) used by the stick-breaking VAE (Nalisnick & Smyth 2017).
"""

import torch
import torch.nn.functional as F
from torch.distributions import constraints
from torch.distributions.transforms import Transform
from torch.distributions.utils import broadcast_all

from pyro.distributions import Beta, TransformedDistribution


def _log_sticks_left(fractions):
    r"""
    :math:`\log \prod_{j < k} (1 - v_j)` for :math:`k = 1, \ldots, K + 1`: the log
    length of the stick left before each break, from a cumulative sum of
    :math:`\log(1 - v_j)`.
    """
    return F.pad(torch.log1p(-fractions).cumsum(-1), [1, 0])


def log_stick_weights(fractions: torch.Tensor) -> torch.Tensor:
    r"""``log pi`` (``K + 1`` values) from ``K`` stick fractions, in log space:
    :math:`\log \pi_k = \log v_k + \sum_{j<k} \log(1 - v_j)`,
    :math:`\log \pi_{K+1} = \sum_{j \le K} \log(1 - v_j)` (the log of
    :class:`StickBreakingFractions`' output, without leaving log space)."""
    log_left = _log_sticks_left(fractions)
    return torch.cat([fractions.log() + log_left[..., :-1], log_left[..., -1:]], dim=-1)


class StickBreakingFractions(Transform):
    r"""
    Bijection from :math:`K` stick fractions :math:`v \in (0, 1)^K` to :math:`K + 1`
    weights :math:`\pi` on the simplex (Sethuraman 1994):

    .. math::

        \pi_k = v_k \prod_{j < k} (1 - v_j) \quad (k = 1, \ldots, K), \qquad
        \pi_{K + 1} = \prod_{j \le K} (1 - v_j),

    the last weight being the stick left after :math:`K` breaks. The products are
    formed in log space. The inverse is :math:`v_k = \pi_k / \sum_{j \ge k} \pi_j`.

    Unlike :class:`~torch.distributions.transforms.StickBreakingTransform`, whose
    inputs are unconstrained logits, this transform takes the fractions themselves,
    so a Beta or Kumaraswamy over :math:`v` can be pushed onto the simplex.
    """

    domain = constraints.independent(constraints.unit_interval, 1)
    codomain = constraints.simplex
    bijective = True
    sign = +1

    def __eq__(self, other):
        # stateless, so any two instances agree; lets KL rules for two transformed
        # distributions with this transform dispatch
        return isinstance(other, StickBreakingFractions)

    def _call(self, fractions):
        log_sticks_left = _log_sticks_left(fractions)
        broken_off = fractions * log_sticks_left[..., :-1].exp()
        return torch.cat([broken_off, log_sticks_left[..., -1:].exp()], dim=-1)

    def _inverse(self, weights):
        # Weight still on the stick before each break: a reversed cumulative sum,
        # which keeps its precision when the weights get small.
        finfo = torch.finfo(weights.dtype)
        sticks_left = weights.flip(-1).cumsum(-1).flip(-1)[..., :-1]
        fractions = weights[..., :-1] / sticks_left.clamp(min=finfo.tiny)
        return fractions.clamp(min=finfo.tiny, max=1 - finfo.eps)

    def log_abs_det_jacobian(self, fractions, weights):
        r"""
        :math:`\log|\det J| = \sum_{k=1}^{K} \sum_{j < k} \log(1 - v_j)`, the log
        determinant of the lower-triangular Jacobian of
        :math:`v \mapsto \pi_{1:K}`, whose diagonal is
        :math:`\partial \pi_k / \partial v_k = \prod_{j < k} (1 - v_j)`
        (:math:`\pi_{K + 1}` is fixed by the others).
        """
        return _log_sticks_left(fractions)[..., :-1].sum(-1)

    def forward_shape(self, shape):
        """:math:`K` fractions map to :math:`K + 1` weights."""
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return shape[:-1] + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        """:math:`K + 1` weights map back to :math:`K` fractions."""
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return shape[:-1] + (shape[-1] - 1,)


class TruncatedGEM(TransformedDistribution):
    r"""
    Truncated GEM (Griffiths-Engen-McCloskey) stick-breaking prior over
    :math:`T` weights, :math:`\pi \sim \mathrm{GEM}(\alpha_0)` cut after
    :math:`T - 1` breaks (Ishwaran & James 2001, "Gibbs sampling methods for
    stick-breaking priors"):

    .. math::

        v_k \sim \mathrm{Beta}(1, \alpha_0), \qquad
        \pi_k = v_k \prod_{j < k} (1 - v_j) \quad (k < T), \qquad
        \pi_T = \prod_{j < T} (1 - v_j),

    so the weights always sum to one. It is the Beta fractions pushed through
    :class:`StickBreakingFractions`, and its ``log_prob`` is the density of
    :math:`\pi_{1:T-1}`. A larger :math:`\alpha_0` spreads the weight over more
    sticks: :math:`E[\pi_k] = \frac{1}{1 + \alpha_0}
    \left(\frac{\alpha_0}{1 + \alpha_0}\right)^{k - 1}` for :math:`k < T`.

    :param concentration: :math:`\alpha_0 > 0`; its shape is the batch shape.
    :type concentration: float or torch.Tensor
    :param int truncation: the number of weights :math:`T \ge 2`.
    """

    arg_constraints = {"concentration": constraints.positive}

    def __init__(self, concentration, truncation, validate_args=None):
        is_integer = isinstance(truncation, int) and not isinstance(truncation, bool)
        if not is_integer or truncation < 2:
            raise ValueError(f"truncation must be an int >= 2, got {truncation!r}")
        (self.concentration,) = broadcast_all(concentration)
        self.truncation = truncation
        fraction_shape = self.concentration.shape + (truncation - 1,)
        concentration0 = self.concentration.unsqueeze(-1).expand(fraction_shape)
        fractions = Beta(
            torch.ones_like(concentration0), concentration0, validate_args=validate_args
        )
        super().__init__(
            fractions.to_event(1), StickBreakingFractions(), validate_args=validate_args
        )

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(TruncatedGEM, _instance)
        new.concentration = self.concentration.expand(batch_shape)
        new.truncation = self.truncation
        return super().expand(batch_shape, _instance=new)

    @property
    def mean(self):
        r"""
        :math:`E[\pi_k] = E[v_k] \prod_{j < k} E[1 - v_j] =
        \frac{1}{1 + \alpha_0} \left(\frac{\alpha_0}{1 + \alpha_0}\right)^{k - 1}`
        for :math:`k < T`, and :math:`E[\pi_T] = (\alpha_0 / (1 + \alpha_0))^{T - 1}`,
        since the fractions are independent.
        """
        mean_fraction = (1 + self.concentration).reciprocal().unsqueeze(-1)
        fractions = mean_fraction.expand(self.batch_shape + (self.truncation - 1,))
        return StickBreakingFractions()(fractions)
