"""Data-parallel training (:mod:`pyro_dgm.infer.distributed`): two processes on the loopback
(``gloo``) train like one process on the same global batches, evaluate like one process (the
estimators sharded), refuse mismatched configurations, and stop in one sentence when one dies.

The exact comparison uses a model whose loss is deterministic given the batch: a MAP
auto-encoder (a ``Delta`` guide under ``Trace_ELBO``), so that the per-step losses and the
parameters of a 2-process run must match the 1-process run up to float rounding. The zoo's
stochastic objectives are checked for what holds whatever the noise: parameters identical on
every rank, and losses close to one process's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing

import pyro
import pyro.distributions as dist
from pyro.nn import PyroModule

from pyro_dgm.cli import main
from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import OBJECTIVES, Objective, Trainer, distributed, register_objective
from pyro_dgm.infer.counting import infer_counts
from pyro_dgm.infer.estimators import encode_all, knn_error
from pyro_dgm.infer.evaluate import evaluate
from pyro_dgm.infer.objectives import elbo_loss
from pyro_dgm.zoo import get_entry

WORLD = 2
EXAMPLES, BATCH = 205, 20  # the last batch has 5 rows: shards of 3 and 2
STOCHASTIC = {"elbo": "vae", "iwae": "vae", "rws": "vae", "wake-sleep": "sbn"}
ROOT = Path(__file__).resolve().parents[1]


class MapModel(PyroModule):
    """z ~ N(0, I), x ~ Bernoulli(decoder(z)), both in plate("data")."""

    def __init__(self, z_dim=2, x_dim=16):
        super().__init__()
        self.z_dim = z_dim
        self.decoder = torch.nn.Linear(z_dim, x_dim)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([self.z_dim]).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=self.decoder(z)).to_event(1), obs=x)


class MapGuide(PyroModule):
    """z = encoder(x), a point mass: the ELBO is a deterministic function of the batch."""

    def __init__(self, z_dim=2, x_dim=16):
        super().__init__()
        self.encoder = torch.nn.Linear(x_dim, z_dim)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Delta(self.encoder(x)).to_event(1))


def named_parameters(trainer: Trainer):
    return [(f"{part}.{name}", p)
            for part, module in (("model", trainer.model), ("guide", trainer.guide))
            for name, p in module.named_parameters()]


def parameters(trainer: Trainer) -> dict:
    return {name: p.detach().clone() for name, p in named_parameters(trainer)}


def map_run(epochs: int, checkpoint=None, resume=False) -> dict:
    """Train the MAP auto-encoder; its per-step losses, history and parameters."""
    data = load_dataset("bars", "train", n_train=EXAMPLES)
    pyro.set_rng_seed(0)
    trainer = Trainer(MapModel(), MapGuide(), "elbo", lr=0.05, batch_size=BATCH, seed=0,
                      progress=False, checkpoint=checkpoint)
    losses, first_gradients = [], {}

    def record(trainer, loss):
        losses.append(loss)
        if not first_gradients:  # the gradient the first step applied (Adam hides its scale)
            first_gradients.update({name: p.grad.clone() for name, p in named_parameters(trainer)})

    trainer.on_step.append(record)
    trainer.fit(data, epochs, resume=resume)
    return {"losses": losses, "history": trainer.history, "params": parameters(trainer),
            "examples": trainer.examples, "gradients": first_gradients}


def objective_run(objective: str) -> dict:
    """One epoch of a zoo model under ``objective``."""
    model_name = STOCHASTIC[objective]
    data = load_dataset("bars", "train", n_train=EXAMPLES)
    entry = get_entry(model_name)
    hyper = {"z_dim": 2, "hidden": 8} if model_name == "vae" else {"layers": [4]}
    pyro.set_rng_seed(0)
    model, guide = entry.build(entry.hyper(hyper), data)
    trainer = Trainer(model, guide, objective, lr=0.01, batch_size=BATCH, seed=0, progress=False)
    trainer.fit(data, 1)
    return {"loss": trainer.history[0]["loss"], "params": parameters(trainer)}


# a small zoo model for every objective declared data-parallel safe: (model, data set, hyper)
SMALL_AIR = {"steps": 2, "z_what_dim": 2, "hidden": 8, "rnn_hidden": 8, "embed": 8}
CASES = {
    **{name: ("vae", "bars", {"z_dim": 2, "hidden": 8})
       for name in ("elbo", "meanfield", "tracegraph", "iwae", "rws")},
    **{name: ("sbn", "bars", {"layers": [4]}) for name in ("wake-sleep", "nvil", "prior-is")},
    "enum-elbo": ("dlgmm", "bars", {"z_dim": 2, "components": 2, "hidden": 8}),
    "ss-elbo": ("m2", "bars-ssl", {"z_dim": 2, "hidden": 8}),
    **{name: ("polyreg", "polyreg", {"hidden": 8}) for name in ("sleep", "csis")},
    **{name: ("air", "multi-mnist", SMALL_AIR) for name in ("count-enum", "tracegraph-steps")},
    "adversarial": ("gan", "toy2d", {"z_dim": 2, "hidden": 8}),
    **{name: ("rbm", "bars", {"hidden": 4}) for name in ("pcd", "cd")},
}
UNDECLARED = "undeclared-test-objective"  # registered in the workers only


def small_model(name: str, dataset: str, hyper: dict, split="train", examples=16):
    data = load_dataset(dataset, split, n_train=examples, n_test=examples)
    entry = get_entry(name)
    pyro.set_rng_seed(0)
    model, guide = entry.build(entry.hyper(hyper), data)
    return model, guide, data


def objective_epoch(objective: str):
    """One epoch (2 steps) of objective's small model: every parameter afterwards (the
    objective's own too) and whether any moved, or the refusal's sentence."""
    model, guide, data = small_model(*CASES.get(objective, CASES["elbo"]))
    try:
        trainer = Trainer(model, guide, objective, lr=0.01, batch_size=8, seed=0, progress=False)
        trainer.fit(data, 1)
    except PyroDGMError as error:
        return str(error)
    after = {name: p.detach().clone() for name, p in trainer.loss.named_parameters()}
    initial_model, initial_guide, _ = small_model(*CASES[objective])
    before = {f"{part}.{name}": p for part, module in (("model", initial_model),
                                                      ("guide", initial_guide))
              for name, p in module.named_parameters()}
    moved = any(not torch.equal(p, after[name]) for name, p in before.items())
    return {"params": after, "moved": moved, "loss": trainer.history[0]["loss"]}


def sharded_estimates() -> dict:
    """The estimators on a fixed (untrained, seeded) VAE and AIR guide, shared out over the
    processes when a group is open: IWAE-k and ELBO per example, kNN error, AIR's counts."""
    model, guide, train = small_model("vae", "bars", {"z_dim": 2, "hidden": 8}, examples=EXAMPLES)
    test = load_dataset("bars", "test").head(250)
    _, air_guide, canvases = small_model("air", "multi-mnist", SMALL_AIR, "test", examples=30)
    with distributed.sharded_evaluation():
        metrics = evaluate(model, guide, test, train, iwae_samples=5, knn=True, seed=0,
                           batch_size=30)  # 9 batches of 30 and 10 rows: uneven shares
        codes = encode_all(guide.encode, test.x)
        knn = knn_error(encode_all(guide.encode, train.x), train.y, codes, test.y, batch_size=40)
        counts = infer_counts(air_guide, canvases.x, batch_size=8)
        mine = list(distributed.my_batches(9))
    return {"evaluate": metrics, "knn": knn, "counts": counts, "mine": mine}


