"""The Kumaraswamy distribution and its Taylor-series KL divergence to a Beta.

The Kumaraswamy is a Beta look-alike on the unit interval whose inverse CDF has a
closed form, so it can be reparameterized; Nalisnick & Smyth (2017) use it as the
posterior over stick fractions in the stick-breaking variational autoencoder.
"""

import numbers

import torch
from torch.distributions import Beta, constraints
from torch.distributions.kl import register_kl
from torch.distributions.utils import broadcast_all, euler_constant

from pyro.distributions.torch_distribution import TorchDistribution


def _log_beta_function(x, y):
    r"""
    Log of the Beta function, :math:`\log B(x, y) = \log\Gamma(x) + \log\Gamma(y)
    - \log\Gamma(x + y)` (Abramowitz & Stegun 6.2.2).
    """
    return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)


def _log_one_minus_pow(log_x, exponent):
    r"""
    :math:`\log(1 - x^a)` computed as :math:`\log(-\mathrm{expm1}(a \log x))`, which
    keeps its precision when :math:`x^a` is close to 0 or to 1.
    """
    return torch.log(-torch.expm1(exponent * log_x))


def _check_taylor_terms(taylor_terms):
    """Returns ``taylor_terms`` as an int; raises ``ValueError`` unless it is >= 1."""
    is_integer = isinstance(taylor_terms, numbers.Integral)
    if not is_integer or isinstance(taylor_terms, bool) or taylor_terms < 1:
        raise ValueError(f"taylor_terms must be an int >= 1, got {taylor_terms!r}")
    return int(taylor_terms)


class Kumaraswamy(TorchDistribution):
    r"""
    Kumaraswamy distribution on the unit interval (Kumaraswamy 1980; Jones 2009,
    "Kumaraswamy's distribution: A beta-type distribution with some tractability
    advantages"), with density

    .. math::

        q(x \mid a, b) = a b x^{a - 1} (1 - x^a)^{b - 1}, \qquad 0 < x < 1,

    and inverse CDF :math:`F^{-1}(u) = (1 - u^{1/b})^{1/a}`, which gives a
    reparameterized sampler. Sampling and scoring are done in log space so both
    stay finite for concentrations anywhere in :math:`[10^{-3}, 10^3]`.

    Unlike :class:`torch.distributions.Kumaraswamy`, this class carries the number of
    Taylor terms used by its KL divergence to a :class:`~torch.distributions.Beta`
    (see :func:`kl_kumaraswamy_beta`), so a guide can pick the accuracy it needs.

    :param concentration1: the first shape parameter :math:`a > 0`.
    :type concentration1: float or torch.Tensor
    :param concentration0: the second shape parameter :math:`b > 0`.
    :type concentration0: float or torch.Tensor
    :param int taylor_terms: number of terms :math:`M \ge 1` of the series in the
        KL divergence to a Beta. Defaults to 10, as in Nalisnick & Smyth (2017).
    """

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(
        self, concentration1, concentration0, taylor_terms=10, validate_args=None
    ):
        self.concentration1, self.concentration0 = broadcast_all(
            concentration1, concentration0
        )
        self.taylor_terms = _check_taylor_terms(taylor_terms)
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Kumaraswamy, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration1 = self.concentration1.expand(batch_shape)
        new.concentration0 = self.concentration0.expand(batch_shape)
        new.taylor_terms = self.taylor_terms
        super(Kumaraswamy, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=torch.Size()):
        r"""
        Draws :math:`x = (1 - u^{1/b})^{1/a}` with :math:`u \sim U(0, 1)`, evaluated
        as :math:`\log x = \log(-\mathrm{expm1}(\log(u) / b)) / a`.

        :math:`u` is kept in :math:`[\epsilon, 1 - \epsilon]` and :math:`x` in
        :math:`[\mathrm{tiny}, 1 - \epsilon]` (machine epsilon and smallest normal
        number of the dtype), so Beta log-densities of the sample stay finite.
        """
        shape = self._extended_shape(sample_shape)
        finfo = torch.finfo(self.concentration1.dtype)
        uniform = torch.rand(
            shape, dtype=self.concentration1.dtype, device=self.concentration1.device
        )
        uniform = uniform.clamp(min=finfo.eps, max=1 - finfo.eps)
        a, b = self.concentration1, self.concentration0
        log_x = _log_one_minus_pow(uniform.log(), b.reciprocal()) / a
        return log_x.exp().clamp(min=finfo.tiny, max=1 - finfo.eps)

    def log_prob(self, value):
        r"""
        :math:`\log q(x) = \log a + \log b + (a - 1)\log x + (b - 1)\log(1 - x^a)`,
        with :math:`\log(1 - x^a) = \log(-\mathrm{expm1}(a \log x))`.
        """
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        one_minus_x_pow_a = -torch.expm1(a * torch.log(value))
        return (
            a.log()
            + b.log()
            + torch.xlogy(a - 1, value)
            + torch.xlogy(b - 1, one_minus_x_pow_a)
        )

    def _moment(self, order):
        r"""
        Raw moment :math:`E[x^n] = b\,B(1 + n/a, b)` (Jones 2009), via
        :math:`\log\Gamma`.
        """
        a, b = self.concentration1, self.concentration0
        return torch.exp(b.log() + _log_beta_function(1 + order / a, b))

    @property
    def mean(self):
        r""":math:`E[x] = b\,B(1 + 1/a, b)`."""
        return self._moment(1)

    @property
    def variance(self):
        r""":math:`\mathrm{Var}[x] = b\,B(1 + 2/a, b) - (b\,B(1 + 1/a, b))^2`."""
        return self._moment(2) - self._moment(1).square()

    def entropy(self):
        r"""
        :math:`H = (1 - 1/b) + (1 - 1/a) H_b - \log a - \log b`, where
        :math:`H_b = \psi(b + 1) + \gamma` is the harmonic number of :math:`b`
        (Jones 2009; :math:`\gamma` is Euler's constant).
        """
        a, b = self.concentration1, self.concentration0
        harmonic_b = torch.digamma(b + 1) + euler_constant
        return (
            (1 - b.reciprocal())
            + (1 - a.reciprocal()) * harmonic_b
            - a.log()
            - b.log()
        )


