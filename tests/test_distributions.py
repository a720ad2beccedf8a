"""Tests of pyro_dgm.distributions against independent computations.

Every reference here is computed another way than the code under test: numerical
integration on a fine grid, Monte Carlo, finite differences, autograd Jacobians,
torch's own Kumaraswamy / Beta / Dirichlet, or values worked out by hand.
"""

import math

import pytest
import torch
from torch.distributions import kl_divergence
from torch.distributions.transforms import ExpTransform

import pyro.distributions as dist
from pyro_dgm.distributions import (
    Kumaraswamy,
    StickBreakingFractions,
    TruncatedGEM,
    kl_kumaraswamy_beta,
)

SHAPE_PAIRS = [(0.5, 0.5), (1.0, 1.0), (2.0, 5.0), (5.0, 0.5), (30.0, 3.0)]
EXTREME_CONCENTRATIONS = [1e-3, 1.0, 1e3]


def kumaraswamy(a, b, **kwargs):
    """A float64 Kumaraswamy with scalar concentrations ``a`` and ``b``."""
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    return Kumaraswamy(a, b, **kwargs)


def unit_interval_grid(points=200_001):
    """Float64 grid on (0, 1), dense near both ends: sigmoid of an even grid on
    [-45, 33], i.e. from 3e-20 to 1 - 5e-15 (1 - x must stay representable)."""
    logits = torch.linspace(-45.0, 33.0, points, dtype=torch.float64)
    return torch.unique(torch.sigmoid(logits))


def integrate(values, grid):
    """Trapezoid rule for the integral of ``values`` sampled on ``grid``."""
    return torch.trapezoid(values, grid).item()


def monte_carlo_kl(q, p, num_samples=1_000_000):
    """Monte Carlo estimate of KL(q || p) and its standard error."""
    x = q.sample((num_samples,))
    log_ratio = q.log_prob(x) - p.log_prob(x)
    return log_ratio.mean().item(), (log_ratio.std() / math.sqrt(num_samples)).item()


# ---------------------------------------------------------------------------
# Kumaraswamy: density
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", SHAPE_PAIRS)
def test_kumaraswamy_density_integrates_to_one(a, b):
    grid = unit_interval_grid()
    density = kumaraswamy(a, b).log_prob(grid).exp()
    assert integrate(density, grid) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("a,b", SHAPE_PAIRS + [(0.3, 8.0)])
def test_kumaraswamy_log_prob_matches_direct_formula_and_torch(a, b):
    x = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    log_prob = kumaraswamy(a, b).log_prob(x)
    direct = torch.log(a * b * x ** (a - 1) * (1 - x**a) ** (b - 1))
    assert torch.allclose(log_prob, direct, rtol=1e-9)
    # torch's version is a chain of power transforms; it loses 1 - x^a to -inf where
    # x^a underflows next to 1 (a = 30, x < 0.3), so compare where it is finite.
    torch_log_prob = torch.distributions.Kumaraswamy(
        torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    ).log_prob(x)
    finite = torch.isfinite(torch_log_prob)
    assert finite.sum() >= 60
    assert torch.allclose(log_prob[finite], torch_log_prob[finite], rtol=1e-9)


@pytest.mark.parametrize("b", [0.5, 1.0, 2.0, 7.5])
def test_kumaraswamy_with_unit_a_is_beta(b):
    # Kumaraswamy(1, b) has density b (1 - x)^(b - 1), which is Beta(1, b).
    x = torch.linspace(1e-4, 1 - 1e-4, 101, dtype=torch.float64)
    expected = dist.Beta(torch.tensor(1.0, dtype=torch.float64), b).log_prob(x)
    assert torch.allclose(kumaraswamy(1.0, b).log_prob(x), expected, atol=1e-6)


def test_kumaraswamy_one_one_is_uniform_including_endpoints():
    x = torch.tensor([0.0, 1e-30, 0.3, 1.0], dtype=torch.float64)
    log_prob = kumaraswamy(1.0, 1.0, validate_args=True).log_prob(x)
    assert torch.equal(log_prob, torch.zeros_like(x))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("a", EXTREME_CONCENTRATIONS)
@pytest.mark.parametrize("b", EXTREME_CONCENTRATIONS)
def test_kumaraswamy_log_prob_is_finite_near_the_ends(a, b, dtype):
    x = torch.tensor([1e-30, 1e-6, 0.5, 1 - 1e-7], dtype=dtype)
    assert x[0] > 0 and x[-1] < 1  # all four are representable in both dtypes
    q = Kumaraswamy(torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype))
    assert torch.isfinite(q.log_prob(x)).all()


# ---------------------------------------------------------------------------
# Kumaraswamy: moments and entropy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", SHAPE_PAIRS)
def test_kumaraswamy_moments_match_numerical_integration(a, b):
    q = kumaraswamy(a, b)
    grid = unit_interval_grid()
    density = q.log_prob(grid).exp()
    mean = integrate(grid * density, grid)
    second_moment = integrate(grid.square() * density, grid)
    assert q.mean.item() == pytest.approx(mean, rel=1e-5)
    assert q.variance.item() == pytest.approx(second_moment - mean**2, rel=1e-4)


@pytest.mark.parametrize("a,b", SHAPE_PAIRS)
def test_kumaraswamy_moments_match_monte_carlo(a, b):
    torch.manual_seed(0)
    num_samples = 400_000
    q = kumaraswamy(a, b)
    x = q.sample((num_samples,))
    centered = x - x.mean()
    sample_variance = centered.square().mean()
    fourth_moment = centered.pow(4).mean()
    mean_se = (sample_variance / num_samples).sqrt()
    variance_se = ((fourth_moment - sample_variance**2) / num_samples).sqrt()
    assert (x.mean() - q.mean).abs() < 5 * mean_se
    assert (sample_variance - q.variance).abs() < 5 * variance_se


@pytest.mark.parametrize("a,b", SHAPE_PAIRS)
def test_kumaraswamy_entropy_matches_numerical_integration(a, b):
    q = kumaraswamy(a, b)
    grid = unit_interval_grid()
    log_density = q.log_prob(grid)
    entropy = -integrate(log_density.exp() * log_density, grid)
    assert q.entropy().item() == pytest.approx(entropy, abs=1e-5)


# ---------------------------------------------------------------------------
# Kumaraswamy: reparameterized sampling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [(0.5, 2.0), (2.0, 5.0), (5.0, 0.5), (30.0, 3.0)])
def test_kumaraswamy_rsample_gradients_match_finite_differences(a, b):
    def mean_square(a, b):
        # the same uniform draws on every call, so the sample is a function of (a, b)
        torch.manual_seed(1)
        return Kumaraswamy(a, b).rsample((2000,)).square().mean()

    a = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    grad_a, grad_b = torch.autograd.grad(mean_square(a, b), [a, b])

    step = 1e-6
    with torch.no_grad():
        fd_a = (mean_square(a + step, b) - mean_square(a - step, b)) / (2 * step)
        fd_b = (mean_square(a, b + step) - mean_square(a, b - step)) / (2 * step)
    assert grad_a.item() == pytest.approx(fd_a.item(), rel=1e-6, abs=1e-9)
    assert grad_b.item() == pytest.approx(fd_b.item(), rel=1e-6, abs=1e-9)


