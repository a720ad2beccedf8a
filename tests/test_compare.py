"""Tests of ``pyro-dgm compare`` and the guide-gradient variance estimator.

The comparison runs a tiny VAE on a small bars set; the gradient-variance tests use a conjugate
Gaussian model whose ELBO gradient is known in closed form.
"""

import csv
import json
import math
import time
from dataclasses import replace

import pytest
import torch

import pyro
import pyro.distributions as dist
from pyro.infer import Trace_ELBO, TraceGraph_ELBO
from pyro.nn import PyroModule

from pyro_dgm.cli import main
from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import OBJECTIVES, Objective
from pyro_dgm.compare import (
    compare,
    parse_objective_spec,
    split_objective_list,
    weights_fingerprint,
)
from pyro_dgm.infer.gradients import gradient_variance, guide_parameters
from pyro_dgm.infer.objectives import elbo_loss
from pyro_dgm.zoo import ZOO

TINY_HYPER = {"hidden": 8, "z_dim": 2}
TINY_DATA = {"n_train": 200, "n_test": 50}
TINY_SET = ["--set", "hidden=8", "--set", "z_dim=2", "--set", "n_train=200", "--set", "n_test=50",
            "--iwae-samples", "10", "--variance-samples", "10", "--quiet"]


# --------------------------------------------------------------------------- the comparison


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "vae"
    status = main(["compare", "vae", "--objectives", "elbo,iwae:particles=5", "--epochs", "3",
                   "--seeds", "0,1", "--lr", "0.01", *TINY_SET, "--out", str(out)])
    return status, out


def test_compare_writes_the_table_csv_json_and_figures(compared):
    status, out = compared
    assert status == 0
    for name in ("nll_vs_time.png", "final_nll.png", "grad_variance.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    table = [line for line in (out / "compare.md").read_text().splitlines()
             if line.startswith("| `")]
    assert [line.split("`")[1] for line in table] == ["elbo", "iwae:particles=5"]
    assert all("±" in line for line in table)  # two seeds: mean ± std
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert [(r["label"], r["seed"]) for r in rows] == [
        ("elbo", "0"), ("iwae:particles=5", "0"), ("elbo", "1"), ("iwae:particles=5", "1")]
    for row in rows:
        assert math.isfinite(float(row["final_nll"])) and row["status"] == "ok"
        assert float(row["final_nll"]) > 0 > float(row["test_elbo"])
        assert -float(row["test_elbo"]) >= float(row["final_nll"]) - 1e-4  # ELBO <= IWAE-k bound
        assert float(row["grad_total_variance"]) > 0 and int(row["epochs"]) == 3
    saved = json.loads((out / "compare.json").read_text())
    assert saved["config"]["objectives"] == ["elbo", "iwae:particles=5"]
    assert [run["options"] for run in saved["runs"]][:2] == [{}, {"particles": 5}]


def test_every_objective_starts_from_the_seeds_initial_weights(compared):
    _, out = compared
    runs = json.loads((out / "compare.json").read_text())["runs"]
    train = load_dataset("bars", "train", **TINY_DATA)
    entry = ZOO["vae"]
    for seed in (0, 1):
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        expected = weights_fingerprint(*entry.build(entry.hyper(TINY_HYPER), train))
        same_seed = [run for run in runs if run["seed"] == seed]
        assert {run["init_fingerprint"] for run in same_seed} == {expected}
        # and the same evaluation of the same weights gives the same NLL before training
        assert len({run["curve"][0]["nll"] for run in same_seed}) == 1
    assert runs[0]["init_fingerprint"] != runs[2]["init_fingerprint"]


def test_training_lowers_the_held_out_nll_and_the_clock_only_grows(compared):
    _, out = compared
    for run in json.loads((out / "compare.json").read_text())["runs"]:
        curve = run["curve"]
        assert curve[-1]["nll"] < curve[0]["nll"] - 0.1, run["label"]
        times = [point["seconds"] for point in curve]
        assert times == sorted(times) and times[-1] == pytest.approx(run["train_seconds"])