def _kl_taylor_sum(a, b, taylor_terms):
    r"""
    :math:`\sum_{m=1}^{M} B(m/a, b) / (m + a b)`, which times :math:`b` is the
    :math:`M`-term Taylor estimate of :math:`-E_q[\log(1 - x)]` for
    :math:`x \sim \mathrm{Kumaraswamy}(a, b)`; each term is formed in log space.
    """
    m = torch.arange(1, taylor_terms + 1, dtype=a.dtype, device=a.device)
    a, b = a.unsqueeze(-1), b.unsqueeze(-1)
    log_terms = _log_beta_function(m / a, b) - torch.log(m + a * b)
    return log_terms.exp().sum(-1)


@register_kl(Kumaraswamy, Beta)
def kl_kumaraswamy_beta(q, p, taylor_terms=None):
    r"""
    KL divergence from a :class:`Kumaraswamy` ``q`` to a
    :class:`~torch.distributions.Beta` ``p`` (Nalisnick & Smyth 2017,
    "Stick-breaking variational autoencoders", appendix):

    .. math::

        \mathrm{KL}(q \,\|\, p) = \frac{a - \alpha}{a}\left(-\gamma - \psi(b)
        - \frac{1}{b}\right) + \log(a b) + \log B(\alpha, \beta) - \frac{b - 1}{b}
        + (\beta - 1)\, b \sum_{m=1}^{M} \frac{B(m/a, b)}{m + a b},

    for :math:`q = \mathrm{Kumaraswamy}(a, b)` and :math:`p = \mathrm{Beta}(\alpha,
    \beta)`. The sum is the Taylor series of :math:`-E_q[\log(1 - x)]`, cut after
    :math:`M` terms; its terms decay like :math:`m^{-(b + 1)}`, so the cut biases the
    result by :math:`(\beta - 1)` times a tail of order :math:`M^{-b}`: large when
    ``q`` has mass near 1 (small :math:`b`).

    This function is registered with :func:`torch.distributions.kl.register_kl`, so
    ``kl_divergence(q, p)`` uses it with :math:`M` = ``q.taylor_terms``.

    :param Kumaraswamy q: the approximating distribution.
    :param torch.distributions.Beta p: the reference distribution.
    :param int taylor_terms: :math:`M`; defaults to ``q.taylor_terms``.
    :returns: the divergence, with the broadcast batch shape of ``q`` and ``p``.
    :rtype: torch.Tensor
    """
    if taylor_terms is None:
        taylor_terms = q.taylor_terms
    taylor_terms = _check_taylor_terms(taylor_terms)
    a, b = q.concentration1, q.concentration0
    alpha, beta = p.concentration1, p.concentration0

    harmonic_b = euler_constant + torch.digamma(b) + b.reciprocal()
    cross_term = (a - alpha) / a * -harmonic_b
    normalizers = (a * b).log() + _log_beta_function(alpha, beta) - (b - 1) / b
    taylor_sum = _kl_taylor_sum(a, b, taylor_terms)
    return cross_term + normalizers + (beta - 1) * b * taylor_sum

