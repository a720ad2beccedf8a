"""The GAN family: the generator as a Pyro model, the ``adversarial`` objective's two players,
its R1 penalty, mode coverage, and a run through the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine

from pyro_dgm.cli import main
from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer, build_objective
from pyro_dgm.infer.adversarial import r1_penalty
from pyro_dgm.infer.ais_hmc import GaussianObservation
from pyro_dgm.zoo.gan import build_gan, evaluate, mode_coverage

SMALL = {"z_dim": 4, "hidden": 32, "depth": 2, "obs_scale": 0.1}


@pytest.fixture(scope="module")
def mixture():
    return (load_dataset("toy2d", "train", shape="mixture"),
            load_dataset("toy2d", "test", shape="mixture"))


def gan_and_loss(data, gradient_penalty=0.0, seed=0):
    pyro.set_rng_seed(seed)
    model, guide = build_gan(SMALL, data)
    loss = build_objective("adversarial", model, guide, disc_hidden=32,
                           gradient_penalty=gradient_penalty)
    loss.prepare((data.x[:10],), None, None)
    return model, loss


def test_the_generator_is_a_model_with_a_latent_and_an_observation_site(mixture):
    train, _ = mixture
    model, _ = build_gan(SMALL, train)
    x = train.x[:7]
    trace = poutine.trace(model).get_trace(x)
    assert trace.nodes["z"]["value"].shape == (7, SMALL["z_dim"])
    assert trace.nodes["x"]["is_observed"]
    fn = trace.nodes["x"]["fn"]
    assert torch.allclose(fn.mean, model.generate(trace.nodes["z"]["value"]))
    assert torch.allclose(fn.stddev, torch.full_like(x, SMALL["obs_scale"]))
    assert model.sample(5).shape == (5, 2)


def test_each_players_gradient_is_its_own_loss_gradient(mixture):
    """Simultaneous play: d/dpsi of the returned tensor is the discriminator's loss (with the
    R1 penalty), d/dtheta is the non-saturating generator loss, recomputed here from the z the
    objective drew."""
    train, _ = mixture
    model, loss = gan_and_loss(train, gradient_penalty=3.0)
    x = train.x[:16]
    trace = poutine.trace(loss).get_trace(x)
    z = trace.nodes["z"]["value"]
    disc, gen = list(loss.disc.parameters()), list(model.parameters())
    pyro.set_rng_seed(1)  # other draws: replay must give the same z
    out = poutine.replay(loss, trace=trace)(x)
    got = torch.autograd.grad(out, disc + gen)

    fake = model.generate(z)
    x_grad = x.clone().requires_grad_(True)
    (dx,) = torch.autograd.grad(loss.disc(x_grad).sum(), x_grad, create_graph=True)
    disc_loss = (-F.logsigmoid(loss.disc(x))).sum() + (-F.logsigmoid(-loss.disc(fake.detach()))).sum()
    expected_disc = torch.autograd.grad(disc_loss + 1.5 * dx.pow(2).sum(), disc)
    gen_loss = (-F.logsigmoid(loss.disc(fake))).sum()
    expected_gen = torch.autograd.grad(gen_loss, gen)
    for a, b in zip(got, [*expected_disc, *expected_gen]):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert out.item() == pytest.approx(disc_loss.item(), rel=1e-5)


def test_r1_penalty_of_a_linear_discriminator_is_half_the_squared_weight_norm():
    """For D(x) = w.x + b, grad_x D = w: the penalty is N |w|^2 / 2, its gradient N w."""
    disc = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    x = torch.randn(5, 3)
    penalty = r1_penalty(disc, x)
    w = disc[0].weight
    assert penalty.item() == pytest.approx(5 * 0.5 * w.pow(2).sum().item(), rel=1e-6)
    (grad,) = torch.autograd.grad(penalty, w)
    assert torch.allclose(grad, 5 * w)


def _steps(loss, x, params, steps=60, lr=5e-3):
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(x).backward()
        optimizer.step()


def _player_losses(loss, x, seed=5):
    pyro.set_rng_seed(seed)
    with torch.no_grad():
        disc_loss, _, gen_loss = loss.losses(x)
    return disc_loss.item(), gen_loss.item()


def test_with_the_generator_frozen_the_discriminator_loss_falls(mixture):
    train, _ = mixture
    model, loss = gan_and_loss(train)
    x = train.x[:200]
    before = _player_losses(loss, x)
    generator = [p.detach().clone() for p in model.parameters()]
    _steps(loss, x, list(loss.disc.parameters()))
    after = _player_losses(loss, x)
    assert all(torch.equal(a, b) for a, b in zip(generator, model.parameters()))
    assert after[0] < before[0] - 0.2 * len(x)  # nats over the batch
    assert after[1] > before[1]  # a better discriminator: the frozen generator loses more


def test_with_the_discriminator_frozen_the_generator_loss_falls(mixture):
    train, _ = mixture
    model, loss = gan_and_loss(train)
    x = train.x[:200]
    _steps(loss, x, list(loss.disc.parameters()))  # a discriminator worth fooling
    before = _player_losses(loss, x)
    _steps(loss, x, list(model.parameters()))
    after = _player_losses(loss, x)
    assert after[1] < before[1] - 0.2 * len(x)
    assert after[0] > before[0]


def test_mode_coverage_counts_the_modes_a_sample_reaches(mixture):
    train, test = mixture
    everywhere = mode_coverage(test.x, train)
    assert everywhere["modes"] == 8 and everywhere["modes_covered"] == 8
    assert everywhere["high_quality_fraction"] > 0.98
    assert everywhere["class_entropy"] == pytest.approx(math.log(8), abs=0.01)
    one_mode = mode_coverage(test.x[test.y == 3], train)
    assert one_mode["modes_covered"] == 1 and one_mode["class_shares"][3] > 0.98
    far_away = mode_coverage(torch.full((100, 2), 10.0), train)
    assert far_away["modes_covered"] == 0 and far_away["high_quality_fraction"] == 0.0


def test_a_short_run_covers_the_eight_modes(mixture):
    """1,000 simultaneous steps with R1 (gamma = 10) spread the samples over the 8 Gaussians:
    at least 7 modes hold a quarter of their fair share as samples within 3 std, every mode at
    least 1/64, and half the samples lie within 3 std of a mode (an untrained generator: 0-1
    modes)."""
    train, _ = mixture
    pyro.set_rng_seed(0)
    model, guide = build_gan({"z_dim": 4, "hidden": 128, "depth": 2, "obs_scale": 0.1}, train)
    untrained = mode_coverage(model.sample(2000), train)
    trainer = Trainer(model, guide, "adversarial", lr=2e-3, batch_size=200, seed=0,
                      progress=False, objective_options={"disc_hidden": 128,
                                                         "gradient_penalty": 10.0})
    history = trainer.fit(train, epochs=100)
    coverage = mode_coverage(model.sample(2000), train)
    assert untrained["modes_covered"] <= 1
    assert coverage["modes_covered"] >= 7, coverage
    assert min(coverage["class_shares"]) >= 1 / 64, coverage
    assert coverage["high_quality_fraction"] >= 0.45, coverage
    # both players are recorded; the discriminator's cross-entropy nears log 4 at equilibrium
    assert {"discriminator_loss", "generator_loss"} <= set(history[-1])
    assert history[-1]["loss"] == history[-1]["discriminator_loss"]
    assert 1.0 < history[-1]["discriminator_loss"] < math.log(4) + 0.1


def test_training_through_the_cli_writes_metrics_and_figures(tmp_path):
    out = tmp_path / "run"
    status = main(["train", "gan", "--dataset", "toy2d", "--set", "shape=mixture",
                   "--set", "n_train=200", "--set", "n_test=100", "--set", "hidden=16",
                   "--set", "z_dim=2", "--set", "disc_hidden=16", "--set", "gradient_penalty=1.0",
                   "--epochs", "1", "--out", str(out), "--quiet"])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["modes"] == 8 and 0 <= metrics["modes_covered"] <= 8
    assert 0.0 <= metrics["high_quality_fraction"] <= 1.0
    entry = metrics["history"][0]
    assert math.isfinite(entry["discriminator_loss"]) and math.isfinite(entry["generator_loss"])
    for figure in ("samples.png", "training_curve.png", "mode_coverage.png"):
        assert (out / figure).stat().st_size > 100
    assert main(["evaluate", str(out)]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["nll"] is None and evaluation["modes"] == 8


@pytest.mark.parametrize("setting, words", [
    ("gradient_penalty=-1.0", "gradient_penalty must be zero or more"),
    ("disc_hidden=0", "'disc_hidden' of objective 'adversarial' must be positive"),
    ("gradient_penalty=abc", "gradient_penalty"),
    ("z_dim=0", "'z_dim' of model 'gan' must be positive"),
    ("shape=circle", "shape"),
])
def test_bad_options_are_refused_in_one_sentence(capsys, tmp_path, setting, words):
    status = main(["train", "gan", "--dataset", "toy2d", "--set", setting, "--epochs", "1",
                   "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err


def test_ais_of_a_linear_generator_is_its_exact_gaussian_marginal(mixture):
    """With no hidden layer G(z) = Wz + b, so x ~ N(b, W W^T + sigma^2 I) exactly: the evaluate
    hook's AIS NLL on 20 held-out points matches it within 0.05 nat and is not below it beyond
    its standard error (AIS is a stochastic lower bound of log p(x))."""
    train, test = mixture
    pyro.set_rng_seed(0)
    model, guide = build_gan({"z_dim": 2, "hidden": 8, "depth": 0, "obs_scale": 0.8}, train)
    W, b = model.net[0].weight.detach(), model.net[0].bias.detach()
    test = test.head(20)
    exact = -dist.MultivariateNormal(b, W @ W.T + 0.64 * torch.eye(2)).log_prob(test.x).mean()
    metrics = evaluate(model, guide, test, train, iwae_samples=1, knn=False, seed=0,
                       ais_steps=100, ais_chains=16)
    assert abs(metrics["ais_nll"] - exact.item()) < 0.05, (metrics["ais_nll"], exact)
    assert metrics["ais_nll"] >= exact.item() - 2 * metrics["ais_nll_stderr"]
    assert metrics["ais_obs_scale"] == 0.8 and metrics["modes"] == 8


def test_a_trained_gan_is_scored_by_ais_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "gan", "--dataset", "toy2d", "--set", "shape=mixture",
                 "--set", "n_train=200", "--set", "n_test=20", "--set", "hidden=16",
                 "--set", "z_dim=2", "--set", "disc_hidden=16", "--set", "obs_scale=0.3",
                 "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    assert main(["evaluate", str(out), "--ais-steps", "20", "--ais-chains", "4", "--quiet"]) == 0
    saved = json.loads((out / "eval.json").read_text())
    assert saved["ais_steps"] == 20 and saved["ais_chains"] == 4 and saved["ais_obs_scale"] == 0.3
    assert math.isfinite(saved["ais_nll"]) and saved["ais_nll_stderr"] > 0
    assert 0 < saved["ais_acceptance"] <= 1 and saved["nll"] is None
    capsys.readouterr()
    assert main(["evaluate", str(out), "--ais-steps", "0", "--quiet"]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--ais-steps must be a positive whole number" in lines[0]


@pytest.mark.parametrize("value, words", [("0.0", "must be positive and finite"),
                                          ("-0.1", "must be positive and finite"),
                                          ("nan", "takes a float")])
def test_a_bad_observation_scale_is_refused_in_one_sentence(capsys, tmp_path, value, words):
    status = main(["train", "gan", "--dataset", "toy2d", "--set", f"obs_scale={value}",
                   "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1
    assert "'obs_scale' of model 'gan'" in lines[0] and words in lines[0], lines


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), True, "0.1"])
def test_the_gaussian_observation_model_refuses_a_bad_scale(scale):
    with pytest.raises(PyroDGMError, match="sigma must be a positive, finite number"):
        GaussianObservation(scale)


def test_the_gaussian_observation_model_keeps_the_decoder_mean(mixture):
    """Under GaussianObservation(s) site x is N(mean, s^2) of the mean the model gave it."""
    train, _ = mixture
    model, _ = build_gan(SMALL, train)
    x = train.x[:5]
    trace = poutine.trace(GaussianObservation(0.7)(model)).get_trace(x)
    fn = trace.nodes["x"]["fn"]
    assert torch.allclose(fn.mean, model.generate(trace.nodes["z"]["value"]))
    assert torch.allclose(fn.stddev, torch.full_like(x, 0.7))


def test_both_players_losses_survive_a_resume_mid_epoch(mixture, tmp_path):
    """The epoch's sums of the players' losses are in the checkpoint: stopping after one step
    and resuming gives the history of an uninterrupted run."""
    train, _ = mixture
    small = train.head(400)

    def trainer(checkpoint=None):
        pyro.set_rng_seed(0)
        model, guide = build_gan(SMALL, small)
        return Trainer(model, guide, "adversarial", lr=1e-3, batch_size=100, seed=3,
                       progress=False, checkpoint=checkpoint,
                       objective_options={"disc_hidden": 16})

    whole = trainer().fit(small, epochs=2)
    trainer(tmp_path / "c.pt").fit(small, seconds=1e-9)  # one step of the first epoch
    resumed = trainer(tmp_path / "c.pt").fit(small, epochs=2, resume=True)
    for a, b in zip(whole, resumed):
        for key in ("loss", "discriminator_loss", "generator_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-6), key