def refusal(**trainer_options) -> str:
    try:
        Trainer(MapModel(), MapGuide(), "elbo", progress=False, **trainer_options)
    except PyroDGMError as error:
        return str(error)
    return "not refused"


def worker(rank: int, port: int, folder: Path) -> None:
    """One rank: every scenario in turn, its results saved to ``folder/rank{rank}.pt``."""
    os.environ.update(WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    register_objective(Objective(UNDECLARED, "Trace_ELBO, declaring nothing",
                                 lambda model, guide: elbo_loss(model, guide,
                                                                pyro.infer.Trace_ELBO())))
    try:
        with distributed.process_group("cpu") as group:
            results = run_scenarios(group, folder)
            if rank == 1:  # rank 1 leaves its results, then dies in the last scenario
                torch.save(results, folder / f"rank{rank}.pt")
            results["dies"] = dying_run(group, folder)
            torch.save(results, folder / f"rank{rank}.pt")
    except distributed.PeerLost as error:  # leaving the group: rank 1 is gone
        (folder / "left.txt").write_text(str(error))


def run_scenarios(group, folder: Path) -> dict:
    """Every scenario in turn on this rank."""
    return {
            "group": (group.rank, group.world),
            "map": map_run(2),
            "resume": map_run(3, checkpoint=folder / "resumed.pt", resume=True),
            "two": map_run(2, checkpoint=folder / "two.pt"),
            "objectives": {name: objective_run(name) for name in STOCHASTIC},
            "every objective": {name: objective_epoch(name) for name in OBJECTIVES},
            "estimates": sharded_estimates(),
            "mismatch": mismatch(group),
            "odd batch": refusal(batch_size=BATCH + 1),
        }


def mismatch(group) -> str:
    try:
        group.check_same({"model": "vae", "lr": 0.1 * (group.rank + 1), "data_dir": group.rank},
                         ignore=("data_dir",))
    except PyroDGMError as error:
        return str(error)
    return "not refused"


def dying_run(group, folder: Path) -> str:
    """Rank 1 dies (exits at once, as if killed) in the second epoch; what rank 0 says."""
    data = load_dataset("bars", "train", n_train=EXAMPLES)
    trainer = Trainer(MapModel(), MapGuide(), "elbo", lr=0.05, batch_size=BATCH, seed=0,
                      progress=False, checkpoint=folder / "dies.pt")
    if group.rank == 1:  # exit status 0: torch's spawn then leaves rank 0 running
        trainer.on_step.append(lambda t, loss: t.steps == 14 and os._exit(0))
    try:
        trainer.fit(data, 3)
    except PyroDGMError as error:
        return str(error)
    return "not stopped"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """The results of both ranks of one 2-process run of every scenario."""
    folder = tmp_path_factory.mktemp("ddp")
    one_epoch = map_run(1, checkpoint=folder / "resumed.pt")  # what the 2 processes resume
    assert len(one_epoch["history"]) == 1
    torch.multiprocessing.spawn(worker, args=(free_port(), folder), nprocs=WORLD)
    return [{**torch.load(folder / f"rank{rank}.pt", weights_only=False), "folder": folder}
            for rank in range(WORLD)]


def assert_same_parameters(first: dict, second: dict, **tolerance) -> None:
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], **tolerance, msg=name)


