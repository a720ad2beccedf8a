"""Tests of the estimators: importance log-weights, ELBO and IWAE bounds, kNN error, active dims.

The likelihood estimators are checked on a conjugate linear-Gaussian model written as plain
Pyro functions, whose marginal likelihood and posterior are known in closed form:

    z_n ~ N(0, I_d),   x_n | z_n ~ N(W z_n, sigma^2 I_D)
    =>  p(x_n) = N(x_n; 0, W W^T + sigma^2 I),
        p(z_n | x_n) = N(S W^T x_n / sigma^2, S),  S = (I + W^T W / sigma^2)^{-1}.
"""

import math

import pytest
import torch
from torch.distributions import kl_divergence

import pyro
import pyro.distributions as dist

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import active_dims, knn_error, log_importance_weights, log_likelihood_bounds

DTYPE = torch.float64


class LinearGaussian:
    """The conjugate model, its exact marginal and posterior, and guides built from them."""

    def __init__(self, W: torch.Tensor, sigma: float):
        self.W, self.sigma = W, sigma
        self.x_dim, self.z_dim = W.shape

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.z_dim), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.W.T, self.sigma).to_event(1), obs=x)

    def marginal(self) -> dist.MultivariateNormal:
        covariance = self.W @ self.W.T + self.sigma ** 2 * torch.eye(self.x_dim, dtype=DTYPE)
        return dist.MultivariateNormal(torch.zeros(self.x_dim, dtype=DTYPE), covariance)

    def log_marginal(self, x) -> torch.Tensor:
        return self.marginal().log_prob(x)

    def posterior(self, x) -> dist.MultivariateNormal:
        precision = torch.eye(self.z_dim, dtype=DTYPE) + self.W.T @ self.W / self.sigma ** 2
        covariance = torch.linalg.inv(precision)
        covariance = (covariance + covariance.T) / 2
        mean = (x @ self.W / self.sigma ** 2) @ covariance
        return dist.MultivariateNormal(mean, covariance)

    def exact_guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.posterior(x))

    def wrong_posterior(self, x, shift=0.7, inflate=1.6) -> dist.MultivariateNormal:
        """A diagonal Gaussian, shifted and wider than the posterior: a valid but poor proposal."""
        exact = self.posterior(x)
        sd = exact.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        return dist.MultivariateNormal(exact.mean + shift * sd,
                                       scale_tril=torch.diag_embed(inflate * sd))

    def wrong_guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.wrong_posterior(x))


