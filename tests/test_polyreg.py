"""Tests of inference compilation on polynomial regression (issue 7).

The model's log joint against a hand computation; the simulator against the model's
distributions; the vectorized sleep objective against Pyro's CSIS on the same simulated traces;
the proposal's density normalizing; importance sampling with the exact posterior of the
conjugate special case giving constant weights and the exact evidence; a briefly trained
proposal beating the prior; bad input refused with PyroDGMError.
"""

import json
import math

import pytest
import torch

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
from pyro.infer import CSIS

from pyro_dgm.cli import main as cli_main
from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.polyreg import PolyRegProposal
from pyro_dgm.infer import Trainer, build_objective
from pyro_dgm.infer.compilation import proposal_metrics
from pyro_dgm.infer.csis import guide_log_prob_on, sample_from_joint
from pyro_dgm.infer.importance import ImportanceSamples, importance_sample, prior_proposal
from pyro_dgm.models.polyreg import PolyRegression


@pytest.fixture(autouse=True)
def fresh_param_store():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)


def small_data(model, n=4, seed=0):
    sim = model.simulate(n, seed=seed)
    return sim["t"], sim["y"], sim["mask"], sim


# --------------------------------------------------------------------------- the model


def test_log_joint_matches_hand_computation():
    model = PolyRegression(degree=2, df=3.0, max_points=6)
    t, y, mask, sim = small_data(model, n=3)
    w, sigma = sim["w"], sim["sigma"]
    trace = poutine.trace(poutine.condition(model, data={"w": w, "sigma": sigma})).get_trace(
        t, y, mask)
    by_pyro = trace.log_prob_sum()

    s = model.coef_scales
    log_p_w = (-0.5 * (w / s) ** 2 - torch.log(s) - 0.5 * math.log(2 * math.pi)).sum()
    mu, tau = model.noise_loc, model.noise_scale
    log_p_sigma = (-torch.log(sigma) - math.log(tau) - 0.5 * math.log(2 * math.pi)
                   - (torch.log(sigma) - mu) ** 2 / (2 * tau ** 2)).sum()
    nu = 3.0
    f = w[:, :1] + w[:, 1:2] * t + w[:, 2:3] * t ** 2
    z = (y - f) / sigma[:, None]
    log_t = (math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
             - torch.log(sigma[:, None]) - (nu + 1) / 2 * torch.log1p(z ** 2 / nu))
    log_p_y = (log_t * mask).sum()
    assert torch.allclose(by_pyro, log_p_w + log_p_sigma + log_p_y, atol=1e-4)


def test_padding_does_not_change_the_log_joint():
    model = PolyRegression(degree=1, df=4.0, max_points=5)
    t, y, mask, sim = small_data(model, n=2)
    latents = {"w": sim["w"], "sigma": sim["sigma"]}
    garbage = torch.where(mask.bool(), y, torch.full_like(y, float("nan")))
    log_p = [poutine.trace(poutine.condition(model, data=latents)).get_trace(t, yy, mask)
             .log_prob_sum() for yy in (y, garbage)]
    assert torch.isfinite(log_p[1]) and torch.allclose(log_p[0], log_p[1])


def test_simulator_draws_student_t_noise_and_the_prior():
    model = PolyRegression(df=5.0, min_points=20, max_points=20)
    sim = model.simulate(4000, seed=3)
    z = (sim["y"] - model.regression_function(sim["w"], sim["t"])) / sim["sigma"][:, None]
    assert abs(z.var().item() - 5.0 / 3.0) < 0.1           # Var of t_5 is 5/3
    assert abs(sim["w"].std(0) / model.coef_scales - 1).max() < 0.05
    assert abs(sim["sigma"].log().mean() - model.noise_loc) < 0.03


def test_polyreg_dataset_yields_program_arguments():
    data = load_dataset("polyreg", "train", n_train=50, min_points=2, max_points=7)
    t, y, mask = next(data.batches(16))
    assert t.shape == y.shape == mask.shape == (16, 7)
    counts = data.arrays()[2].sum(-1)
    assert counts.min() >= 2 and counts.max() <= 7
    assert data.info["w"].shape == (50, 4)


def test_polyreg_dataset_is_drawn_from_the_models_prior():
    data = load_dataset("polyreg", "train", seed=5, n_train=30, min_points=2, max_points=7)
    sim = PolyRegression(min_points=2, max_points=7).simulate(30, seed=5)
    for drawn, simulated in zip(data.arrays(), (sim["t"], sim["y"], sim["mask"])):
        assert torch.equal(drawn, simulated)
    assert torch.equal(data.info["w"], sim["w"]) and data.image_shape is None


def test_polyreg_batches_keep_each_data_set_together():
    data = load_dataset("polyreg", "train", n_train=40, max_points=6)
    t_all, y_all, mask_all = data.arrays()
    for t, y, mask in data.batches(16, generator=torch.Generator().manual_seed(2)):
        rows = [int((t_all[:, 0] == first).nonzero()[0]) for first in t[:, 0]]
        assert torch.equal(y, y_all[rows]) and torch.equal(mask, mask_all[rows])