def test_kumaraswamy_rsample_follows_the_inverse_cdf():
    # x = (1 - u^(1/b))^(1/a) for the uniform draws u of the same seed.
    a, b = 3.0, 0.7
    torch.manual_seed(2)
    x = kumaraswamy(a, b).rsample((1000,))
    torch.manual_seed(2)
    u = torch.rand(1000, dtype=torch.float64)
    assert torch.allclose(x, (1 - u ** (1 / b)) ** (1 / a), rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kumaraswamy_rsample_is_finite_with_finite_gradients(dtype):
    values = torch.tensor([1e-3, 1e-1, 1.0, 10.0, 1e3], dtype=dtype)
    a = values.unsqueeze(-1).expand(5, 5).clone().requires_grad_()
    b = values.expand(5, 5).clone().requires_grad_()
    torch.manual_seed(3)
    x = Kumaraswamy(a, b).rsample((2000,))
    assert x.shape == (2000, 5, 5)
    assert ((x > 0) & (x < 1)).all()
    # a Beta log-density downstream of the sample stays finite, and so do gradients
    prior_log_prob = dist.Beta(torch.tensor(0.5, dtype=dtype), 5.0).log_prob(x)
    assert torch.isfinite(prior_log_prob).all()
    grad_a, grad_b = torch.autograd.grad((x + prior_log_prob).sum(), [a, b])
    assert torch.isfinite(grad_a).all() and torch.isfinite(grad_b).all()


# ---------------------------------------------------------------------------
# Kumaraswamy || Beta divergence
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("b", [2.0, 3.0, 5.0, 10.0])
def test_kl_of_kumaraswamy_to_its_equal_beta_is_zero(b):
    # Kumaraswamy(1, b) is Beta(1, b); the 200-term series misses < 3e-5 (b = 2).
    q, p = kumaraswamy(1.0, b), dist.Beta(torch.tensor(1.0, dtype=torch.float64), b)
    assert abs(kl_kumaraswamy_beta(q, p, taylor_terms=200).item()) < 1e-4


# (a, b, alpha, beta, taylor_terms, truncation bias allowed): the series cut after M
# terms drops a positive tail times (beta - 1), so it underestimates here; the
# allowances are the measured biases (vs 10,000 terms and Monte Carlo) rounded up.
ACCURATE_KL_CASES = [
    (1.0, 5.0, 1.0, 5.0, 10, 5e-4),
    (1.0, 5.0, 1.0, 5.0, 100, 0.0),
    (0.7, 3.0, 1.0, 5.0, 10, 3e-3),
    (0.7, 3.0, 1.0, 5.0, 100, 0.0),
    (2.0, 2.0, 1.0, 5.0, 10, 0.11),
    (2.0, 2.0, 1.0, 5.0, 100, 2e-3),
    (3.0, 4.0, 2.0, 3.0, 10, 0.02),
    (3.0, 4.0, 2.0, 3.0, 100, 0.0),
]


@pytest.mark.parametrize("a,b,alpha,beta,taylor_terms,bias", ACCURATE_KL_CASES)
def test_kl_taylor_series_matches_monte_carlo(a, b, alpha, beta, taylor_terms, bias):
    torch.manual_seed(4)
    q = kumaraswamy(a, b)
    p = dist.Beta(torch.tensor(alpha, dtype=torch.float64), beta)
    kl_mc, standard_error = monte_carlo_kl(q, p)
    kl_taylor = kl_kumaraswamy_beta(q, p, taylor_terms=taylor_terms).item()
    # with beta > 1 the cut only drops positive terms; the 1e-6 floor is for
    # q = p, where every log-ratio is 0 and so is the standard error
    tolerance = 5 * standard_error + 1e-6
    assert kl_taylor <= kl_mc + tolerance
    assert abs(kl_taylor - kl_mc) < tolerance + bias


def test_kl_truncation_bias_shrinks_with_more_terms_for_mass_near_one():
    # Kumaraswamy(2, 2) has a (1 - x) tail, so the series converges like 1/M^2: the
    # default 10 terms give 2.090 against 2.191 by Monte Carlo.
    torch.manual_seed(5)
    q = kumaraswamy(2.0, 2.0)
    p = dist.Beta(torch.tensor(1.0, dtype=torch.float64), 5.0)
    kl_mc, standard_error = monte_carlo_kl(q, p)
    kl_10, kl_100, kl_1000 = (
        kl_kumaraswamy_beta(q, p, taylor_terms=m).item() for m in (10, 100, 1000)
    )
    assert kl_10 < kl_100 < kl_1000
    assert kl_mc - kl_10 > 0.08  # biased by about 0.1 nats, 40 standard errors
    assert abs(kl_1000 - kl_mc) < 5 * standard_error


def test_kl_taylor_series_fails_for_heavy_mass_near_one():
    # Kumaraswamy(5, 0.5) piles up at 1 and the tail of the series decays like
    # 1/sqrt(M): 10 terms give 8.80 and 1000 terms 12.93 against 13.43 by Monte Carlo.
    torch.manual_seed(6)
    q = kumaraswamy(5.0, 0.5)
    p = dist.Beta(torch.tensor(1.0, dtype=torch.float64), 5.0)
    kl_mc, standard_error = monte_carlo_kl(q, p)
    kl_10, kl_1000 = (
        kl_kumaraswamy_beta(q, p, taylor_terms=m).item() for m in (10, 1000)
    )
    assert kl_mc == pytest.approx(13.43, abs=5 * standard_error + 0.005)
    assert kl_10 == pytest.approx(8.80, abs=0.01)
    assert kl_mc - kl_1000 > 0.3


def test_kl_divergence_dispatches_with_the_instance_taylor_terms():
    a = torch.tensor([0.7, 2.0, 3.0]).unsqueeze(-1)
    b = torch.tensor([3.0, 2.0, 4.0]).unsqueeze(-1)
    p = dist.Beta(torch.tensor([1.0, 2.0]), torch.tensor([5.0, 3.0]))
    for taylor_terms in (3, 10):
        q = Kumaraswamy(a, b, taylor_terms=taylor_terms)
        kl = kl_divergence(q, p)
        assert kl.shape == (3, 2)
        for i in range(3):
            for j in range(2):
                scalar_q = Kumaraswamy(a[i, 0], b[i, 0])
                scalar_p = dist.Beta(p.concentration1[j], p.concentration0[j])
                expected = kl_kumaraswamy_beta(scalar_q, scalar_p, taylor_terms)
                assert kl[i, j].item() == pytest.approx(expected.item(), rel=1e-6)
    three_terms = kl_divergence(Kumaraswamy(a, b, taylor_terms=3), p)
    assert not torch.allclose(three_terms, kl_divergence(Kumaraswamy(a, b), p))


def test_kumaraswamy_expand_keeps_taylor_terms():
    q = Kumaraswamy(torch.tensor(2.0), torch.tensor(2.0), taylor_terms=37)
    expanded = q.expand([4, 3])
    assert expanded.batch_shape == (4, 3)
    assert expanded.taylor_terms == 37
    p = dist.Beta(1.0, 5.0)
    assert torch.allclose(kl_divergence(expanded, p), kl_divergence(q, p).expand(4, 3))


INVALID_KUMARASWAMY_ARGS = [
    (0.0, 1.0, 10),
    (1.0, -2.0, 10),
    (1.0, 1.0, 0),
    (1.0, 1.0, 2.5),
]


@pytest.mark.parametrize("a,b,taylor_terms", INVALID_KUMARASWAMY_ARGS)
def test_kumaraswamy_rejects_invalid_arguments(a, b, taylor_terms):
    a, b = torch.tensor(a), torch.tensor(b)
    with pytest.raises(ValueError):
        Kumaraswamy(a, b, taylor_terms=taylor_terms, validate_args=True)


def test_kumaraswamy_rejects_values_outside_the_unit_interval():
    q = Kumaraswamy(torch.tensor(2.0), torch.tensor(2.0), validate_args=True)
    with pytest.raises(ValueError):
        q.log_prob(torch.tensor(1.5))


def test_kumaraswamy_rejects_an_invalid_taylor_terms_in_one_sentence():
    with pytest.raises(ValueError, match=r"^taylor_terms must be None \(the accurate KL\)"):
        Kumaraswamy(torch.tensor(1.0), torch.tensor(1.0), taylor_terms=0)


# ---------------------------------------------------------------------------
# Kumaraswamy: CDF and inverse CDF
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", SHAPE_PAIRS)
def test_kumaraswamy_cdf_matches_numerical_integration_of_the_density(a, b):
    q = kumaraswamy(a, b)
    grid = unit_interval_grid()
    # the mass below the first grid point (3e-20) is below 1e-9 for these shapes
    integrated = torch.cumulative_trapezoid(q.log_prob(grid).exp(), grid)
    assert torch.allclose(q.cdf(grid[1:]), integrated, rtol=0, atol=1e-6)


@pytest.mark.parametrize("a,b", SHAPE_PAIRS)
def test_kumaraswamy_cdf_and_icdf_match_torch(a, b):
    q, reference = kumaraswamy(a, b), torch.distributions.Kumaraswamy(
        torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    x = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    assert torch.allclose(q.cdf(x), reference.cdf(x), rtol=1e-10, atol=1e-12)
    assert torch.allclose(q.icdf(x), reference.icdf(x), rtol=1e-10, atol=1e-12)


ROUND_TRIP_CONCENTRATIONS = [1e-2, 0.3, 1.0, 5.0, 1e2]


@pytest.mark.parametrize("a", ROUND_TRIP_CONCENTRATIONS)
@pytest.mark.parametrize("b", ROUND_TRIP_CONCENTRATIONS)
def test_kumaraswamy_icdf_inverts_the_cdf(a, b):
    # Where u or x is within 1e-9 of 0 or 1 the round trip is ill-conditioned in float64
    # (x = 1 - 1e-12 carries 1 - x to only 4 digits), so those points are left out.
    q = kumaraswamy(a, b)
    x = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    u = q.cdf(x)
    kept = (u > 1e-300) & (u < 1 - 1e-9)  # none for a = 0.01, b = 100: F(0.001) > 1 - 1e-9
    assert torch.allclose(q.icdf(u[kept]), x[kept], rtol=1e-5, atol=0)
    u = torch.linspace(1e-6, 1 - 1e-6, 1001, dtype=torch.float64)
    x = q.icdf(u)
    kept = (x > 1e-300) & (x < 1 - 1e-9)
    assert torch.allclose(q.cdf(x[kept]), u[kept], rtol=1e-5, atol=0)


def test_kumaraswamy_cdf_and_icdf_at_the_ends_of_the_interval():
    for a, b in SHAPE_PAIRS + [(1e-3, 1e3), (1e3, 1e-3)]:
        q = kumaraswamy(a, b)
        ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
        assert q.cdf(ends).tolist() == [0.0, 1.0]
        assert q.icdf(ends).tolist() == [0.0, 1.0]


def test_kumaraswamy_cdf_and_icdf_reject_values_outside_the_unit_interval():
    q = Kumaraswamy(torch.tensor(2.0), torch.tensor(2.0), validate_args=True)
    with pytest.raises(ValueError, match="support"):
        q.cdf(torch.tensor(1.5))
    with pytest.raises(ValueError, match=r"^Kumaraswamy.icdf takes probabilities in \[0, 1\]"):
        q.icdf(torch.tensor([-0.1, 0.5]))
    assert q.icdf(torch.tensor([0.0, 0.5, 1.0])).isfinite().all()


# ---------------------------------------------------------------------------
# Kumaraswamy || Beta divergence: the accurate default
# ---------------------------------------------------------------------------


def kl_inputs(rows, dtype=torch.float64):
    """Tensors a, b, alpha, beta from rows (log10 a, log10 b, alpha, beta, ...)."""
    columns = torch.tensor([row[:4] for row in rows], dtype=torch.float64).T
    a, b = 10.0 ** columns[0], 10.0 ** columns[1]
    return [c.to(dtype) for c in (a, b, columns[2], columns[3])]


@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-3), (torch.float32, 2e-3)])
def test_kl_matches_the_reference_table(dtype, tolerance):
    a, b, alpha, beta = kl_inputs(KL_REFERENCE, dtype)
    reference = torch.tensor([row[4] for row in KL_REFERENCE], dtype=torch.float64)
    kl = kl_kumaraswamy_beta(Kumaraswamy(a, b), dist.Beta(alpha, beta)).double()
    error = (kl - reference).abs()
    # float32 carries about 1e-7 of the value itself (up to ~900 nats here)
    assert error.max().item() <= tolerance + (1e-6 * reference.abs().max().item()
                                               if dtype == torch.float32 else 0.0)