def make_problem(z_dim=2, x_dim=3, n=50, sigma=0.5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    W = torch.randn(x_dim, z_dim, generator=generator, dtype=DTYPE)
    problem = LinearGaussian(W, sigma)
    noise = torch.randn(x_dim, n, generator=generator, dtype=DTYPE)
    x = (torch.linalg.cholesky(problem.marginal().covariance_matrix) @ noise).T.contiguous()
    return problem, x


@pytest.fixture(params=[1, 2], ids=["z1", "z2"])
def problem(request):
    return make_problem(z_dim=request.param, seed=request.param)


# --------------------------------------------------------------------------- importance weights


def test_exact_posterior_gives_constant_weights_equal_to_the_marginal(problem):
    model, x = problem
    pyro.set_rng_seed(0)
    log_weights = log_importance_weights(model.model, model.exact_guide, x, num_samples=7)
    assert log_weights.shape == (7, x.shape[0])
    assert log_weights.dtype == DTYPE
    log_px = model.log_marginal(x)
    # every sample gives exactly log p(x_n): the weight p(x, z) / p(z | x) does not depend on z
    assert torch.allclose(log_weights, log_px.expand(7, -1), atol=1e-4, rtol=0)
    assert (log_weights - log_px).abs().max() < 1e-8
    # the examples differ from one another, so the check above is per example, not a constant
    assert log_px.std() > 0.1


def test_wrong_guide_elbo_matches_log_marginal_minus_kl(problem):
    """The mean log-weight estimates ELBO = log p(x) - KL(q || p(z | x)), per example."""
    model, x = problem
    pyro.set_rng_seed(1)
    log_weights = log_importance_weights(model.model, model.wrong_guide, x, num_samples=20000)
    kl = kl_divergence(model.wrong_posterior(x), model.posterior(x))
    expected = model.log_marginal(x) - kl
    standard_error = log_weights.std(0) / math.sqrt(log_weights.shape[0])
    assert kl.min() > 0.2  # the guide is wrong enough for the bounds to differ visibly
    assert ((log_weights.mean(0) - expected).abs() < 5 * standard_error + 1e-9).all()


def test_iwae_bounds_tighten_with_k_and_approach_the_log_marginal(problem):
    model, x = problem
    pyro.set_rng_seed(2)
    log_weights = log_importance_weights(model.model, model.wrong_guide, x, num_samples=20000)
    log_px = model.log_marginal(x)

    def iwae(k):
        """Per-example IWAE-k estimates, averaged over 20000 / k independent groups."""
        groups = log_weights.reshape(-1, k, x.shape[0])
        return (torch.logsumexp(groups, 1) - math.log(k)).mean(0)

    iwae_1, iwae_10, iwae_1000 = iwae(1), iwae(10), iwae(1000)
    elbo = log_weights.mean(0)
    assert torch.allclose(iwae_1, elbo)
    # on average over examples: ELBO < IWAE-10 < IWAE-1000 <= log p(x)
    assert elbo.mean() < iwae_10.mean() - 0.05
    assert iwae_10.mean() < iwae_1000.mean()
    assert iwae_1000.mean() <= log_px.mean() + 0.01
    assert (log_px - iwae_1000).mean().abs() < 0.05
    # per example, each bound stays below log p(x) up to Monte Carlo slack
    assert (iwae_10 <= log_px + 0.02).all()
    assert (iwae_1000 <= log_px + 0.05).all()


def test_log_likelihood_bounds_are_ordered_and_near_the_marginal(problem):
    model, x = problem
    pyro.set_rng_seed(3)
    elbo, iwae = log_likelihood_bounds(model.model, model.wrong_guide, x, num_samples=1000,
                                       batch_size=16)
    log_px = model.log_marginal(x)
    assert elbo.shape == iwae.shape == (x.shape[0],)
    # from the same samples, the log-mean-exp is at least the mean (Jensen), for every example
    assert (elbo <= iwae + 1e-12).all()
    kl = kl_divergence(model.wrong_posterior(x), model.posterior(x))
    assert (elbo - (log_px - kl)).mean().abs() < 0.05
    assert (log_px - elbo).mean() > 0.2
    assert (log_px - iwae).mean().abs() < 0.05
    assert (iwae <= log_px + 0.1).all()


@pytest.mark.parametrize("max_elements", [1, 3 * 16 * 3, 2 ** 24])
def test_chunking_does_not_change_the_exact_posterior_bounds(problem, max_elements):
    """Chunks of 1, 3 (10 = 3+3+3+1) or all 10 samples; batches of 16 over 50 examples."""
    model, x = problem
    pyro.set_rng_seed(4)
    elbo, iwae = log_likelihood_bounds(model.model, model.exact_guide, x, num_samples=10,
                                       batch_size=16, max_elements=max_elements)
    log_px = model.log_marginal(x)
    assert elbo.shape == iwae.shape == (x.shape[0],)
    assert torch.allclose(elbo, log_px, atol=1e-8, rtol=0)
    assert torch.allclose(iwae, log_px, atol=1e-8, rtol=0)


def test_chunking_keeps_wrong_guide_bounds_close():
    model, x = make_problem(z_dim=2, seed=5)
    results = []
    for max_elements in (2 ** 24, 7 * 25 * 3):  # one chunk of 400, or chunks of 7 (57 * 7 + 1)
        pyro.set_rng_seed(5)
        results.append(log_likelihood_bounds(model.model, model.wrong_guide, x, num_samples=400,
                                             batch_size=25, max_elements=max_elements))
    (elbo_a, iwae_a), (elbo_b, iwae_b) = results
    assert elbo_a.shape == elbo_b.shape == iwae_a.shape == iwae_b.shape == (x.shape[0],)
    assert (elbo_a - elbo_b).mean().abs() < 0.05
    assert (iwae_a - iwae_b).mean().abs() < 0.05
    assert (iwae_a - iwae_b).abs().max() < 0.3
    log_px = model.log_marginal(x)
    assert (iwae_b - log_px).mean().abs() < 0.05


def test_bounds_refuse_zero_samples(problem):
    model, x = problem
    with pytest.raises(PyroDGMError, match="positive"):
        log_likelihood_bounds(model.model, model.exact_guide, x, num_samples=0)


def test_latent_outside_the_data_plate_is_refused():
    x = torch.randn(8, 3, dtype=DTYPE)

    def model(x):
        shift = pyro.sample("shift", dist.Normal(x.new_zeros(()), 1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(shift.unsqueeze(-1) + torch.zeros_like(x), 1.0).to_event(1),
                        obs=x)

    def guide(x):
        pyro.sample("shift", dist.Normal(x.new_zeros(()), 0.5))

    with pytest.raises(PyroDGMError, match="shift.*plate"):
        log_importance_weights(model, guide, x, num_samples=3)
    with pytest.raises(PyroDGMError, match="shift"):
        log_likelihood_bounds(model, guide, x, num_samples=3)


def test_a_plate_with_another_name_is_refused():
    problem, x = make_problem(z_dim=1)

    def model(x):
        with pyro.plate("batch", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(1), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ problem.W.T, problem.sigma).to_event(1), obs=x)

    def guide(x):
        with pyro.plate("batch", x.shape[0]):
            pyro.sample("z", problem.posterior(x))

    with pytest.raises(PyroDGMError, match="plate"):
        log_importance_weights(model, guide, x, num_samples=2)


# --------------------------------------------------------------------------- codes


def _clusters(n_per_class, centres, generator, spread=0.3):
    codes = torch.cat([torch.tensor(c) + spread * torch.randn(n_per_class, len(c), generator=generator)
                       for c in centres])
    labels = torch.arange(len(centres)).repeat_interleave(n_per_class)
    return codes, labels


def test_knn_on_well_separated_clusters_makes_no_error():
    generator = torch.Generator().manual_seed(0)
    centres = [(0.0, 0.0), (10.0, 10.0), (-10.0, 10.0)]
    train_codes, train_labels = _clusters(40, centres, generator)
    test_codes, test_labels = _clusters(30, centres, generator)
    errors = knn_error(train_codes, train_labels, test_codes, test_labels, batch_size=7)
    assert errors == {"3": 0.0, "5": 0.0, "10": 0.0}
    # the same codes with the test labels rotated are always wrong
    wrong = knn_error(train_codes, train_labels, test_codes, (test_labels + 1) % 3)
    assert wrong == {"3": 1.0, "5": 1.0, "10": 1.0}


def test_knn_with_labels_unrelated_to_the_codes_is_near_chance():
    generator = torch.Generator().manual_seed(1)
    train_codes = torch.randn(2000, 2, generator=generator)
    test_codes = torch.randn(2000, 2, generator=generator)
    train_labels = torch.randint(0, 4, (2000,), generator=generator)
    test_labels = torch.randint(0, 4, (2000,), generator=generator)
    errors = knn_error(train_codes, train_labels, test_codes, test_labels)
    assert set(errors) == {"3", "5", "10"}
    for error in errors.values():
        assert 0.68 < error < 0.82  # chance is 0.75 for 4 balanced classes


def test_knn_majority_vote_and_ties_by_hand():
    # 1-D codes: labels 0 0 1 1 1 at positions 0 1 2 3 4
    train_codes = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    train_labels = torch.tensor([0, 0, 1, 1, 1])
    # 0.9: neighbours 1, 0, 2 -> labels 0, 0, 1 -> vote 0 (k=3); k=1 -> 0
    # 2.1: neighbours 2, 3, 1 -> labels 1, 1, 0 -> vote 1
    test_codes = torch.tensor([[0.9], [2.1]])
    assert knn_error(train_codes, train_labels, test_codes, torch.tensor([0, 1]), ks=(1, 3)) == {
        "1": 0.0, "3": 0.0}
    assert knn_error(train_codes, train_labels, test_codes, torch.tensor([1, 0]), ks=(1, 3)) == {
        "1": 1.0, "3": 1.0}
    # k = 4 at 1.6: neighbours 2 (1), 1 (0), 3 (1), 0 (0): a 2-2 tie goes to the smaller label 0
    tie = torch.tensor([[1.6]])
    assert knn_error(train_codes, train_labels, tie, torch.tensor([0]), ks=(4,)) == {"4": 0.0}
    assert knn_error(train_codes, train_labels, tie, torch.tensor([1]), ks=(4,)) == {"4": 1.0}
    # k = 5 uses every training point: the majority label 1 wins for any test point
    assert knn_error(train_codes, train_labels, torch.tensor([[0.0]]), torch.tensor([1]),
                     ks=(5,)) == {"5": 0.0}


def test_active_dims_counts_dimensions_with_variance_above_the_threshold():
    generator = torch.Generator().manual_seed(2)
    base = torch.randn(500, generator=generator, dtype=DTYPE)
    base = (base - base.mean()) / base.std()  # sample variance exactly 1
    variances = torch.tensor([1.0, 0.02, 0.0105, 0.0095, 0.001, 0.0], dtype=DTYPE)
    codes = base.unsqueeze(-1) * variances.sqrt() + torch.arange(6, dtype=DTYPE)
    assert torch.allclose(codes.var(0), variances)
    assert active_dims(codes) == 3
    assert active_dims(codes, threshold=0.015) == 2
    assert active_dims(codes, threshold=0.0) == 5
    assert active_dims(torch.zeros(10, 4)) == 0


# -- non-finite log-weights -----------------------------------------------------------------
def _uniform_prior_model(x, scale=1.0):
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Uniform(-1.0, 1.0))
        pyro.sample("x", dist.Normal(z, scale), obs=x)


