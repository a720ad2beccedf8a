r"""Non-conjugate Bayesian polynomial regression over data sets of a variable number of points.

The example of seed ``004`` ("Amortized inference without deep generative models",
"Learning importance sampling proposals": *Non-conjugate polynomial regression*). One data set
is a set of points :math:`(t_n, y_n)_{n=1}^{N}`, with :math:`N` varying between data sets:

.. math::

    w_k &\sim \mathcal N(0, s_k^2), \quad k = 0, \dots, D, \qquad
    \sigma \sim \mathrm{LogNormal}(\mu_\sigma, s_\sigma^2), \\
    y_n \mid w, \sigma &\sim \mathrm{StudentT}\big(\nu,\ f_w(t_n),\ \sigma\big), \qquad
    f_w(t) = \textstyle\sum_{k=0}^{D} w_k\, t^k .

The heavy-tailed Student-t noise with an unknown scale makes the posterior
:math:`p(w, \sigma \mid y)` non-conjugate (no closed form); with ``df=None`` the noise is
Gaussian, and with :math:`\sigma` held fixed the posterior over :math:`w` is the Gaussian of
Bayesian linear regression (:meth:`PolyRegression.exact_coefficient_posterior`), which the
tests use as a check.

Data sets are batched by padding to ``max_points`` with a ``mask`` (1 for a real point, 0 for
padding): the program is vectorized over ``plate("data")``, one element per *data set*, and the
points of a data set form the event dimension of site ``y``. Sites: ``w`` (shape ``(D+1,)``),
``sigma`` and the observed ``y``. The inputs :math:`t_n` are covariates, not modelled;
:meth:`PolyRegression.simulate_inputs` draws them (uniform on ``[-1, 1]``, a uniform number of
points) to simulate whole data sets for training a proposal without any observed data. The
story's settings, their defaults and the simulator are
:class:`pyro_dgm.data.polyreg.PolyRegPrior`, which the data set draws from too.
"""

from __future__ import annotations

import torch

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.data.polyreg import PolyRegPrior, polynomial, polynomial_features
from pyro_dgm.errors import PyroDGMError


def check_data(t: torch.Tensor, y: torch.Tensor | None, mask: torch.Tensor | None):
    """Return ``(t, y, mask)`` as float tensors of one shape ``(B, N)``, or raise PyroDGMError."""
    if not isinstance(t, torch.Tensor) or t.dim() != 2:
        raise PyroDGMError(f"polynomial regression takes inputs t of shape (data sets, points), "
                           f"got {getattr(t, 'shape', type(t).__name__)}")
    if mask is None:
        mask = torch.ones_like(t)
    for name, value in (("y", y), ("mask", mask)):
        if value is not None and tuple(value.shape) != tuple(t.shape):
            raise PyroDGMError(f"{name} has shape {tuple(value.shape)} but t has shape "
                               f"{tuple(t.shape)}; they must match point for point")
    real = mask.bool()
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise PyroDGMError("mask must hold only 0 (padding) and 1 (a real point)")
    if not bool(real.any(-1).all()):
        raise PyroDGMError("every data set needs at least one real point (a row of mask is all 0)")
    for name, value in (("t", t), ("y", y)):
        if value is not None and not bool(torch.isfinite(value[real]).all()):
            raise PyroDGMError(f"{name} holds NaN or infinite values at real points")
    zero = torch.zeros((), dtype=t.dtype, device=t.device)
    t = torch.where(real, t, zero)  # padding may hold anything, even NaN
    y = None if y is None else torch.where(real, y, zero)
    return t, y, mask.to(t.dtype)