def test_a_seconds_budget_stops_near_the_budget():
    started = time.perf_counter()
    results = compare("vae", ["elbo"], seconds=0.6, hyper=TINY_HYPER, data_options=TINY_DATA,
                      iwae_samples=5, eval_examples=20, variance_samples=0, progress=False)
    elapsed = time.perf_counter() - started
    run = results.runs[0]
    assert 0.6 <= run["train_seconds"] < 0.6 + 0.3
    assert run["steps"] > 1 and run["epochs"] == pytest.approx(run["steps"] * 100 / 200, abs=0.5)
    assert elapsed < 15  # evaluation excluded from the budget, but not unbounded
    assert run["curve"][-1]["seconds"] == run["train_seconds"] and run["grad"] is None


def test_gradient_variance_after_a_common_warm_up_is_measured_at_another_point():
    def grads(warmup):
        results = compare("vae", ["elbo", "iwae:particles=5"], epochs=1, hyper=TINY_HYPER,
                          data_options=TINY_DATA, lr=0.05, iwae_samples=5, eval_examples=20,
                          variance_samples=5, variance_warmup=warmup, progress=False)
        return [run["grad"]["total_variance"] for run in results.runs]

    at_start, after_warm_up = grads(0), grads(3)
    assert all(v > 0 for v in at_start + after_warm_up)
    assert at_start != pytest.approx(after_warm_up, rel=1e-3)


def test_one_objective_may_appear_with_different_options():
    assert split_objective_list("elbo,iwae:particles=5,iwae:particles=50") == [
        "elbo", "iwae:particles=5", "iwae:particles=50"]
    assert split_objective_list("elbo:particles=2,x=1,iwae") == ["elbo:particles=2,x=1", "iwae"]
    spec = parse_objective_spec(" iwae:particles=50 ")
    assert (spec.label, spec.name, spec.options) == ("iwae:particles=50", "iwae", {"particles": 50})
    for bad in ("iwae:particles", ":particles=5", "iwae:particles=5,particles=6", "iwae:k=5"):
        with pytest.raises(PyroDGMError):
            parse_objective_spec(bad)


# --------------------------------------------------------------------------- CLI errors


def error_line(capsys, argv) -> str:
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def plain_elbo(model, guide):
    return elbo_loss(model, guide, Trace_ELBO())


@pytest.fixture
def extra_objectives(monkeypatch):
    """A registered objective that the VAE does not take, and one whose check always refuses."""
    def refuse(trace):
        raise PyroDGMError("the picky objective refuses this guide")

    monkeypatch.setitem(OBJECTIVES, "alien", Objective("alien", "not for VAEs", plain_elbo))
    monkeypatch.setitem(OBJECTIVES, "picky", Objective("picky", "refuses", plain_elbo,
                                                       check=refuse))
    monkeypatch.setitem(ZOO, "vae", replace(ZOO["vae"], objectives=(*ZOO["vae"].objectives, "picky")))


@pytest.mark.parametrize("arguments, words", [
    (["--objectives", "elbo,nosuch", "--epochs", "1"], "unknown objective 'nosuch'"),
    (["--objectives", "elbo,alien", "--epochs", "1"], "does not apply to model 'vae'"),
    (["--objectives", "elbo,picky", "--epochs", "1"], "refuses this guide"),
    (["--objectives", "elbo", "--epochs", "1", "--seconds", "2"], "not both"),
    (["--objectives", "iwae:particles", "--epochs", "1"], "not key=value"),
    (["--objectives", "iwae:particles=5,iwae:particles=5", "--epochs", "1"], "listed twice"),
    (["--objectives", "elbo", "--epochs", "1", "--seeds", "0,x"], "--seeds"),
    (["--objectives", "elbo", "--epochs", "1", "--set", "particles=5"], "go in the spec"),
])
def test_bad_compare_input_is_refused_in_one_line(capsys, tmp_path, extra_objectives,
                                                   arguments, words):
    line = error_line(capsys, ["compare", "vae", *arguments, *TINY_SET, "--out", str(tmp_path)])
    assert words in line
    assert not (tmp_path / "compare.csv").exists()


# --------------------------------------------------------------------------- gradient variance


class ConjugateModel(PyroModule):
    """``z_n ~ N(0, 1)``, ``x_n | z_n ~ N(z_n + shift, 1)`` (``shift`` = 0, a model parameter)."""

    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z + self.shift, 1.0), obs=x)