def test_kl_taylor_series_misses_the_reference_table_by_far():
    a, b, alpha, beta = kl_inputs(KL_REFERENCE)
    reference = torch.tensor([row[4] for row in KL_REFERENCE], dtype=torch.float64)
    taylor = kl_kumaraswamy_beta(Kumaraswamy(a, b, taylor_terms=10), dist.Beta(alpha, beta))
    assert (taylor - reference).abs().max().item() > 100


@pytest.mark.parametrize("a,b,alpha,beta,old_value", [
    # kl_kumaraswamy_beta before the accurate KL existed (commit ded0ccc), float64
    (5.0, 0.5, 1.0, 5.0, 8.796180654123887),
    (1.0, 1.0, 1.0, 5.0, 2.0269257239295366),
    (10.0, 10.0, 1.0, 5.0, 5.155232779103437),
    (0.3, 2.0, 2.0, 3.0, 5.228300085138936),
    (50.0, 0.05, 1.0, 0.5, 19.074525977979807),
])
def test_kl_with_ten_taylor_terms_is_unchanged(a, b, alpha, beta, old_value):
    p = dist.Beta(torch.tensor(alpha, dtype=torch.float64), beta)
    assert kl_kumaraswamy_beta(kumaraswamy(a, b, taylor_terms=10), p).item() == old_value
    assert kl_kumaraswamy_beta(kumaraswamy(a, b), p, taylor_terms=10).item() == old_value
    assert kl_divergence(kumaraswamy(a, b, taylor_terms=10), p).item() == old_value