def _normal_guide(loc):
    def guide(x, scale=1.0):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, 1.0 if loc == 0.0 else 0.01))
    return guide


def test_a_zero_weight_particle_leaves_the_iwae_bound_finite():
    x = torch.zeros(5)
    with pyro.validation_enabled(False):
        pyro.set_rng_seed(0)
        elbo, iwae = log_likelihood_bounds(_uniform_prior_model, _normal_guide(0.0), x,
                                           num_samples=200)
    assert torch.isfinite(iwae).all() and (elbo == -math.inf).all()
    # the estimate is the exact marginal likelihood's order: log p(0) = log of the mean of
    # N(0; z, 1) over z ~ U(-1, 1), about -1.09
    assert (iwae - (-1.09)).abs().max() < 0.2


def test_every_weight_zero_is_refused_naming_the_site():
    with pyro.validation_enabled(False), pytest.raises(PyroDGMError, match="site 'z'"):
        log_likelihood_bounds(_uniform_prior_model, _normal_guide(5.0), torch.zeros(3),
                              num_samples=20)


def test_a_nan_log_density_is_refused_naming_the_site():
    def model(x):
        _uniform_prior_model(x, scale=torch.tensor(math.nan))
    with pyro.validation_enabled(False), pytest.raises(PyroDGMError, match="site 'x'"):
        log_likelihood_bounds(model, _normal_guide(0.0), torch.zeros(3), num_samples=20)