def test_ranks_join_one_group(ranks):
    assert [r["group"] for r in ranks] == [(0, WORLD), (1, WORLD)]


def test_two_processes_follow_the_one_process_trajectory(ranks):
    single = map_run(2)
    for rank in ranks:
        result = rank["map"]
        assert len(result["losses"]) == len(single["losses"]) == 2 * 11  # 10 full batches + 5 rows
        torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(single["losses"]),
                                   rtol=1e-5, atol=1e-6)
        assert result["examples"] == single["examples"] == 2 * EXAMPLES
        assert_same_parameters(result["gradients"], single["gradients"], rtol=1e-5, atol=1e-6)
        assert_same_parameters(result["params"], single["params"], rtol=1e-4, atol=1e-5)
    assert single["losses"][-1] < single["losses"][0]  # it learns, so the match means something


def test_parameters_are_identical_across_ranks(ranks):
    first, second = ranks
    assert_same_parameters(first["map"]["params"], second["map"]["params"], rtol=0, atol=0)
    for name in STOCHASTIC:
        assert_same_parameters(first["objectives"][name]["params"],
                               second["objectives"][name]["params"], rtol=0, atol=0)


@pytest.mark.parametrize("objective", list(STOCHASTIC))
def test_stochastic_objectives_train_like_one_process(ranks, objective):
    single = objective_run(objective)
    losses = [rank["objectives"][objective]["loss"] for rank in ranks]
    assert losses[0] == losses[1]  # the loss is the global batch's, summed over the ranks
    assert abs(losses[0] - single["loss"]) < 0.05 * abs(single["loss"]), (losses, single["loss"])


def test_resume_under_two_processes_continues_a_one_process_run(ranks):
    uninterrupted = map_run(3)
    for rank in ranks:
        resumed = rank["resume"]
        assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
        torch.testing.assert_close(torch.tensor(resumed["losses"]),
                                   torch.tensor(uninterrupted["losses"][11:]), rtol=1e-5,
                                   atol=1e-6)
        assert_same_parameters(resumed["params"], uninterrupted["params"], rtol=1e-4, atol=1e-5)


def test_resume_in_one_process_continues_a_two_process_run(ranks, tmp_path):
    uninterrupted = map_run(3)
    two = ranks[0]["two"]
    assert [h["epoch"] for h in two["history"]] == [1, 2]
    shutil.copy(ranks[0]["folder"] / "two.pt", tmp_path / "two.pt")
    resumed = map_run(3, checkpoint=tmp_path / "two.pt", resume=True)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    torch.testing.assert_close(torch.tensor(resumed["losses"]),
                               torch.tensor(uninterrupted["losses"][22:]), rtol=1e-5, atol=1e-6)
    assert_same_parameters(resumed["params"], uninterrupted["params"], rtol=1e-4, atol=1e-5)


def test_every_objective_is_data_parallel_or_refused_by_name(ranks):
    first, second = (rank["every objective"] for rank in ranks)
    assert set(first) == set(OBJECTIVES) | {UNDECLARED}
    for name, result in first.items():
        declared = OBJECTIVES[name].data_parallel if name in OBJECTIVES else None
        if declared is not True:
            # refused by the Trainer, or (an objective of another model family) already by its
            # own build on the test's VAE; either way one sentence naming it
            assert isinstance(result, str) and name in result, (name, result)
            continue
        assert name in CASES, f"objective {name!r} is declared data-parallel: give it a case"
        assert not isinstance(result, str), (name, result)
        assert result["moved"], f"{name}: a step changed no parameter of the model or guide"
        assert result["loss"] == second[name]["loss"]
        assert_same_parameters(result["params"], second[name]["params"], rtol=0, atol=0)
    assert isinstance(first[UNDECLARED], str)  # a new objective must declare itself