def test_kl_divergence_defaults_to_the_accurate_kl():
    q, p = kumaraswamy(5.0, 0.5), dist.Beta(torch.tensor(1.0, dtype=torch.float64), 5.0)
    assert q.taylor_terms is None
    accurate = kl_kumaraswamy_beta(kumaraswamy(5.0, 0.5, taylor_terms=10), p, taylor_terms=None)
    assert kl_divergence(q, p).item() == accurate.item()
    # the three examples against the 30-digit reference (Beta(1, 5))
    for (a, b), reference in {(5.0, 0.5): 13.433117778, (1.0, 1.0): 2.390562088,
                              (10.0, 10.0): 5.279444509}.items():
        assert kl_divergence(kumaraswamy(a, b), p).item() == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0, 5.0, 10.0])
def test_taylor_series_is_a_lower_bound_for_beta_above_one_and_upper_below(beta):
    # The series for -E[log(1 - x)] has positive terms, so cutting it lowers -E[log(1 - x)]:
    # the cut KL is too low when beta > 1 and too high when beta < 1. The allowance is the
    # quadrature's error, where the series has converged (large b).
    exponents = torch.linspace(-2, 2, 21, dtype=torch.float64)
    a, b = (10.0 ** exponents).unsqueeze(-1), (10.0 ** exponents)
    p = dist.Beta(torch.tensor(1.0, dtype=torch.float64), beta)
    accurate = kl_kumaraswamy_beta(Kumaraswamy(a, b), p)
    taylor = kl_kumaraswamy_beta(Kumaraswamy(a, b, taylor_terms=10), p)
    allowance = 2e-5 * abs(beta - 1)
    assert ((accurate - taylor) * math.copysign(1.0, beta - 1) >= -allowance).all()


@pytest.mark.parametrize("a,b,alpha,beta", [(5.0, 0.5, 1.0, 5.0), (0.3, 2.0, 2.0, 3.0),
                                            (2.0, 2.0, 1.0, 0.5)])
def test_kl_matches_monte_carlo(a, b, alpha, beta):
    torch.manual_seed(8)
    q, p = kumaraswamy(a, b), dist.Beta(torch.tensor(alpha, dtype=torch.float64), beta)
    kl_mc, standard_error = monte_carlo_kl(q, p, num_samples=200_000)
    assert abs(kl_kumaraswamy_beta(q, p).item() - kl_mc) < 4 * standard_error


@pytest.mark.parametrize("a,b,beta", [(0.05, 0.05, 5.0), (0.7, 3.0, 5.0), (5.0, 0.5, 10.0),
                                      (40.0, 20.0, 0.3)])
def test_kl_gradients_pass_gradcheck(a, b, beta):
    inputs = (torch.tensor(a, dtype=torch.float64, requires_grad=True),
              torch.tensor(b, dtype=torch.float64, requires_grad=True))
    p = dist.Beta(torch.tensor(1.0, dtype=torch.float64), beta)
    assert torch.autograd.gradcheck(lambda a, b: kl_kumaraswamy_beta(Kumaraswamy(a, b), p),
                                    inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kl_and_its_gradients_are_finite_over_a_log_grid(dtype):
    exponents = torch.linspace(-3, 3, 61, dtype=dtype)  # [1e-2, 1e2] and beyond
    a = (10.0 ** exponents).unsqueeze(-1).expand(61, 61).clone().requires_grad_()
    b = (10.0 ** exponents).expand(61, 61).clone().requires_grad_()
    for beta in (0.1, 1.0, 5.0, 10.0):
        a.grad = b.grad = None
        p = dist.Beta(torch.tensor(1.0, dtype=dtype), torch.tensor(beta, dtype=dtype))
        kl = kl_kumaraswamy_beta(Kumaraswamy(a, b), p)
        kl.sum().backward()
        assert kl.isfinite().all() and a.grad.isfinite().all() and b.grad.isfinite().all()


# ---------------------------------------------------------------------------
# Stick breaking
# ---------------------------------------------------------------------------


def random_fractions(*shape):
    torch.manual_seed(7)
    return torch.rand(shape, dtype=torch.float64) * 0.98 + 0.01


def test_stick_breaking_by_hand():
    fractions = torch.tensor([[0.5, 0.5], [0.2, 0.5]], dtype=torch.float64)
    expected = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4]], dtype=torch.float64)
    assert torch.allclose(StickBreakingFractions()(fractions), expected, atol=1e-15)


def test_stick_breaking_weights_are_on_the_simplex():
    weights = StickBreakingFractions()(random_fractions(4, 5))
    assert weights.shape == (4, 6)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(4, dtype=torch.float64))


def test_stick_breaking_inverse_recovers_the_fractions():
    transform = StickBreakingFractions()
    fractions = random_fractions(4, 5)
    assert torch.allclose(transform.inv(transform(fractions)), fractions, atol=1e-12)


def test_stick_breaking_log_det_matches_autograd_jacobian():
    transform = StickBreakingFractions()
    for fractions in random_fractions(3, 5):
        jacobian = torch.autograd.functional.jacobian(
            lambda v: transform(v)[:-1], fractions
        )
        expected = torch.linalg.slogdet(jacobian).logabsdet
        log_det = transform.log_abs_det_jacobian(fractions, transform(fractions))
        assert log_det.item() == pytest.approx(expected.item(), abs=1e-10)


def test_stick_breaking_betas_with_dirichlet_parameters_give_the_dirichlet():
    # v_k ~ Beta(c_k, c_{k+1} + ... + c_{K+1}) breaks into Dirichlet(c) weights, a
    # check of the log-det through the density it implies.
    concentration = torch.tensor([0.7, 2.0, 1.5, 3.0, 0.4], dtype=torch.float64)
    tail = concentration.flip(-1).cumsum(-1).flip(-1)[1:]
    fractions = dist.Beta(concentration[:-1], tail).to_event(1)
    weights = dist.TransformedDistribution(fractions, StickBreakingFractions())
    torch.manual_seed(8)
    sample = dist.Dirichlet(concentration).sample((50,))
    expected = dist.Dirichlet(concentration).log_prob(sample)
    assert torch.allclose(weights.log_prob(sample), expected, atol=1e-9)


def test_stick_breaking_shapes_and_equality():
    transform = StickBreakingFractions()
    assert transform.forward_shape((3, 5)) == (3, 6)
    assert transform.inverse_shape((3, 6)) == (3, 5)
    with pytest.raises(ValueError):
        transform.forward_shape(())
    assert transform == StickBreakingFractions()
    assert transform != ExpTransform()


