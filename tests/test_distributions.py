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
