"""The annealing loop of :mod:`pyro_dgm.infer.ais` against exact normalizing constants."""

import math

import pytest
import torch

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.ais import AISEstimate, anneal, linear_schedule, sigmoid_schedule


def gaussian_path(mu: float, sigma: float, log_z: float):
    """f0 = N(0, 1); f1 = exp(log_z) N(mu, sigma^2); exact draws from every f_beta."""
    def log_f0(s):
        return torch.distributions.Normal(0.0, 1.0).log_prob(s)

    def log_f1(s):
        return log_z + torch.distributions.Normal(mu, sigma).log_prob(s)

    def transition(s, beta):  # f_beta is Gaussian: precision and mean in closed form
        precision = (1 - beta) + beta / sigma ** 2
        mean = beta * mu / sigma ** 2 / precision
        return mean + torch.randn_like(s) / math.sqrt(precision)
    return log_f0, log_f1, transition


@pytest.mark.parametrize("schedule", [linear_schedule, sigmoid_schedule])
def test_ais_recovers_a_known_normalizing_constant(schedule):
    torch.manual_seed(0)
    log_f0, log_f1, transition = gaussian_path(mu=2.0, sigma=0.5, log_z=3.0)
    estimate = anneal(torch.randn(500), log_f0, log_f1, transition, schedule(200))
    assert abs(estimate.log_mean.item() - 3.0) < 0.02
    assert 0 < estimate.stderr.item() < 0.02
    assert 400 < estimate.ess.item() <= 500


def test_one_step_ais_is_importance_sampling_from_f0():
    torch.manual_seed(0)
    log_f0, log_f1, transition = gaussian_path(mu=1.0, sigma=1.0, log_z=0.0)
    initial = torch.randn(100)
    estimate = anneal(initial, log_f0, log_f1, transition, linear_schedule(1))
    assert torch.allclose(estimate.log_weights, log_f1(initial) - log_f0(initial))


def test_schedules_rise_from_zero_to_one():
    for betas in (linear_schedule(10), sigmoid_schedule(10)):
        assert betas[0] == 0 and betas[-1] == 1 and bool((betas[1:] > betas[:-1]).all())


@pytest.mark.parametrize("betas", [torch.tensor([0.0, 0.5]), torch.tensor([0.0, 0.6, 0.4, 1.0])])
def test_a_bad_schedule_is_refused(betas):
    log_f0, log_f1, transition = gaussian_path(0.0, 1.0, 0.0)
    with pytest.raises(PyroDGMError, match="from 0 to 1"):
        anneal(torch.zeros(3), log_f0, log_f1, transition, betas)
    with pytest.raises(PyroDGMError, match="annealing steps"):
        linear_schedule(0)


def test_the_standard_error_of_equal_weights_is_zero():
    estimate = AISEstimate(torch.full((4, 3), -2.0))
    assert torch.allclose(estimate.log_mean, torch.full((3,), -2.0))
    assert torch.allclose(estimate.stderr, torch.zeros(3))