# ---------------------------------------------------------------------------
# Truncated GEM
# ---------------------------------------------------------------------------


def test_truncated_gem_samples_are_on_the_simplex():
    gem = TruncatedGEM(torch.tensor([0.5, 2.0, 10.0]), truncation=6)
    assert gem.batch_shape == (3,) and gem.event_shape == (6,)
    sample = gem.sample((100,))
    assert sample.shape == (100, 3, 6)
    assert (sample >= 0).all()
    assert torch.allclose(sample.sum(-1), torch.ones(100, 3), atol=1e-5)
    assert gem.expand([4, 3]).sample().shape == (4, 3, 6)


def test_truncated_gem_log_prob_is_beta_density_minus_log_det():
    alpha0 = torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64)
    gem = TruncatedGEM(alpha0, truncation=6)
    torch.manual_seed(9)
    weights = gem.sample((20,))
    # recover v_k = pi_k / (1 - pi_1 - ... - pi_{k-1}) with a forward cumulative sum
    stick_left = 1 - weights[..., :-1].cumsum(-1) + weights[..., :-1]
    fractions = weights[..., :-1] / stick_left
    beta_log_density = dist.Beta(1.0, alpha0.unsqueeze(-1)).log_prob(fractions).sum(-1)
    # v_k is a factor of pi_j for every j > k: 5 - k times among pi_1..pi_5
    times_used = torch.arange(4, -1, -1, dtype=torch.float64)
    log_det = (times_used * torch.log1p(-fractions)).sum(-1)
    assert torch.allclose(gem.log_prob(weights), beta_log_density - log_det, rtol=1e-8)


@pytest.mark.parametrize("alpha0", [0.3, 1.0, 4.0])
def test_truncated_gem_with_two_weights_is_a_dirichlet(alpha0):
    # pi = (v, 1 - v) with v ~ Beta(1, alpha0) is Dirichlet(1, alpha0)
    gem = TruncatedGEM(torch.tensor(alpha0, dtype=torch.float64), truncation=2)
    dirichlet = dist.Dirichlet(torch.tensor([1.0, alpha0], dtype=torch.float64))
    torch.manual_seed(10)
    weights = dirichlet.sample((50,))
    assert torch.allclose(gem.log_prob(weights), dirichlet.log_prob(weights))


def test_truncated_gem_mean_matches_monte_carlo():
    alpha0 = torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64)
    truncation, num_samples = 6, 200_000
    k = torch.arange(1, truncation, dtype=torch.float64)
    stay = (alpha0 / (1 + alpha0)).unsqueeze(-1)
    broken = (1 / (1 + alpha0)).unsqueeze(-1) * stay ** (k - 1)
    expected = torch.cat([broken, stay ** (truncation - 1)], dim=-1)

    gem = TruncatedGEM(alpha0, truncation)
    assert torch.allclose(gem.mean, expected, rtol=1e-12)
    torch.manual_seed(11)
    weights = gem.sample((num_samples,))
    standard_error = weights.std(0) / math.sqrt(num_samples)
    assert ((weights.mean(0) - expected).abs() < 5 * standard_error).all()


def test_kl_between_truncated_gems_is_the_sum_of_beta_kls():
    # dispatches through the TransformedDistribution rule, which needs __eq__
    p, q = TruncatedGEM(torch.tensor(1.0), 5), TruncatedGEM(torch.tensor(3.0), 5)
    beta_kl = kl_divergence(dist.Beta(1.0, 1.0), dist.Beta(1.0, 3.0))
    assert kl_divergence(p, q).item() == pytest.approx(4 * beta_kl.item(), rel=1e-6)


def test_kl_from_kumaraswamy_sticks_to_truncated_gem_is_the_sum_of_stick_kls():
    # the stick-breaking VAE's KL term: guide and prior share the transform, so the
    # divergence is that of the fractions, one Kumaraswamy || Beta(1, alpha0) each
    torch.manual_seed(12)
    a, b = torch.rand(3, 4) + 0.5, torch.rand(3, 4) + 0.5
    sticks = Kumaraswamy(a, b).to_event(1)
    guide = dist.TransformedDistribution(sticks, StickBreakingFractions())
    prior = TruncatedGEM(torch.tensor(2.0), truncation=5)
    expected = kl_kumaraswamy_beta(Kumaraswamy(a, b), dist.Beta(1.0, 2.0)).sum(-1)
    assert torch.allclose(kl_divergence(guide, prior), expected)


@pytest.mark.parametrize("concentration,truncation", [(1.0, 1), (1.0, 2.5), (-1.0, 3)])
def test_truncated_gem_rejects_invalid_arguments(concentration, truncation):
    with pytest.raises(ValueError):
        TruncatedGEM(torch.tensor(concentration), truncation, validate_args=True)


# ---------------------------------------------------------------------------
# Reference KL(Kumaraswamy(a, b) || Beta(alpha, beta)) by 30-digit mpmath quadrature:
# a, b = 10^k for k in -2, -1.5, ..., 2. Produced by
#     python tests/kl_kumaraswamy_reference.py   (needs mpmath; about a minute)
# ---------------------------------------------------------------------------

