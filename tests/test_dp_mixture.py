"""The DP mixture by SVI: its likelihood, its minibatch ELBO, a short fit, and bad input."""

import math

import pytest
import torch

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

from pyro_dgm import PyroDGMError, Trainer, load_dataset
from pyro_dgm.cli import main
from pyro_dgm.data.synthetic import mixture_log_density, true_log_density
from pyro_dgm.distributions import Kumaraswamy, StickBreakingFractions
from pyro_dgm.guides.dp_mixture import DPMixtureGuide
from pyro_dgm.models.dp_mixture import (
    DPMixture,
    components_with_weight,
    expected_weights,
    log_stick_weights,
    predictive_log_density,
)


def small_problem(n=40, dim=2, truncation=4, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(n, dim) * 2
    model = DPMixture.from_data(x, truncation, alpha0=1.5)
    guide = DPMixtureGuide.from_data(x, truncation, "kumaraswamy")
    return x, model, guide


def test_log_stick_weights_are_stick_breaking_in_log_space():
    fractions = torch.rand(5, 7).clamp(0.01, 0.99)
    weights = log_stick_weights(fractions).exp()
    assert torch.allclose(weights, StickBreakingFractions()(fractions), atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(5), atol=1e-6)


def test_log_joint_with_marginalized_assignments_is_the_mixture_likelihood():
    x, model, _ = small_problem()
    truncation = model.truncation
    values = {"v": torch.tensor([0.3, 0.5, 0.2]), "mu": torch.randn(truncation, 2) * 2,
              "tau": torch.rand(truncation, 2) + 0.2}
    trace = poutine.trace(poutine.condition(model, data=values)).get_trace(x)
    trace.compute_log_prob()
    # by hand: pi from the sticks, then log sum_k pi_k prod_d N(x_d; mu_kd, 1/tau_kd), point by point
    v = values["v"].tolist()
    pi = [v[0], (1 - v[0]) * v[1], (1 - v[0]) * (1 - v[1]) * v[2], (1 - v[0]) * (1 - v[1]) * (1 - v[2])]
    expected = 0.0
    for point in x.double():
        density = 0.0
        for k in range(truncation):
            log_normal = sum(0.5 * math.log(values["tau"][k, d] / (2 * math.pi))
                             - 0.5 * values["tau"][k, d] * (point[d] - values["mu"][k, d]) ** 2
                             for d in range(2))
            density += pi[k] * math.exp(log_normal)
        expected += math.log(density)
    assert trace.nodes["x"]["log_prob_sum"].item() == pytest.approx(expected, rel=1e-5)
    # the priors: Beta(1, alpha0) sticks, Normal means, Gamma precisions, each scaled by B / N = 1
    beta = dist.Beta(1.0, 1.5).log_prob(values["v"]).sum()
    assert trace.nodes["v"]["log_prob_sum"].item() == pytest.approx(beta.item(), rel=1e-5)
    assert model.sample(7).shape == (7, 2)  # generation without a guide


def test_enumerated_assignments_give_the_same_elbo_as_summing_them_out():
    x, marginal, guide = small_problem()
    enumerated = DPMixture.from_data(x, 4, alpha0=1.5, marginalize=False)
    pyro.set_rng_seed(3)
    summed_out = Trace_ELBO().loss(marginal, guide, x)
    pyro.set_rng_seed(3)  # the same draw of the global latents from the guide
    enumerated_loss = TraceEnum_ELBO(max_plate_nesting=1).loss(enumerated, guide, x)
    assert enumerated_loss == pytest.approx(summed_out, rel=1e-5)


def _loss_at_fixed_globals(model, guide, x, seed=7):
    pyro.set_rng_seed(seed)  # every call draws the same globals from the guide
    return Trace_ELBO().loss(model, guide, x)


def test_minibatch_elbo_is_an_unbiased_estimate_of_the_full_data_elbo():
    x, model, guide = small_problem(n=60)
    n, batch = x.shape[0], 12
    full = _loss_at_fixed_globals(model, guide, x)
    # over a partition into minibatches, the N/B-scaled minibatch losses average to the full loss
    partition = torch.randperm(n).split(batch)
    scaled = [n / batch * _loss_at_fixed_globals(model, guide, x[i]) for i in partition]
    assert sum(scaled) / len(scaled) == pytest.approx(full, rel=1e-5)
    # and random minibatches (with the same global draw) do so in expectation
    generator = torch.Generator().manual_seed(0)
    draws = torch.tensor([n / batch * _loss_at_fixed_globals(
        model, guide, x[torch.randperm(n, generator=generator)[:batch]]) for _ in range(100)])
    standard_error = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - full) < 4 * standard_error.item()
    # the scale is B / N on the global sites, 1 on the data
    trace = poutine.trace(model).get_trace(x[:batch])
    assert trace.nodes["v"]["scale"] == pytest.approx(batch / n)
    assert trace.nodes["mu"]["scale"] == pytest.approx(batch / n)
    assert trace.nodes["x"]["scale"] == 1.0


