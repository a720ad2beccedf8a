"""RBM and DBM: AIS against exact partition functions, PCD raising an exact likelihood, the
mean-field fixed point, the CLI end to end, and bad options refused in one sentence."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pyro_dgm.cli import main
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.boltzmann import MeanFieldDBM
from pyro_dgm.infer import Trainer, build_objective
from pyro_dgm.infer.ais_gibbs import (
    LogPartition,
    all_binary,
    data_base_biases,
    dbm_log_likelihood,
    dbm_log_partition,
    dbm_log_partition_reverse,
    exact_log_marginal,
    exact_log_partition,
    log_partition_floor,
    rbm_log_likelihood,
    rbm_log_partition,
)
from pyro_dgm.data import Dataset
from pyro_dgm.guides.empty import EmptyGuide
from pyro_dgm.models.boltzmann import DBM, RBM
from pyro_dgm.zoo.boltzmann import ais_metrics


def randomized(model, scale: float = 1.0, seed: int = 0):
    """``model`` with weights and biases drawn N(0, scale^2): a hard, multi-modal target."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=generator))
    return model


def test_rbm_free_energy_sums_out_the_hidden_units():
    rbm = randomized(RBM(5, 3))
    v, h = all_binary(5), all_binary(3)
    joint = -rbm.energy([v.repeat_interleave(8, 0), h.repeat(32, 1)]).view(32, 8)
    assert torch.allclose(torch.logsumexp(joint, 1), -rbm.free_energy(v), atol=1e-5)


def test_ais_recovers_the_exact_log_partition_of_a_small_rbm():
    torch.manual_seed(0)
    rbm = randomized(RBM(8, 6))
    estimate = rbm_log_partition(rbm, steps=1000, chains=64)
    assert abs(estimate.log_z - exact_log_partition(rbm)) < 0.1
    x = all_binary(8)[:10]
    assert torch.allclose(rbm_log_likelihood(rbm, x, exact_log_partition(rbm)).exp().sum()
                          <= 1.0 + 1e-6, torch.tensor(True))


def test_ais_recovers_the_exact_log_partition_of_a_small_dbm():
    torch.manual_seed(1)
    dbm = randomized(DBM(8, [4, 3]), seed=1)
    v, h1, h2 = all_binary(8), all_binary(4), all_binary(3)
    brute = torch.logsumexp(-dbm.energy([
        v.repeat_interleave(128, 0), h1.repeat_interleave(8, 0).repeat(256, 1), h2.repeat(4096, 1)
    ]), 0).item()
    assert exact_log_partition(dbm) == pytest.approx(brute, abs=1e-4)
    estimate = dbm_log_partition(dbm, steps=1000, chains=64)
    assert abs(estimate.log_z - brute) < 0.1


def test_the_mean_field_fixed_point_solves_its_equations_and_bounds_the_likelihood():
    dbm = randomized(DBM(8, [4, 3]), scale=0.5, seed=2)
    guide = MeanFieldDBM(dbm, iterations=50)
    x = all_binary(8)[::17]
    mu = guide.mean_field(x)
    for l in (1, 2):
        assert torch.allclose(mu[l], torch.sigmoid(dbm.layer_input(mu, l)), atol=1e-5)
    log_z = exact_log_partition(dbm)
    bound = dbm_log_likelihood(dbm, guide, x, log_z)
    exact = exact_log_marginal(dbm, x) - log_z
    assert bool((bound <= exact + 1e-5).all())
    assert bool((exact - bound < 0.5).all())  # a close bound, not a loose one


def test_pcd_raises_the_exact_log_likelihood_of_its_training_data():
    torch.manual_seed(0)
    patterns = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1],
                             [1, 0, 1, 0, 1, 0, 1, 0]], dtype=torch.float)
    data = Dataset.from_tensors(patterns.repeat(40, 1))
    rbm = RBM(8, 6, init_scale=0.1)

    def mean_log_likelihood():
        return (exact_log_marginal(rbm, patterns) - exact_log_partition(rbm)).mean().item()

    before = mean_log_likelihood()
    trainer = Trainer(rbm, EmptyGuide(), "pcd", lr=0.01, batch_size=20,
                      objective_options={"chains": 20}, progress=False)
    history = trainer.fit(data, epochs=50)
    after = mean_log_likelihood()
    assert after > before + 1.5  # from about -5.6 towards the best possible, log 1/3 = -1.1
    assert history[-1]["loss"] < history[0]["loss"]  # the reconstruction error falls


def test_cd_and_pcd_chains_are_checkpointed_buffers():
    rbm = RBM(8, 4)
    loss = build_objective("pcd", rbm, EmptyGuide(), chains=7)
    assert loss.own_state_dict()["chain_0"].shape == (7, 8)
    assert "chain_1" in loss.own_state_dict()