KL_REFERENCE = [  # (log10 a, log10 b, alpha, beta, KL)
    (-2.0, -2.0, 1, 0.1, 7.7534424066461022),
    (-2.0, -2.0, 1, 5, 471.8213247035082),
    (-2.0, -2.0, 1, 10, 948.65869313753014),
    (-2.0, -2.0, 2, 3, 281.56667042360738),
    (-2.0, -1.5, 1, 0.1, 5.279374787716185),
    (-2.0, -1.5, 1, 5, 135.4147197146481),
    (-2.0, -1.5, 1, 10, 271.50460103649639),
    (-2.0, -1.5, 2, 3, 84.910894171230899),
    (-2.0, -1.0, 1, 0.1, 13.869808671865283),
    (-2.0, -1.0, 1, 5, 41.087120162924583),
    (-2.0, -1.0, 1, 10, 72.158600019596724),
    (-2.0, -1.0, 2, 3, 42.851873059723454),
    (-2.0, -0.5, 1, 0.1, 40.203704209771502),
    (-2.0, -0.5, 1, 5, 40.135062292539921),
    (-2.0, -0.5, 1, 10, 43.363732548915246),
    (-2.0, -0.5, 2, 3, 80.318372972071043),
    (-2.0, 0.0, 1, 0.1, 96.682717720676382),
    (-2.0, 0.0, 1, 5, 92.850712729709242),
    (-2.0, 0.0, 1, 10, 92.239216584313588),
    (-2.0, 0.0, 2, 3, 191.94258357828963),
    (-2.0, 0.5, 1, 0.1, 184.12341182234405),
    (-2.0, 0.5, 1, 5, 180.21140607138029),
    (-2.0, 0.5, 1, 10, 179.51827649741666),
    (-2.0, 0.5, 2, 3, 367.17277854594501),
    (-2.0, 1.0, 1, 0.1, 289.06785714285712),
    (-2.0, 1.0, 1, 5, 285.15583413742908),
    (-2.0, 1.0, 1, 10, 284.46268695686924),
    (-2.0, 1.0, 2, 3, 577.17719079690054),
    (-2.0, 1.5, 1, 0.1, 400.81823072435715),
    (-2.0, 1.5, 1, 5, 396.906207718929),
    (-2.0, 1.5, 1, 10, 396.21306053836905),
    (-2.0, 1.5, 2, 3, 800.71287575052302),
    (-2.0, 2.0, 1, 0.1, 514.86295933931645),
    (-2.0, 2.0, 1, 5, 510.95093633388831),
    (-2.0, 2.0, 1, 10, 510.25778915332836),
    (-2.0, 2.0, 2, 3, 1028.8132193604964),
    (-1.5, -2.0, 1, 0.1, 6.7929566350147147),
    (-1.5, -2.0, 1, 5, 476.27895460758716),
    (-1.5, -2.0, 1, 10, 958.64501250661965),
    (-1.5, -2.0, 2, 3, 282.69621032725561),
    (-1.5, -1.5, 1, 0.1, 2.0413409243967189),
    (-1.5, -1.5, 1, 5, 137.14443664856494),
    (-1.5, -1.5, 1, 10, 278.30345143698088),
    (-1.5, -1.5, 2, 3, 81.136075332686363),
    (-1.5, -1.0, 1, 0.1, 3.8313429219301901),
    (-1.5, -1.0, 1, 5, 34.840928046206888),
    (-1.5, -1.0, 1, 10, 69.782074875549845),
    (-1.5, -1.0, 2, 3, 24.564595912586065),
    (-1.5, -0.5, 1, 0.1, 11.899175377148365),
    (-1.5, -0.5, 1, 5, 13.509143362542331),
    (-1.5, -0.5, 1, 10, 18.450680866494746),
    (-1.5, -0.5, 2, 3, 23.859801868486334),
    (-1.5, 0.0, 1, 0.1, 29.425720363832671),
    (-1.5, 0.0, 1, 5, 25.762855233554624),
    (-1.5, 0.0, 1, 10, 25.323950782739678),
    (-1.5, 0.0, 2, 3, 56.408466005986518),
    (-1.5, 0.5, 1, 0.1, 56.836980132382183),
    (-1.5, 0.5, 1, 5, 52.925534511765391),
    (-1.5, 0.5, 1, 10, 52.232976499380296),
    (-1.5, 0.5, 2, 3, 111.44905700632394),
    (-1.5, 1.0, 1, 0.1, 89.944433060512868),
    (-1.5, 1.0, 1, 5, 86.032410058775168),
    (-1.5, 1.0, 1, 10, 85.339262881980983),
    (-1.5, 1.0, 2, 3, 177.7790500885769),
    (-1.5, 1.5, 1, 0.1, 125.25911455927112),
    (-1.5, 1.5, 1, 5, 121.34709155384297),
    (-1.5, 1.5, 1, 10, 120.65394437328303),
    (-1.5, 1.5, 2, 3, 248.44335087385394),
    (-1.5, 2.0, 1, 0.1, 161.31578051076619),
    (-1.5, 2.0, 1, 5, 157.40375750533804),
    (-1.5, 2.0, 1, 10, 156.7106103247781),
    (-1.5, 2.0, 2, 3, 320.56756915689889),
    (-1.0, -2.0, 1, 0.1, 6.5847893291495614),
    (-1.0, -2.0, 1, 5, 481.54983355258203),
    (-1.0, -2.0, 1, 10, 969.50675497290027),
    (-1.0, -2.0, 2, 3, 285.37763944520544),
    (-1.0, -1.5, 1, 0.1, 1.147877484271829),
    (-1.0, -1.5, 1, 5, 141.39743905458067),
    (-1.0, -1.5, 1, 10, 287.80794960436458),
    (-1.0, -1.5, 2, 3, 82.18899268457922),
    (-1.0, -1.0, 1, 0.1, 0.88564224534763935),
    (-1.0, -1.0, 1, 5, 36.135068120091555),
    (-1.0, -1.0, 1, 10, 75.402583062156163),
    (-1.0, -1.0, 2, 3, 20.809941778592395),
    (-1.0, -0.5, 1, 0.1, 3.3953633024721671),
    (-1.0, -0.5, 1, 5, 7.3892038454859151),
    (-1.0, -0.5, 1, 10, 14.763264367417698),
    (-1.0, -0.5, 2, 3, 7.5496026663012368),
    (-1.0, 0.0, 1, 0.1, 8.8618853479585895),
    (-1.0, 0.0, 1, 5, 5.7018198925336782),
    (-1.0, 0.0, 1, 10, 5.7759763344260132),
    (-1.0, 0.0, 2, 3, 14.519429706198866),
    (-1.0, 0.5, 1, 0.1, 17.370052198444537),
    (-1.0, 0.5, 1, 5, 13.473189014349044),
    (-1.0, 0.5, 1, 10, 12.795511039230581),
    (-1.0, 0.5, 2, 3, 31.375217420274265),
    (-1.0, 1.0, 1, 0.1, 27.763294492062413),
    (-1.0, 1.0, 1, 5, 23.851298091706489),
    (-1.0, 1.0, 1, 10, 23.158178059179424),
    (-1.0, 1.0, 2, 3, 52.265501034821977),
    (-1.0, 1.5, 1, 0.1, 38.906892724620934),
    (-1.0, 1.5, 1, 5, 34.994869722879392),
    (-1.0, 1.5, 1, 10, 34.301722546081288),
    (-1.0, 1.5, 2, 3, 74.587614660915547),
    (-1.0, 2.0, 1, 0.1, 50.301567844744654),
    (-1.0, 2.0, 1, 5, 46.389544839316613),
    (-1.0, 2.0, 1, 10, 45.696397658756774),
    (-1.0, 2.0, 2, 3, 97.387851278358873),
    (-0.5, -2.0, 1, 0.1, 6.6074241303032243),
    (-0.5, -2.0, 1, 5, 487.10944833941733),
    (-0.5, -2.0, 1, 10, 980.71634933696173),
    (-0.5, -2.0, 2, 3, 288.56560097970763),
    (-0.5, -1.5, 1, 0.1, 0.97429805376912916),
    (-0.5, -1.5, 1, 5, 146.5440821999),
    (-0.5, -1.5, 1, 10, 298.38339129644109),
    (-0.5, -1.5, 2, 3, 84.816428172612251),
    (-0.5, -1.0, 1, 0.1, 0.12313177162161392),
    (-0.5, -1.0, 1, 5, 40.079177491733047),
    (-0.5, -1.0, 1, 10, 84.149365745397162),
    (-0.5, -1.0, 2, 3, 21.783660001458947),
    (-0.5, -0.5, 1, 0.1, 1.0259790459192921),
    (-0.5, -0.5, 1, 5, 8.3187515338351737),
    (-0.5, -0.5, 1, 10, 19.059069142401787),
    (-0.5, -0.5, 2, 3, 4.217896992540935),
    (-0.5, 0.0, 1, 0.1, 2.9299226491404699),
    (-0.5, 0.0, 1, 5, 1.1066474569036213),
    (-0.5, 0.0, 1, 10, 2.5448755959266326),
    (-0.5, 0.0, 2, 3, 2.5409062518849181),
    (-0.5, 0.5, 1, 0.1, 5.6378804743188778),
    (-0.5, 0.5, 1, 5, 1.9571733590206199),
    (-0.5, 0.5, 1, 10, 1.5000628010421931),
    (-0.5, 0.5, 2, 3, 6.9272126625523515),
    (-0.5, 1.0, 1, 0.1, 8.8845400071812557),
    (-0.5, 1.0, 1, 5, 4.9865650578842062),
    (-0.5, 1.0, 1, 10, 4.3077526284784411),
    (-0.5, 1.0, 2, 3, 13.367573296934828),
    (-0.5, 1.5, 1, 0.1, 12.387046121556049),
    (-0.5, 1.5, 1, 5, 8.4755581911230098),
    (-0.5, 1.5, 1, 10, 7.7829570054560307),
    (-0.5, 1.5, 2, 3, 20.39704386154841),
    (-0.5, 2.0, 1, 0.1, 15.983010304288603),
    (-0.5, 2.0, 1, 5, 12.071003356968221),
    (-0.5, 2.0, 1, 10, 11.377872562232523),
    (-0.5, 2.0, 2, 3, 27.599456104176096),
    (0.0, -2.0, 1, 0.1, 6.6974149070059548),
    (0.0, -2.0, 1, 5, 492.78539190157781),
    (0.0, -2.0, 1, 10, 992.09224472101786),
    (0.0, -2.0, 2, 3, 291.92625337125677),
    (0.0, -1.5, 1, 0.1, 1.0109851136713566),
    (0.0, -1.5, 1, 5, 152.0505674564938),
    (0.0, -1.5, 1, 10, 309.47130328435282),
    (0.0, -1.5, 2, 3, 87.980394061721311),
    (0.0, -1.0, 1, 0.1, -7.8886090522101181e-31),
    (0.0, -1.0, 1, 5, 45.087976994571854),
    (0.0, -1.0, 1, 10, 94.394829814011909),
    (0.0, -1.0, 2, 3, 24.36596898170841),
    (0.0, -0.5, 1, 0.1, 0.46752031251386074),
    (0.0, -0.5, 1, 5, 12.050657841910773),
    (0.0, -0.5, 1, 10, 27.168898962192725),
    (0.0, -0.5, 2, 3, 5.2769088481367062),
    (0.0, 0.0, 1, 0.1, 1.4025850929940456),
    (0.0, 0.0, 1, 5, 2.3905620875658996),
    (0.0, 0.0, 1, 10, 6.6974149070059543),
    (0.0, 0.0, 2, 3, 0.51509335021199969),
    (0.0, 0.5, 1, 0.1, 2.4855004160927523),
    (0.0, 0.5, 1, 5, 0.12299346414711213),
    (0.0, 0.5, 1, 10, 1.0109851136713565),
    (0.0, 0.5, 2, 3, 0.49343767730510779),
    (0.0, 1.0, 1, 0.1, 3.6151701859880913),
    (0.0, 1.0, 1, 5, 0.19314718055994531),
    (0.0, 1.0, 1, 10, -3.944304526105059e-31),
    (0.0, 1.0, 2, 3, 2.0466466971742993),
    (0.0, 1.5, 1, 0.1, 4.7596250101452825),
    (0.0, 1.5, 1, 5, 1.0025536100653871),
    (0.0, 1.5, 1, 10, 0.46752031251386078),
    (0.0, 1.5, 2, 3, 4.1106606871975988),
    (0.0, 2.0, 1, 0.1, 5.908755278982137),
    (0.0, 2.0, 1, 5, 2.045732273553991),
    (0.0, 2.0, 1, 10, 1.4025850929940457),
    (0.0, 2.0, 2, 3, 6.3376410538397113),
    (0.5, -2.0, 1, 0.1, 6.8056500271944365),
    (0.5, -2.0, 1, 5, 498.51170179110513),
    (0.5, -2.0, 1, 10, 1003.5512839670134),
    (0.5, -2.0, 2, 3, 295.34830537605254),
    (0.5, -1.5, 1, 0.1, 1.1046232088738158),
    (0.5, -1.5, 1, 5, 157.71324952329346),
    (0.5, -1.5, 1, 10, 320.8166832813537),
    (0.5, -1.5, 2, 3, 91.335228132582138),
    (0.5, -1.0, 1, 0.1, 0.050044726933765447),
    (0.5, -1.0, 1, 5, 50.562406857098668),
    (0.5, -1.0, 1, 10, 105.40434654959285),
    (0.5, -1.0, 2, 3, 27.521431912600058),
    (0.5, -0.5, 1, 0.1, 0.40009497286345025),
    (0.5, -0.5, 1, 5, 17.031554595226102),
    (0.5, -0.5, 1, 10, 37.30114478996289),
    (0.5, -0.5, 2, 3, 7.9057909189245378),
    (0.5, 0.0, 1, 0.1, 1.0795737712168921),
    (0.5, 0.0, 1, 5, 6.3715563302620462),
    (0.5, 0.0, 1, 10, 15.070251562429958),
    (0.5, 0.0, 2, 3, 2.0555783938338413),
    (0.5, 0.5, 1, 0.1, 1.7446533021710243),
    (0.5, 0.5, 1, 5, 2.6910806720459575),
    (0.5, 0.5, 1, 10, 6.9555359152646645),
    (0.5, 0.5, 2, 3, 0.42656323417242056),
    (0.5, 1.0, 1, 0.1, 2.3290425155069035),
    (0.5, 1.0, 1, 5, 1.2735727860934491),
    (0.5, 1.0, 1, 10, 3.4952758871811483),
    (0.5, 1.0, 2, 3, 0.15838502376711077),
    (0.5, 1.5, 1, 0.1, 2.8435411218067951),
    (0.5, 1.5, 1, 5, 0.72128583708960056),
    (0.5, 1.5, 1, 10, 1.8544322490918506),
    (0.5, 1.5, 2, 3, 0.39501694328447119),
    (0.5, 2.0, 1, 0.1, 3.3081595360051658),
    (0.5, 2.0, 1, 5, 0.56072266507174627),
    (0.5, 2.0, 1, 10, 1.0559286829758076),
    (0.5, 2.0, 2, 3, 0.85030545222139112),
    (1.0, -2.0, 1, 0.1, 6.9187569875534132),
    (1.0, -2.0, 1, 5, 504.2579279243179),
    (1.0, -2.0, 1, 10, 1015.0455908888525),
    (1.0, -2.0, 2, 3, 298.79176814962948),
    (1.0, -1.5, 1, 0.1, 1.2134528370619891),
    (1.0, -1.5, 1, 5, 163.43784965035291),
    (1.0, -1.5, 1, 10, 332.2716614684859),
    (1.0, -1.5, 2, 3, 94.756682168116742),
    (1.0, -1.0, 1, 0.1, 0.14613721561287123),
    (1.0, -1.0, 1, 5, 56.22281732592344),
    (1.0, -1.0, 1, 10, 116.74263250836218),
    (1.0, -1.0, 2, 3, 30.87750971581911),
    (1.0, -0.5, 1, 0.1, 0.46215096458102505),
    (1.0, -0.5, 1, 5, 22.522070414721883),
    (1.0, -0.5, 1, 10, 48.33090533168133),
    (1.0, -0.5, 2, 3, 11.088436344751886),
    (1.0, 0.0, 1, 0.1, 1.0690987574166628),
    (1.0, 0.0, 1, 5, 11.509020196432961),
    (1.0, 0.0, 1, 10, 25.460714285714286),
    (1.0, 0.0, 2, 3, 4.8756149511425533),
    (1.0, 0.5, 1, 0.1, 1.6200635330061378),
    (1.0, 0.5, 1, 5, 7.3016706641374583),
    (1.0, 0.5, 1, 10, 16.397941990270846),
    (1.0, 0.5, 2, 3, 2.6982713723607822),
    (1.0, 1.0, 1, 0.1, 2.0622325259738947),
    (1.0, 1.0, 1, 5, 5.2794445091461788),
    (1.0, 1.0, 1, 10, 11.861026908790754),
    (1.0, 1.0, 2, 3, 1.7869807651072961),
    (1.0, 1.5, 1, 0.1, 2.4180806593503136),
    (1.0, 1.5, 1, 5, 4.1162893071099386),
    (1.0, 1.5, 1, 10, 9.1478683032722087),
    (1.0, 1.5, 2, 3, 1.3556122358361005),
    (1.0, 2.0, 1, 0.1, 2.7130685529785091),
    (1.0, 2.0, 1, 5, 3.3669311701035579),
    (1.0, 2.0, 1, 10, 7.332850951332587),
    (1.0, 2.0, 2, 3, 1.1465733997980303),
    (1.5, -2.0, 1, 0.1, 7.033264016360967),
    (1.5, -2.0, 1, 5, 510.01107676093402),
    (1.5, -2.0, 1, 10, 1026.5524558558855),
    (1.5, -2.0, 2, 3, 302.24231391986441),
    (1.5, -1.5, 1, 0.1, 1.326644352857569),
    (1.5, -1.5, 1, 5, 169.18399486253347),
    (1.5, -1.5, 1, 10, 343.76571861575317),
    (1.5, -1.5, 2, 3, 98.200185723876782),
    (1.5, -1.0, 1, 0.1, 0.25541590159334937),
    (1.5, -1.0, 1, 5, 61.94815284206886),
    (1.5, -1.0, 1, 10, 128.19863825936979),
    (1.5, -1.0, 2, 3, 34.300083919778305),
    (1.5, -0.5, 1, 0.1, 0.56100919000957481),
    (1.5, -0.5, 1, 5, 28.192156859472869),
    (1.5, -0.5, 1, 10, 59.685918530842965),
    (1.5, -0.5, 2, 3, 14.455404582464056),
    (1.5, 0.0, 1, 0.1, 1.1459462781662667),
    (1.5, 0.0, 1, 5, 17.063347974416569),
    (1.5, 0.0, 1, 10, 36.604307632304019),
    (1.5, 0.0, 2, 3, 8.1258592782853942),
    (1.5, 0.5, 1, 0.1, 1.662899927809253),
    (1.5, 0.5, 1, 5, 12.680163501894808),
    (1.5, 0.5, 1, 10, 27.220982218797823),
    (1.5, 0.5, 2, 3, 5.7705076324549065),
    (1.5, 1.0, 1, 0.1, 2.0637982797486046),
    (1.5, 1.0, 1, 5, 10.450249343877925),
    (1.5, 1.0, 1, 10, 22.306565499601109),
    (1.5, 1.0, 2, 3, 4.6476173807794354),
    (1.5, 1.5, 1, 0.1, 2.3749621257922708),
    (1.5, 1.5, 1, 5, 9.0695410953108567),
    (1.5, 1.5, 1, 10, 19.199457154492475),
    (1.5, 1.5, 2, 3, 3.9928187901176964),
    (1.5, 2.0, 1, 0.1, 2.6235123973874965),
    (1.5, 2.0, 1, 5, 8.1019707150610365),
    (1.5, 2.0, 1, 10, 16.990947333584444),
    (1.5, 2.0, 2, 3, 3.55769173846271),
    (2.0, -2.0, 1, 0.1, 7.1481982540889241),
    (2.0, -2.0, 1, 5, 515.76648377790378),
    (2.0, -2.0, 1, 10, 1038.0634473414693),
    (2.0, -2.0, 2, 3, 305.69513404497),
    (2.0, -1.5, 1, 0.1, 1.4411663422634294),
    (2.0, -1.5, 1, 5, 174.93717045713242),
    (2.0, -1.5, 1, 10, 355.27262237891649),
    (2.0, -1.5, 2, 3, 101.6507705643004),
    (2.0, -1.0, 1, 0.1, 0.36871218368263437),
    (2.0, -1.0, 1, 5, 67.694696108025085),
    (2.0, -1.0, 1, 10, 139.6933927333535),
    (2.0, -1.0, 2, 3, 37.744024455560744),
    (2.0, -0.5, 1, 0.1, 0.67104494522584148),
    (2.0, -0.5, 1, 5, 33.921074559060041),
    (2.0, -0.5, 1, 10, 71.148389234890243),
    (2.0, -0.5, 2, 3, 17.881683829789247),
    (2.0, 0.0, 1, 0.1, 1.2491155131064788),
    (2.0, 0.0, 1, 5, 22.755242344112472),
    (2.0, 0.0, 1, 10, 47.998982751750628),
    (2.0, 0.0, 2, 3, 11.515018571479332),
    (2.0, 0.5, 1, 0.1, 1.7555252204777483),
    (2.0, 0.5, 1, 5, 18.315514780783886),
    (2.0, 0.5, 1, 10, 38.512176340769128),
    (2.0, 0.5, 2, 3, 9.1029062320373668),
    (2.0, 1.0, 1, 0.1, 2.1437529192876023),
    (2.0, 1.0, 1, 5, 16.018233822941727),
    (2.0, 1.0, 1, 10, 33.474580427159609),
    (2.0, 1.0, 2, 3, 7.9122572542163788),
    (2.0, 1.5, 1, 0.1, 2.4413574142190383),
    (2.0, 1.5, 1, 5, 14.566191210493122),
    (2.0, 1.5, 1, 10, 30.23718362350688),
    (2.0, 1.5, 2, 3, 7.1855348493866352),
    (2.0, 2.0, 1, 0.1, 2.6759875939232632),
    (2.0, 2.0, 1, 5, 13.52621706633993),
    (2.0, 2.0, 1, 10, 27.896592822356324),
    (2.0, 2.0, 2, 3, 6.6772129295318904),
]