class LinearGuide(PyroModule):
    """``q(z_n | x_n) = N(a x_n + b, exp(c)^2)``, reparameterized or not."""

    def __init__(self, reparameterized: bool = True):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.3))
        self.b = torch.nn.Parameter(torch.tensor(0.1))
        self.c = torch.nn.Parameter(torch.tensor(math.log(0.8)))
        self.reparameterized = reparameterized

    def forward(self, x):
        q = dist.Normal(self.a * x + self.b, self.c.exp())
        q.has_rsample = self.reparameterized  # False: score-function gradients
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", q)


def exact_gradient(x: torch.Tensor) -> dict[str, float]:
    """Gradient of -ELBO per example: with m = a x + b, s = exp(c),
    -ELBO_n = (x_n - m_n)^2 / 2 + m_n^2 / 2 + s^2 - c + const, so d/dm = 2m - x, d/dc = 2 s^2 - 1."""
    m, s2 = 0.3 * x + 0.1, 0.8 ** 2
    return {"a": ((2 * m - x) * x).mean().item(), "b": (2 * m - x).mean().item(),
            "c": 2 * s2 - 1}


def measure(loss, reparameterized, x, num_estimates):
    pyro.clear_param_store()
    model, guide = ConjugateModel(), LinearGuide(reparameterized)
    names = list(guide_parameters(guide, x))
    stats = gradient_variance(elbo_loss(model, guide, loss), x, num_estimates=num_estimates,
                              seed=0)
    return names, stats


def test_guide_parameters_are_the_guides_and_not_the_models():
    pyro.clear_param_store()
    guide = LinearGuide()
    found = guide_parameters(guide, torch.zeros(3))
    assert sorted(name.split(".")[-1] for name in found) == ["a", "b", "c"]
    assert {id(t) for t in found.values()} == {id(p) for p in guide.parameters()}


ESTIMATES = 150


@pytest.fixture(scope="module")
def estimators():
    """Pathwise (Trace_ELBO, reparameterized guide) and score-function (TraceGraph_ELBO without
    baselines, the same guide marked non-reparameterized) gradient statistics on one batch."""
    x = torch.linspace(-2.0, 2.0, 20)
    return x, {"pathwise": measure(Trace_ELBO(), True, x, ESTIMATES),
               "score": measure(TraceGraph_ELBO(), False, x, ESTIMATES)}


@pytest.mark.parametrize("kind", ["pathwise", "score"])
def test_mean_gradient_matches_the_analytic_elbo_gradient(estimators, kind):
    x, measured = estimators
    names, stats = measured[kind]
    exact = exact_gradient(x)
    expected = torch.tensor([exact[name.split(".")[-1]] for name in names], dtype=torch.float64)
    standard_error = (stats["variance"] / ESTIMATES).sqrt()
    assert stats["num_params"] == 3 and stats["total_variance"] > 0
    assert ((stats["mean"] - expected).abs() < 4 * standard_error).all(), (
        stats["mean"], expected, standard_error)
    assert stats["mean_squared_norm"] == pytest.approx(
        stats["squared_norm_of_mean"] + stats["total_variance"] * (ESTIMATES - 1) / ESTIMATES,
        rel=1e-6)


def test_reparameterized_gradients_have_lower_variance_than_score_function_ones(estimators):
    _, measured = estimators
    pathwise, score = measured["pathwise"][1], measured["score"][1]
    assert pathwise["total_variance"] < score["total_variance"] / 2
    assert pathwise["snr"] > score["snr"]


def test_measuring_variance_changes_no_parameter_and_leaves_no_gradient():
    pyro.clear_param_store()
    model, guide = ConjugateModel(), LinearGuide()
    before = [p.detach().clone() for p in (*model.parameters(), *guide.parameters())]
    gradient_variance(elbo_loss(model, guide, Trace_ELBO()), torch.ones(4), num_estimates=5)
    after = list((*model.parameters(), *guide.parameters()))
    assert all(torch.equal(b, a) for b, a in zip(before, after))
    assert all(p.grad is None for p in after)


def test_a_model_with_an_empty_guide_compares_with_no_gradient_variance(tmp_path):
    """NADE's guide is empty (its likelihood is exact): no guide gradient to measure."""
    result = compare("nade", ["elbo"], dataset="bars", epochs=1, hyper={"hidden": 8},
                     data_options={"n_train": 100, "n_test": 40}, iwae_samples=2,
                     eval_examples=20, variance_samples=3, progress=False, out=tmp_path / "c")
    row = result.summary()[0]
    assert math.isfinite(row["final_nll"]["mean"]) and math.isnan(row["grad_snr"]["mean"])
