"""The experiment layer: every zoo claim (model x objective x data set) runs, seeds reproduce
runs, and a trained run loads back in Python."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import pytest
import torch

import pyro_dgm
from pyro_dgm.cli import main
from pyro_dgm.compare import compare
from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.zoo import ZOO

# hyper-parameters small enough for a step in milliseconds, where a model has them
TINY_HYPER = {"hidden": 16, "z_dim": 4, "truncation": 4, "layers": [8], "z1_dim": 3, "z2_dim": 3,
              "pseudo_inputs": 4, "components": 3, "flow_length": 2, "rnn_hidden": 16,
              "embed": 16, "z_what_dim": 4, "steps": 2}
# data options that make the generated data sets small
TINY_DATA = {"bars": {"n_train": 64, "n_test": 16}, "bars-ssl": {"n_train": 64, "n_test": 16},
             "gaussian-clusters": {"n_train": 64, "n_test": 16},
             "polyreg": {"n_train": 32, "n_test": 4},
             "multi-mnist": {"n_train": 32, "n_test": 16}}
NEEDS_FILES = {"mnist", "mnist-ssl", "freyfaces", "multi-mnist"}
EXAMPLES = 32

CLAIMS = [pytest.param(entry.name, objective, dataset, id=f"{entry.name}-{objective}-{dataset}")
          for entry in ZOO.values() for objective in entry.objectives for dataset in entry.datasets]


def _head(data, n: int):
    """The first ``n`` examples of a data set (of any Dataset subclass)."""
    fields = {"x": data.x[:n], "y": None if data.y is None else data.y[:n]}
    if getattr(data, "labelled", None) is not None:
        fields["labelled"] = data.labelled[:n]
    return dataclasses.replace(data, **fields)


@functools.lru_cache(maxsize=None)
def tiny_data(dataset: str, data_dir):
    options = TINY_DATA.get(dataset, {})
    return tuple(_head(load_dataset(dataset, split, data_dir=data_dir, **options), EXAMPLES)
                 for split in ("train", "test"))


def test_the_claims_cover_every_model_and_objective():
    claimed = {(name, objective) for name, objective, _ in (c.values for c in CLAIMS)}
    assert claimed == {(e.name, o) for e in ZOO.values() for o in e.objectives}
    assert len(CLAIMS) >= len(ZOO)


@pytest.mark.parametrize("model, objective, dataset", CLAIMS)
def test_every_listed_objective_and_data_set_trains_and_evaluates(model, objective, dataset,
                                                                   request):
    """The zoo's claims, checked: one training step moves the parameters to a finite loss, and
    the held-out metrics of ``metrics.json`` and ``eval.json`` come out finite."""
    data_dir = None
    if dataset in NEEDS_FILES:
        data_dir = request.getfixturevalue("shared_data_dir")
    entry = ZOO[model]
    hyper = {k: v for k, v in TINY_HYPER.items() if k in entry.defaults}
    config = make_config(model, dataset=dataset, objective=objective, batch_size=16,
                         settings=hyper)
    experiment = Experiment(config, data=tiny_data(dataset, data_dir))
    experiment.build()
    trainer = experiment.make_trainer()
    train, test = experiment.data
    # the guide's parameters, or the model's where the guide has none (exact likelihoods)
    program = experiment.guide if list(experiment.guide.parameters()) else experiment.model
    before = [p.detach().clone() for p in program.parameters()]
    loss = trainer.step(next(train.batches(16, generator=torch.Generator().manual_seed(0))))
    assert math.isfinite(loss)
    after = list(program.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after)), "the guide did not move"
    metrics = experiment.metrics(eval_samples=3)
    numbers = [v for k, v in metrics.items() if isinstance(v, float) and k != "train_seconds"]
    assert numbers and all(math.isfinite(v) for v in numbers)
    evaluation = experiment.entry.evaluate(experiment.model, experiment.guide, test, train,
                                           iwae_samples=3, knn=False, seed=0)
    assert json.dumps(evaluation)  # what eval.json holds is JSON


def _without_timings(metrics: dict) -> dict:
    timing = {"train_seconds", "seconds_per_epoch", "seconds"}
    clean = {k: v for k, v in metrics.items() if k not in timing}
    clean["history"] = [{k: v for k, v in h.items() if k not in timing} for h in metrics["history"]]
    return clean


def test_the_same_seed_gives_the_same_run(tmp_path):
    args = ["train", "vae", "--dataset", "bars", "--seed", "3", "--epochs", "2", "--set",
            "hidden=16", "--set", "n_train=200", "--quiet"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    a, b = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("a", "b"))
    assert _without_timings(a) == _without_timings(b)
    assert main([*args[:5], "4", *args[6:], "--out", str(tmp_path / "c")]) == 0
    c = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert c["test_elbo"] != a["test_elbo"]


def test_untrained_runs_with_one_seed_start_from_the_same_weights(tmp_path):
    """The reported bug: the model was built before the seed was set."""
    args = ["train", "vae", "--dataset", "bars", "--seed", "0", "--epochs", "0", "--quiet"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    a, b = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("a", "b"))
    assert a["test_elbo"] == b["test_elbo"]


def test_compare_with_one_seed_repeats_itself():
    kwargs = dict(epochs=2, hyper={"hidden": 8, "z_dim": 2},
                  data_options={"n_train": 100, "n_test": 20}, iwae_samples=5,
                  variance_samples=3, progress=False)
    runs = [compare("vae", ["elbo", "iwae:particles=3"], **kwargs).runs for _ in range(2)]
    keys = ("label", "init_fingerprint", "final_nll", "test_elbo", "grad")
    assert [{k: r[k] for k in keys} for r in runs[0]] == [{k: r[k] for k in keys} for r in runs[1]]


def test_compare_and_train_start_from_the_same_weights(tmp_path):
    hyper = {"hidden": 8, "z_dim": 2}
    config = make_config("vae", dataset="bars", seed=5, settings=hyper)
    trained = Experiment(config)
    trained.build()
    from pyro_dgm.compare import weights_fingerprint
    result = compare("vae", ["elbo"], seeds=(5,), epochs=1, hyper=hyper, data_options={},
                     iwae_samples=2, variance_samples=0, progress=False)
    assert result.runs[0]["init_fingerprint"] == weights_fingerprint(trained.model, trained.guide)


def test_load_run_gives_back_the_trained_model(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "vae", "--dataset", "bars", "--epochs", "2", "--set", "hidden=16",
                 "--set", "z_dim=2", "--quiet", "--out", str(out)]) == 0
    run = pyro_dgm.load_run(out)
    assert run.config["model"] == "vae" and len(run.history) == 2
    saved = torch.load(out / "checkpoint.pt", weights_only=False)["modules"]["guide"]
    for name, value in run.guide.state_dict().items():
        assert torch.equal(value, saved[name])
    codes = run.guide.encode(run.test.x)
    assert codes.shape == (len(run.test), 2)


def test_an_experiment_runs_without_a_folder():
    config = make_config("vae", dataset="bars", epochs=1, settings={"hidden": 8, "z_dim": 2,
                                                                    "n_train": 100})
    metrics = Experiment(config).run(eval_samples=2)
    assert metrics["epochs"] == 1 and math.isfinite(metrics["test_elbo"])


def test_a_seconds_budget_trains_for_that_long(tmp_path):
    config = make_config("vae", dataset="bars", seconds=0.5, settings={"hidden": 8, "z_dim": 2})
    experiment = Experiment(config)
    experiment.run(eval_samples=2)
    assert 0.5 <= experiment.trainer.train_seconds < 5


def test_a_config_without_its_keys_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "vae"}))
    with pytest.raises(PyroDGMError, match="lacks the key"):
        pyro_dgm.load_run(tmp_path)