def test_sharded_evaluation_gives_the_one_process_numbers(ranks):
    single = sharded_estimates()  # no process group here: one process computes everything
    for rank in ranks:
        estimates = rank["estimates"]
        assert estimates["evaluate"] == single["evaluate"]
        assert estimates["knn"] == single["knn"]
        assert torch.equal(estimates["counts"], single["counts"])
    assert single["evaluate"]["knn_error"] is not None
    assert [rank["estimates"]["mine"] for rank in ranks] == [[0, 2, 4, 6, 8], [1, 3, 5, 7]]


def test_mismatched_configurations_stop_every_rank(ranks):
    for rank in ranks:
        assert rank["mismatch"] == ("the processes were started with different configurations "
                                    "(rank 1 differs from rank 0 in lr); start every process "
                                    "with the same command")


def test_a_rank_that_dies_stops_the_others_with_one_sentence(ranks):
    said = ranks[0]["dies"]
    assert "dies" not in ranks[1]  # it died before it could save
    assert said.startswith("another process of the group stopped (the gloo backend lost it")
    assert "in epoch 2; the last good checkpoint (epoch 1) is kept at" in said
    folder = ranks[0]["folder"]
    assert len(torch.load(folder / "dies.pt", weights_only=False)["history"]) == 1
    # leaving the group (its closing barrier) says the same, instead of a backend traceback
    assert (folder / "left.txt").read_text().startswith("another process of the group stopped")


def test_a_batch_size_that_does_not_divide_is_refused(ranks):
    assert ranks[0]["odd batch"] == ("the batch size 21 does not divide among 2 processes; "
                                     "choose a multiple of 2")


def test_too_few_examples_are_refused():
    group = distributed.DataParallel(rank=0, world=4)
    with pytest.raises(PyroDGMError, match="3 examples, fewer than the 4 processes"):
        group.check_batches(3, 4)
    with pytest.raises(PyroDGMError, match="last batch of every epoch has 2 example"):
        group.check_batches(10, 8)
    group.check_batches(12, 8)  # a last batch of 4 rows: one each


def test_shards_are_disjoint_and_cover_the_batch():
    batch = (torch.arange(10), torch.arange(10) * 10, "unchanged")
    shards = [distributed.DataParallel(rank, 3).shard(batch) for rank in range(3)]
    assert sorted(torch.cat([s[0] for s in shards]).tolist()) == list(range(10))
    assert all((s[1] == s[0] * 10).all() and s[2] == "unchanged" for s in shards)


def test_global_latents_are_refused():
    def model(x):
        mean = pyro.sample("mean", dist.Normal(0.0, 1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(mean, 1.0), obs=x)

    trace = pyro.poutine.trace(model).get_trace(torch.zeros(3))
    with pytest.raises(PyroDGMError, match="site 'mean' lies outside plate"):
        distributed.check_sums_over_examples(trace)


def test_one_process_has_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed.process_group("cpu") as group:
        assert group is None and distributed.current() is None and distributed.writes_files()


def test_a_partial_launch_environment_is_refused(monkeypatch):
    for name in distributed.LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(PyroDGMError, match="RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT is not"):
        with distributed.process_group("cpu"):
            pass


def test_commands_that_write_shared_files_are_refused_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["sample", "runs/anything"]) == 2
    assert "only pyro-dgm train runs data-parallel" in capsys.readouterr().err


def test_torchrun_trains_and_only_rank_0_writes(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD),
               "--master-port", str(free_port()), "-m", "pyro_dgm", "train", "vae",
               "--epochs", "1", "--set", "z_dim=2", "--set", "hidden=8", "--eval-samples", "2",
               "--out", str(out), "--quiet"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("trained vae on bars") == 1  # rank 0 alone reports
    assert {"config.json", "checkpoint.pt", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert not list(out.glob("*.tmp"))

    # evaluate under torchrun: shared out over 2 processes, rank 0 writes what 1 process would
    evaluate = ["evaluate", str(out), "--iwae-samples", "3", "--knn", "--quiet", "--threads", "1"]
    assert main(evaluate) == 0
    single = json.loads((out / "eval.json").read_text())
    (out / "eval.json").unlink()
    finished = subprocess.run([*command[:command.index("train")], *evaluate], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert json.loads((out / "eval.json").read_text()) == single
    assert finished.stdout.count('"nll"') == 1  # rank 0 alone prints