class PolyRegression(PyroModule):
    """Bayesian polynomial regression of degree ``degree`` with Student-t noise of ``df`` degrees
    of freedom (``None``: Gaussian noise); latent sites ``w`` and ``sigma``, observed ``y``."""

    def __init__(self, degree: int = PolyRegPrior.degree, df: float | None = PolyRegPrior.df,
                 coef_scale: float = PolyRegPrior.coef_scale,
                 coef_decay: float = PolyRegPrior.coef_decay,
                 noise_loc: float = PolyRegPrior.noise_loc,
                 noise_scale: float = PolyRegPrior.noise_scale,
                 min_points: int = PolyRegPrior.min_points,
                 max_points: int = PolyRegPrior.max_points):
        super().__init__(name="polyreg")
        self.prior = PolyRegPrior(int(degree), df, coef_scale, coef_decay, float(noise_loc),
                                  float(noise_scale), int(min_points), int(max_points))
        self.degree, self.df = self.prior.degree, df
        self.noise_loc, self.noise_scale = self.prior.noise_loc, self.prior.noise_scale
        self.min_points, self.max_points = self.prior.min_points, self.prior.max_points
        self.register_buffer("coef_scales", self.prior.coef_scales())

    # -- the prior and the likelihood --------------------------------------------------------
    def coefficient_prior(self) -> dist.Distribution:
        """``p(w) = prod_k N(w_k; 0, s_k^2)``."""
        return dist.Normal(torch.zeros_like(self.coef_scales), self.coef_scales).to_event(1)

    def noise_prior(self) -> dist.Distribution:
        """``p(sigma) = LogNormal(mu_sigma, s_sigma^2)``."""
        loc = self.coef_scales.new_tensor(self.noise_loc)
        return dist.LogNormal(loc, self.noise_scale)

    def regression_function(self, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``f_w(t) = sum_k w_k t^k``; ``w`` (..., D+1) and ``t`` (..., N) broadcast to (..., N)."""
        return polynomial(w, t)

    def likelihood(self, w, sigma, t, mask) -> dist.Distribution:
        """``prod_n StudentT(y_n; nu, f_w(t_n), sigma)`` over the real points (mask 1)."""
        loc, scale = self.regression_function(w, t), sigma.unsqueeze(-1)
        noise = (dist.Normal(loc, scale) if self.df is None
                 else dist.StudentT(self.df, loc, scale))
        return noise.mask(mask.bool()).to_event(1)

    # -- the program ---------------------------------------------------------------------------
    def forward(self, t: torch.Tensor, y: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, observations: dict | None = None):
        """The model program over ``B`` data sets: ``t``, ``y``, ``mask`` of shape ``(B, N)``.

        ``observations={"y": y}`` (the keyword Pyro's ``CSIS`` passes) takes precedence over
        ``y``; with neither, ``y`` is sampled. Returns ``y``.
        """
        if observations is not None:
            y = observations.get("y", y)
        t, y, mask = check_data(t, y, mask)
        with pyro.plate("data", t.shape[0]):
            w = pyro.sample("w", self.coefficient_prior())
            sigma = pyro.sample("sigma", self.noise_prior())
            return pyro.sample("y", self.likelihood(w, sigma, t, mask), obs=y)

    # -- simulation -----------------------------------------------------------------------------
    def simulate_inputs(self, n: int, generator: torch.Generator | None = None):
        """``(t, mask)`` of ``n`` data sets (:meth:`PolyRegPrior.simulate_inputs`)."""
        return self.prior.simulate_inputs(n, generator)

    def simulate(self, n: int, seed: int = 0) -> dict:
        """``n`` data sets drawn from the joint, ``{"t", "y", "mask", "w", "sigma"}``
        (:meth:`PolyRegPrior.simulate`, on the CPU in float32)."""
        return self.prior.simulate(n, seed)

    # -- the conjugate special case -------------------------------------------------------------
    def exact_coefficient_posterior(self, t, y, mask, sigma) -> dist.Distribution:
        """``p(w | y, sigma)`` for Gaussian noise (``df=None``) with ``sigma`` known:
        ``N(S Phi^T y / sigma^2, S)`` with ``S^{-1} = diag(s^{-2}) + Phi^T Phi / sigma^2``."""
        if self.df is not None:
            raise PyroDGMError("the exact posterior exists only for Gaussian noise (df=None)")
        t, y, mask = check_data(t, y, mask)
        phi = polynomial_features(t, self.degree) * mask.unsqueeze(-1)
        sigma2 = torch.as_tensor(sigma, dtype=t.dtype).reshape(-1, 1, 1) ** 2
        precision = torch.diag(self.coef_scales.to(t.dtype) ** -2) + phi.mT @ phi / sigma2
        covariance = torch.linalg.inv(precision)
        mean = covariance @ (phi.mT @ (y * mask).unsqueeze(-1)) / sigma2
        return dist.MultivariateNormal(mean.squeeze(-1), covariance_matrix=covariance)
