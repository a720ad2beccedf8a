"""AIS with HMC in latent space (Wu et al. 2017): exact on a linear-Gaussian model, an invariant
kernel, between the ELBO and (near) IWAE-k on a trained VAE, and the command line."""

import json
import math

import pytest
import torch

import pyro
import pyro.distributions as dist

from pyro_dgm import PyroDGMError
from pyro_dgm.cli import main
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.infer import log_likelihood_bounds
from pyro_dgm.infer.ais_hmc import (AdaptiveHMC, LatentPath, ais_log_likelihood,
                                    check_ais_options)


class LinearGaussian(torch.nn.Module):
    r"""Factor analysis as a Pyro program: :math:`z \sim N(0, I_d)`,
    :math:`x \sim N(Wz + b, \sigma^2 I)`, so :math:`x \sim N(b, WW^\top + \sigma^2 I)` exactly."""

    def __init__(self, d=2, x_dim=4, sigma=1.0, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.W = 0.7 * torch.randn(x_dim, d, generator=generator)
        self.b = torch.randn(x_dim, generator=generator)
        self.sigma, self.d = sigma, d

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(self.d), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.W.T + self.b, self.sigma).to_event(1), obs=x)

    def marginal(self):
        covariance = self.W @ self.W.T + self.sigma ** 2 * torch.eye(len(self.b))
        return dist.MultivariateNormal(self.b, covariance)

    def posterior(self, x):
        precision = torch.eye(self.d) + self.W.T @ self.W / self.sigma ** 2
        covariance = torch.linalg.inv(precision)
        mean = (x - self.b) @ self.W @ covariance / self.sigma ** 2
        return dist.MultivariateNormal(mean, covariance)


def test_ais_recovers_the_exact_marginal_likelihood():
    model = LinearGaussian()
    pyro.set_rng_seed(1)
    x = model.marginal().sample((20,))
    result = ais_log_likelihood(model, x, steps=100, chains=16, step_size=0.2)
    exact = model.marginal().log_prob(x).double()
    error = (result.log_px - exact).mean().item()
    assert abs(error) < 0.05
    assert error <= 2 * result.nll_stderr          # a stochastic lower bound: not above
    assert 0.3 < result.acceptance.mean() < 1.0


def test_the_hmc_kernel_leaves_the_posterior_invariant():
    model = LinearGaussian(sigma=0.5)
    pyro.set_rng_seed(2)
    x = model.marginal().sample((3,))
    chains = 2000
    posterior = model.posterior(x)
    z = posterior.sample((chains,))
    kernel = AdaptiveHMC(LatentPath(model, x, chains), leapfrog_steps=5, step_size=0.15,
                         adapt=False)
    for _ in range(20):
        z = kernel(z, 1.0)
    assert kernel.acceptance.mean() > 0.5
    mean_error = (z.mean(0) - posterior.mean).abs() / posterior.variance.sqrt()
    assert mean_error.max() < 0.15                  # 2000 chains: sd of the mean 0.022 sd
    covariance = torch.stack([torch.cov(z[:, n].T) for n in range(3)])
    assert torch.allclose(covariance, posterior.covariance_matrix, rtol=0.15, atol=0.002)


@pytest.fixture(scope="module")
def bars_vae():
    config = make_config("vae", dataset="bars", epochs=15, lr=0.01,
                         settings={"z_dim": 2, "hidden": 32, "n_train": 1000, "n_test": 30})
    experiment = Experiment(config)
    experiment.run(eval_samples=2)
    return experiment


def test_ais_on_a_trained_vae_lies_above_the_elbo_and_near_iwae(bars_vae):
    _, test = bars_vae.data
    x = test.observed()
    pyro.set_rng_seed(0)
    elbo, iwae = log_likelihood_bounds(bars_vae.model, bars_vae.guide, x, num_samples=1000)
    result = ais_log_likelihood(bars_vae.model, x, steps=100, chains=8)
    ais = result.log_px.mean().item()
    # measured: ELBO -6.78, IWAE-1000 -6.67, AIS -6.70 +- 0.03
    assert ais > elbo.mean().item() + result.nll_stderr
    assert abs(ais - iwae.mean().item()) < 0.15