def test_kumaraswamy_kl_to_the_stick_prior_holds_for_concentrated_posteriors():
    # the guide lets b grow to 1e4 (global sticks concentrate with N); check the Taylor KL there
    torch.manual_seed(0)
    q, p = Kumaraswamy(torch.tensor(8.0), torch.tensor(5e3)), dist.Beta(1.0, 2.0)
    draws = q.rsample([200_000])
    monte_carlo = (q.log_prob(draws) - p.log_prob(draws)).mean()
    analytic = torch.distributions.kl_divergence(q, p)
    assert analytic.item() == pytest.approx(monte_carlo.item(), abs=0.02)


def test_short_fit_finds_the_clusters_and_beats_one_gaussian():
    options = {"n_components": 3, "separation": 8.0, "seed": 0}
    train = load_dataset("gaussian-clusters", "train", n_train=500, **options)
    test = load_dataset("gaussian-clusters", "test", n_test=500, **options)
    model = DPMixture.from_data(train.x, truncation=8)
    guide = DPMixtureGuide.from_data(train.x, truncation=8)
    Trainer(model, guide, "meanfield", lr=0.1, batch_size=100, progress=False).fit(train, 60)
    assert components_with_weight(expected_weights(guide), 0.01) == 3
    held_out = predictive_log_density(guide, test.x).mean().item()
    one_gaussian = dist.Normal(train.x.mean(0), train.x.std(0)).log_prob(test.x).sum(-1).mean()
    assert held_out > one_gaussian.item() + 1.0
    assert held_out == pytest.approx(true_log_density(test).mean().item(), abs=0.1)


def test_gaussian_clusters_share_their_mixture_across_splits_and_the_density_normalizes():
    train = load_dataset("gaussian-clusters", "train", n_train=50, dim=1, n_components=2)
    test = load_dataset("gaussian-clusters", "test", n_test=30, dim=1, n_components=2)
    assert torch.equal(train.info["means"], test.info["means"])
    assert train.x.shape == (50, 1) and test.x.shape == (30, 1) and train.image_shape is None
    grid = torch.linspace(-20, 60, 20001).double().unsqueeze(-1)
    density = mixture_log_density(grid, *(train.info[k].double() for k in ("weights", "means", "scales"))).exp()
    assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("make", [
    lambda x: DPMixture(2, truncation=1),
    lambda x: DPMixture(2, alpha0=0.0),
    lambda x: DPMixture.from_data(x)(x[:, :1]),
    lambda x: DPMixture.from_data(x)(torch.cat([x, x])),  # more points than n_data
    lambda x: DPMixture.from_data(x)(x.masked_fill(x > 1, math.nan)),
    lambda x: DPMixtureGuide.from_data(x, 5, "gamma"),
    lambda x: DPMixtureGuide.from_data(x, 5)(x[:, :1]),
    lambda x: load_dataset("gaussian-clusters", "train", n_components=0),
    lambda x: load_dataset("gaussian-clusters", "train", separation=-1.0),
    lambda x: load_dataset("gaussian-clusters", "train", binarize="dynamic"),
    lambda x: true_log_density(load_dataset("bars", "test")),
])
def test_bad_input_raises_one_clear_error(make):
    x = torch.randn(30, 2)
    with pytest.raises(PyroDGMError):
        make(x)


def test_cli_trains_the_zoo_entry_and_writes_the_mixture_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dp-mixture", "--dataset", "gaussian-clusters", "--epochs", "2",
                 "--set", "n_train=200", "--set", "truncation=6", "--quiet", "--out", str(out),
                 "--eval-samples", "10"]) == 0
    assert (out / "fitted_mixture.png").stat().st_size > 0
    import json
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["true_components"] == 5 and len(metrics["weights"]) == 6
    assert metrics["test_loglik"] < metrics["true_test_loglik"] + 0.1
    assert main(["evaluate", str(out), "--iwae-samples", "10"]) == 0
    assert main(["train", "dp-mixture", "--dataset", "gaussian-clusters", "--set",
                 "stick_posterior=gamma", "--out", str(tmp_path / "bad")]) == 2