def test_polyreg_split_and_move_cut_and_move_inputs_and_mask_alike():
    data = load_dataset("polyreg", "train", n_train=20, max_points=5)
    train, test = data.split(0.25, seed=1)
    for part in (train, test):
        t, y, mask = part.arrays()
        rows = [int((data.t[:, 0] == first).nonzero()[0]) for first in t[:, 0]]
        assert torch.equal(y, data.x[rows]) and torch.equal(mask, data.mask[rows])
    moved = data.to("meta")
    assert moved.t.device.type == moved.mask.device.type == moved.x.device.type == "meta"


def test_zoo_builds_the_model_for_the_data_sets_number_of_points():
    from pyro_dgm.zoo import get_entry

    entry = get_entry("polyreg")
    data = load_dataset("polyreg", "train", n_train=5, min_points=4, max_points=9)
    model, _ = entry.build(entry.hyper(), data)
    assert (model.min_points, model.max_points) == (4, 9) == (data.info["min_points"],
                                                              data.max_points)


# --------------------------------------------------------------------------- the objectives


def _single_trace(model, t, y, mask, w, sigma):
    """A model trace of one data set with given latents, flagged as CSIS's simulated traces are."""
    trace = poutine.trace(poutine.condition(model, data={"w": w, "sigma": sigma})).get_trace(
        t, y, mask)
    for name in ("w", "sigma"):
        trace.nodes[name]["is_observed"] = False
    trace.nodes["y"]["infer"]["was_observed"] = True
    return trace


def test_sleep_matches_pyro_csis_on_the_same_traces():
    model, guide = PolyRegression(max_points=8), PolyRegProposal(hidden=16, components=2)
    t, y, mask, _ = small_data(model, n=5)
    batched = sample_from_joint(model, t, y, mask)  # y's values are replaced by fresh draws
    sim = {name: batched.nodes[name]["value"] for name in ("w", "sigma", "y")}

    assert not torch.equal(sim["y"] * mask, y)
    sleep_loss = -guide_log_prob_on(batched, guide, t, None, mask)
    params = list(guide.parameters())
    sleep_grads = torch.autograd.grad(sleep_loss, params)

    csis = CSIS(model, guide, optim=None, training_batch_size=1)
    csis_loss = 0.0
    for b in range(5):
        one = slice(b, b + 1)
        trace = _single_trace(model, t[one], sim["y"][one], mask[one], sim["w"][one],
                              sim["sigma"][one])
        csis_loss += csis.loss_and_grads(True, [trace], t[one], None, mask[one])
    assert sleep_loss.item() == pytest.approx(csis_loss, rel=1e-5)
    for grad, param in zip(sleep_grads, params):
        assert torch.allclose(grad, param.grad, atol=1e-5, rtol=1e-4)


def test_sleep_and_csis_objectives_train_through_the_trainer():
    model, guide = PolyRegression(max_points=8), PolyRegProposal(hidden=16, components=2)
    t, y, mask, _ = small_data(model, n=6)
    for name in ("sleep", "csis"):
        trainer = Trainer(model, guide, name, lr=1e-3, batch_size=6, progress=False)
        loss = trainer.step((t, y, mask))
        assert math.isfinite(loss)
    with pytest.raises(PyroDGMError):
        build_objective("sleep", None, None, particles=0)


# --------------------------------------------------------------------------- the proposal


def test_proposal_density_normalizes():
    """q(w, sigma | y) = q(w | y) q(sigma | w, y): a 4-D grid sum over w, then 1-D over sigma."""
    torch.manual_seed(1)
    model, guide = PolyRegression(), PolyRegProposal(hidden=32, components=3)
    t, y, mask, _ = small_data(model, n=1)
    with torch.no_grad():
        h = guide.encoder(t, y, mask)
        q_w = guide.coefficient_proposal(h)
        axis = torch.linspace(-4.8, 4.8, 25, dtype=torch.float64)  # spacing 0.4
        grid = torch.cartesian_prod(axis, axis, axis, axis).float().unsqueeze(1)  # (25^4, 1, 4)
        cell = float(axis[1] - axis[0]) ** 4
        assert torch.exp(torch.logsumexp(q_w.log_prob(grid), 0)).item() * cell == pytest.approx(
            1.0, abs=1e-3)
        log_sigma = torch.linspace(-12, 8, 4001).unsqueeze(-1)  # (G, 1)
        for w in q_w.sample((5,)):
            q_sigma = guide.noise_proposal(h, w.expand(len(log_sigma), 1, 4), t, y, mask)
            # d sigma = sigma d log sigma
            density = q_sigma.log_prob(log_sigma.exp()).exp() * log_sigma.exp()
            integral = torch.trapezoid(density.squeeze(-1), log_sigma.squeeze(-1))
            assert integral.item() == pytest.approx(1.0, abs=1e-3)