def test_evaluate_adds_ais_keys_next_to_iwae(bars_vae, tmp_path):
    metrics = bars_vae.evaluate(iwae_samples=50, ais_steps=20, ais_chains=4)
    assert metrics["ais_steps"] == 20 and metrics["ais_chains"] == 4
    assert math.isfinite(metrics["ais_nll"]) and metrics["ais_nll_stderr"] > 0
    assert abs(metrics["ais_nll"] - metrics["nll"]["value"]) < 3


def test_the_command_line_writes_the_ais_keys(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(["train", "vae", "--dataset", "bars", "--epochs", "1", "--set", "hidden=8",
                 "--set", "z_dim=2", "--set", "n_train=100", "--set", "n_test=10", "--quiet",
                 "--out", str(folder)]) == 0
    assert main(["evaluate", str(folder), "--iwae-samples", "5", "--ais-steps", "20",
                 "--ais-chains", "4", "--quiet"]) == 0
    saved = json.loads((folder / "eval.json").read_text())
    assert saved["ais_steps"] == 20 and saved["ais_chains"] == 4
    assert saved["ais_leapfrog_steps"] == 10 and 0 < saved["ais_acceptance"] <= 1
    assert math.isfinite(saved["ais_nll"]) and saved["nll"]["k"] == 5
    capsys.readouterr()
    for flag, value in (("--ais-steps", "0"), ("--ais-steps", "2.5"), ("--ais-chains", "-3")):
        extra = [] if flag == "--ais-steps" else ["--ais-steps", "5"]
        assert main(["evaluate", str(folder), flag, value, *extra, "--quiet"]) != 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0] and "positive whole number" in lines[0]


@pytest.mark.parametrize("steps, chains", [(0, 4), (3, 0), (-1, None), (2.5, 4), (None, 4),
                                           (True, 4)])
def test_bad_ais_options_are_refused(steps, chains):
    with pytest.raises(PyroDGMError, match="ais"):
        check_ais_options(steps, chains)


def built(model: str, **settings):
    experiment = Experiment(make_config(model, dataset="bars",
                                        settings={"n_train": 20, "n_test": 5, **settings}))
    experiment.build()
    return experiment.model, experiment.data[1].observed()


@pytest.mark.parametrize("name, settings", [("vae", {}), ("vae-flow", {"flow": "planar"}),
                                            ("vamp-vae", {"pseudo_inputs": 5})])
def test_the_zoo_s_continuous_latent_models_are_scored(name, settings):
    model, x = built(name, hidden=8, **settings)
    result = ais_log_likelihood(model, x, steps=3, chains=2)
    assert result.log_px.shape == (5,) and torch.isfinite(result.log_px).all()


@pytest.mark.parametrize("name, says", [("sbn", "discrete"), ("vamp-hvae", "has 2: z2, z1"),
                                        ("sbvae", "whole real line")])
def test_models_ais_cannot_score_are_refused_in_one_sentence(name, says):
    model, x = built(name)
    with pytest.raises(PyroDGMError, match=says) as error:
        ais_log_likelihood(model, x, steps=2, chains=2)
    assert "\n" not in str(error.value)


def test_an_exact_likelihood_model_refuses_ais():
    config = make_config("nade", dataset="bars", settings={"n_train": 20, "n_test": 5})
    experiment = Experiment(config)
    experiment.build()
    _, test = experiment.data
    with pytest.raises(PyroDGMError, match="does not apply to"):
        experiment.entry.evaluate(experiment.model, experiment.guide, test, None,
                                  iwae_samples=1, knn=False, seed=0, ais_steps=5)