def test_cli_trains_an_rbm_on_bars_end_to_end(tmp_path):
    out = tmp_path / "rbm"
    code = main(["train", "rbm", "--dataset", "bars", "--epochs", "1", "--set", "hidden=16",
                 "--set", "n_train=200", "--set", "n_test=50", "--out", str(out), "--quiet"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nll_method"] == "ais"
    assert math.isfinite(metrics["test_nll"]) and math.isfinite(metrics["ais_log_z"])
    assert metrics["test_nll"] < 16 * math.log(2)  # better than uniform pixels
    for figure in ("samples.png", "training_curve.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(out), "--knn", "--quiet"]) == 0  # the full AIS, 10,000 x 100
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["ais_steps"] == 10000 and evaluation["nll_method"] == "ais"
    assert abs(evaluation["ais_log_z"] - metrics["ais_log_z"]) < 0.5  # short and long AIS agree
    assert evaluation["ais_valid"] is True and "warnings" not in evaluation
    assert evaluation["ais_log_z_floor"] <= evaluation["ais_log_z"]
    assert 0 <= evaluation["knn_error"]["3"] <= 1


def test_cli_warns_when_the_ais_estimate_falls_below_its_floor(tmp_path, capsys, monkeypatch):
    out = tmp_path / "rbm"
    assert main(["train", "rbm", "--dataset", "bars", "--epochs", "1", "--set", "hidden=8",
                 "--set", "n_train=100", "--set", "n_test=20", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    too_low = LogPartition(log_z=-50.0, stderr=0.01, ess=2.0, steps=10, chains=2)
    monkeypatch.setattr("pyro_dgm.zoo.boltzmann.dbm_log_partition", lambda *a, **k: too_low)
    assert main(["evaluate", str(out), "--ais-steps", "10", "--ais-chains", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: AIS's log Z (-50.00) is below") == 1 and "Traceback" not in err
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["ais_valid"] is False and evaluation["ais_log_z_floor"] > -50


@pytest.mark.parametrize("argv, words", [
    (["--set", "chains=0"], "chains"),
    (["--set", "gibbs_steps=1.5"], "gibbs_steps"),
    (["--set", "layers=[]"], "layers"),
    (["--objective", "cd"], "does not apply"),
    (["--set", "pretrain_epochs=0"], "pretrain_epochs"),
])
def test_bad_options_are_refused_in_one_sentence(tmp_path, capsys, argv, words):
    code = main(["train", "dbm", "--dataset", "bars", "--epochs", "1", "--set", "n_train=20",
                 "--set", "n_test=5", *argv, "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err
    assert words in err and len(err.splitlines()) == 1


def test_ais_and_models_refuse_bad_arguments():
    with pytest.raises(PyroDGMError, match="at least 2 chains"):
        rbm_log_partition(RBM(4, 2), steps=10, chains=1)
    with pytest.raises(PyroDGMError, match="at least 3 annealing steps"):
        rbm_log_partition(RBM(4, 2), steps=2, chains=4)
    with pytest.raises(PyroDGMError, match="too large"):
        exact_log_partition(RBM(30, 2))
    with pytest.raises(PyroDGMError, match="trains Boltzmann machines"):
        build_objective("pcd", torch.nn.Linear(2, 2), None)


def test_greedy_pretraining_raises_the_dbm_likelihood_of_its_training_data():
    from pyro_dgm.infer.pcd import pretrain_greedy

    torch.manual_seed(0)
    patterns = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]],
                            dtype=torch.float)
    data = Dataset.from_tensors(patterns.repeat(50, 1))
    dbm = DBM(8, [6, 4], init_scale=0.1)

    def mean_log_likelihood():
        return (exact_log_marginal(dbm, patterns) - exact_log_partition(dbm)).mean().item()

    before = mean_log_likelihood()
    errors = pretrain_greedy(dbm, data, epochs=20, lr=0.1, batch_size=10)
    assert len(errors) == 2 and all(math.isfinite(e) for e in errors)
    assert mean_log_likelihood() > before + 1.0  # from about -5.5 towards log 1/2


def two_mode_rbm(visible: int = 16, hidden: int = 8, weight: float = 2.0) -> RBM:
    """An RBM whose all-on state outweighs the all-off one by :math:`e^{16}` behind an energy
    barrier that Gibbs chains started near all-off (the base's visible biases are -2) do not
    cross: the model on which AIS errs low, with a small standard error."""
    rbm = RBM(visible, hidden, visible_logits=torch.full((visible,), -2.0))
    with torch.no_grad():
        rbm.weights[0].fill_(weight)
        rbm.biases[0].fill_(1.0 - weight * hidden / 2)
        rbm.biases[1].fill_(-weight * visible / 2)
    return rbm


def test_a_base_with_the_data_hidden_activity_finds_the_mode_the_default_base_misses():
    torch.manual_seed(0)
    rbm = two_mode_rbm()
    exact = exact_log_partition(rbm)
    base = data_base_biases(rbm, [rbm.hidden_probs(torch.ones(5, 16))])
    assert torch.sigmoid(base[1]).min() > 0.9  # the data switch every hidden unit on
    assert dbm_log_partition(rbm, steps=1000, chains=16).log_z < exact - 10
    assert abs(dbm_log_partition(rbm, steps=1000, chains=16, base=base).log_z - exact) < 2


def test_the_data_floor_of_log_z_is_certified_and_counts_each_state_once():
    torch.manual_seed(0)
    rbm = randomized(RBM(8, 6), seed=3)
    x = all_binary(8)[torch.randint(0, 256, (40,))]
    floor = log_partition_floor(x, -rbm.free_energy(x))
    assert floor <= exact_log_partition(rbm)
    assert floor == pytest.approx(log_partition_floor(torch.cat([x, x]), -rbm.free_energy(
        torch.cat([x, x]))), abs=1e-5)
    every_state = all_binary(8)  # all states: the floor is log Z itself
    assert log_partition_floor(every_state, -rbm.free_energy(every_state)) == pytest.approx(
        exact_log_partition(rbm), abs=1e-4)


def test_an_ais_estimate_that_missed_a_mode_is_flagged_not_reported_as_valid():
    torch.manual_seed(0)
    rbm = two_mode_rbm()  # test digits mostly all-off: the base from their hidden means, too
    test = Dataset.from_tensors(torch.cat([torch.ones(5, 16), torch.zeros(45, 16)]))
    metrics = ais_metrics(rbm, EmptyGuide(), test, steps=200, chains=16)
    assert metrics["ais_log_z"] < exact_log_partition(rbm) - 10  # AIS missed the all-on mode
    assert metrics["ais_log_z_floor"] == pytest.approx(exact_log_partition(rbm), abs=0.01)
    assert metrics["ais_valid"] is False and "missed modes" in metrics["warnings"][0]
    assert -metrics["nll"]["value"] > 0  # the impossible log-likelihood that the flag explains


def test_a_well_mixed_ais_estimate_passes_its_floor():
    torch.manual_seed(0)
    rbm = randomized(RBM(8, 6), seed=3)
    test = Dataset.from_tensors(all_binary(8)[torch.randint(0, 256, (40,))])
    metrics = ais_metrics(rbm, EmptyGuide(), test, steps=500, chains=32)
    assert metrics["ais_valid"] is True and "warnings" not in metrics
    assert metrics["ais_log_z_floor"] <= metrics["ais_log_z"] + 3 * metrics["ais_log_z_stderr"]


def test_reverse_ais_from_model_samples_recovers_the_exact_log_partition_of_a_small_dbm():
    torch.manual_seed(1)
    dbm = randomized(DBM(8, [4, 3]), seed=1)
    samples = dbm.gibbs_chain(64, 2000)  # long chains of a small model: near-exact samples
    estimate = dbm_log_partition_reverse(dbm, samples, steps=1000)
    exact = exact_log_partition(dbm)
    assert abs(estimate.log_z - exact) < 0.1
    assert estimate.log_z > exact - 3 * estimate.stderr  # from above, up to its noise


def test_forward_and_reverse_ais_bracket_a_log_z_that_forward_ais_alone_misses():
    torch.manual_seed(0)
    rbm = two_mode_rbm()
    exact = exact_log_partition(rbm)
    forward = dbm_log_partition(rbm, steps=200, chains=16)
    reverse = dbm_log_partition_reverse(rbm, [torch.ones(16, 16), torch.ones(16, 8)], steps=200)
    assert forward.log_z < exact - 10 and reverse.log_z > exact  # the gap shows the failure


def test_reverse_ais_and_the_base_refuse_states_of_the_wrong_shape():
    rbm = RBM(8, 6)
    with pytest.raises(PyroDGMError, match="one state per layer of sizes"):
        dbm_log_partition_reverse(rbm, [torch.ones(4, 8)], steps=10)
    with pytest.raises(PyroDGMError, match="finite biases for layers of sizes"):
        dbm_log_partition(rbm, steps=10, chains=2, base=[torch.zeros(8), torch.zeros(5)])
    with pytest.raises(PyroDGMError, match="means of 1 hidden layers"):
        data_base_biases(rbm, [])


def test_sampling_chains_start_from_the_pixel_means_with_the_hidden_units_off():
    torch.manual_seed(0)
    dbm = DBM(16, [8, 4], visible_logits=torch.linspace(-3, 3, 16))
    start = dbm.start_states(4000)
    assert [tuple(state.shape) for state in start] == [(4000, 16), (4000, 8), (4000, 4)]
    assert torch.allclose(start[0].mean(0), torch.sigmoid(torch.linspace(-3, 3, 16)), atol=0.03)
    assert start[1].sum() == 0 and start[2].sum() == 0
    assert dbm.sample(3).shape == (3, 16)