def test_importance_sampling_with_the_exact_posterior_has_constant_weights():
    model = PolyRegression(degree=2, df=None, max_points=10).double()
    t, y, mask = (a.double() for a in small_data(model, n=3, seed=4)[:3])
    sigma = torch.full((3,), 0.3, dtype=torch.float64)
    conditioned = poutine.condition(model, data={"sigma": sigma})
    posterior = model.exact_coefficient_posterior(t, y, mask, sigma)

    def exact_guide(t, y=None, mask=None, observations=None):
        with pyro.plate("data", t.shape[0]):
            pyro.sample("w", posterior)

    samples = importance_sample(conditioned, exact_guide, t, y, mask, num_samples=200)
    assert samples.log_weights.std(0).max() < 1e-8
    assert torch.allclose(samples.ess(), torch.full((3,), 200.0, dtype=torch.float64))
    # the weights are log p(y, sigma): compare with the Gaussian marginal of y
    phi = torch.stack([torch.ones_like(t), t, t ** 2], -1)
    for b in range(3):
        real = mask[b].bool()
        p = phi[b][real]
        cov = p @ torch.diag(model.coef_scales ** 2) @ p.T + 0.09 * torch.eye(int(real.sum()),
                                                                              dtype=torch.float64)
        log_py = dist.MultivariateNormal(torch.zeros(len(p), dtype=torch.float64), cov).log_prob(
            y[b][real])
        log_psigma = model.noise_prior().log_prob(sigma[b])
        assert samples.log_evidence()[b].item() == pytest.approx((log_py + log_psigma).item(),
                                                                 abs=1e-8)


def test_ess_of_equal_and_of_degenerate_weights():
    equal = ImportanceSamples(torch.zeros(10, 2), {})
    assert torch.allclose(equal.ess(), torch.full((2,), 10.0))
    one = ImportanceSamples(torch.tensor([[0.0], [-1e4], [-1e4]]), {})
    assert one.ess().item() == pytest.approx(1.0)


def test_briefly_trained_proposal_beats_the_prior_on_held_out_data():
    train = load_dataset("polyreg", "train", n_train=3000)
    test = load_dataset("polyreg", "test", n_test=50)
    model, guide = PolyRegression(), PolyRegProposal(hidden=64, components=2)
    trainer = Trainer(model, guide, "sleep", lr=3e-3, batch_size=100, progress=False)
    trainer.fit(train, epochs=3)
    pyro.set_rng_seed(0)
    metrics = proposal_metrics(model, guide, test, num_samples=500)
    assert metrics["ess_proposal"] > 3 * metrics["ess_prior"], metrics


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("program", ["model", "guide"])
def test_bad_data_is_refused(program):
    model, guide = PolyRegression(max_points=5), PolyRegProposal(hidden=8)
    run = model if program == "model" else guide
    t, y, mask, _ = small_data(model, n=2)
    nan_y = y.clone()
    nan_y[0, 0] = float("nan")
    cases = [(t, y[:, :3], mask), (t, y, mask[:1]), (t, nan_y, mask), (t[0], y[0], mask[0]),
             (t, y, torch.zeros_like(mask)), (t, y, 0.5 * mask)]
    for args in cases:
        with pytest.raises(PyroDGMError):
            run(*args)
    if program == "guide":
        with pytest.raises(PyroDGMError):
            guide(t, None, mask)


def test_prior_proposal_weights_are_likelihoods():
    model = PolyRegression(max_points=6)
    t, y, mask, _ = small_data(model, n=2)
    samples = importance_sample(model, prior_proposal(model), t, y, mask, num_samples=7)
    w, sigma = samples.samples["w"], samples.samples["sigma"]
    expected = model.likelihood(w, sigma, t, mask).log_prob(y)
    assert torch.allclose(samples.log_weights, expected, atol=1e-4)


# --------------------------------------------------------------------------- command line


def test_cli_trains_and_evaluates_polyreg(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "polyreg", "--dataset", "polyreg", "--epochs", "1", "--set",
                     "n_train=200", "--set", "n_test=5", "--set", "hidden=16", "--out", str(out),
                     "--eval-samples", "50", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == "sleep" and metrics["is_samples"] == 50
    assert (out / "curves_0.png").is_file() and (out / "training_curve.png").is_file()
    assert cli_main(["evaluate", str(out), "--iwae-samples", "40"]) == 0
    evaluated = json.loads((out / "eval.json").read_text())
    assert evaluated["is_samples"] == 40 and evaluated["ess_proposal"] <= 40
    assert cli_main(["train", "polyreg", "--dataset", "bars", "--out", str(tmp_path / "x")]) == 2
    assert "not set up for data set" in capsys.readouterr().err
