"""Tests of the Trainer: learning on toy data, checkpoints and resume, the NaN stop, plain Pyro
functions, and argument checks. Everything runs on the 4x4 sliding-bars data with tiny networks.
"""

import math
import os

import pytest
import torch

import pyro
import pyro.distributions as dist

from pyro_dgm.data import Dataset, load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer, TrainingDiverged, evaluate, load_checkpoint
from pyro_dgm.infer import trainer as trainer_module
from pyro_dgm.zoo import get_entry

CHANCE_4_CLASSES = 0.75


def build(name, data, seed=0, **hyper):
    entry = get_entry(name)
    torch.manual_seed(seed)
    return entry.build(entry.hyper(hyper), data)


def bernoulli_baseline(train, test) -> float:
    """Mean test log-likelihood of independent Bernoulli pixels with the training pixel means."""
    p = train.x.mean(0).clamp(1e-6, 1 - 1e-6)
    return (test.x * p.log() + (1 - test.x) * (1 - p).log()).sum(1).mean().item()


def parameters(*modules):
    return {f"{i}.{name}": p.detach().clone()
            for i, module in enumerate(modules) for name, p in module.named_parameters()}


# --------------------------------------------------------------------------- learning


@pytest.fixture(scope="module")
def bars():
    return (load_dataset("bars", "train", n_train=1000), load_dataset("bars", "test", n_test=500))


@pytest.fixture(scope="module")
def trained_vae(bars):
    train, _ = bars
    model, guide = build("vae", train, hidden=32, z_dim=2)
    history = Trainer(model, guide, "elbo", lr=2e-2, batch_size=100,
                      progress=False).fit(train, epochs=8)
    return model, guide, history


def test_vae_training_loss_decreases(trained_vae):
    _, _, history = trained_vae
    assert [h["epoch"] for h in history] == list(range(1, 9))
    losses = [h["loss"] for h in history]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0] - 1.0
    assert min(losses[-3:]) < min(losses[:3])
    assert all(h["seconds"] > 0 for h in history)


def test_vae_beats_independent_pixels_and_chance(trained_vae, bars):
    train, test = bars
    model, guide, _ = trained_vae
    metrics = evaluate(model, guide, test, train, iwae_samples=100)
    baseline = bernoulli_baseline(train, test)
    assert -11.5 < baseline < -8.0  # sanity: about 0.6 nats per pixel for these bars
    assert metrics["test_elbo"] > baseline + 0.5
    assert metrics["nll"]["k"] == 100
    # the IWAE bound from the same samples is at least the ELBO
    assert metrics["nll"]["value"] <= -metrics["test_elbo"] + 1e-5
    assert set(metrics["knn_error"]) == {"3", "5", "10"}
    assert all(error < CHANCE_4_CLASSES - 0.35 for error in metrics["knn_error"].values())
    assert metrics["active_dims"] in (1, 2)


def test_sbvae_long_run_stays_finite():
    """The SB-VAE authors report NaNs after long runs; 320 steps here must stay finite."""
    train = load_dataset("bars", "train", n_train=500)
    test = load_dataset("bars", "test", n_test=200)
    model, guide = build("sbvae", train, truncation=10, hidden=32)
    history = Trainer(model, guide, "meanfield", lr=1e-3, batch_size=25,
                      progress=False).fit(train, epochs=16)
    assert len(history) == 16
    assert all(math.isfinite(h["loss"]) for h in history)
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(torch.isfinite(p).all() for p in parameters(model, guide).values())
    metrics = evaluate(model, guide, test, train, iwae_samples=20)
    assert math.isfinite(metrics["test_elbo"]) and math.isfinite(metrics["nll"]["value"])
    codes = guide.encode(test.x)
    assert codes.shape == (200, 10)
    assert torch.allclose(codes.sum(-1), torch.ones(200), atol=1e-4)
    assert all(error < CHANCE_4_CLASSES for error in metrics["knn_error"].values())


# --------------------------------------------------------------------------- plain Pyro functions

X_DIM, Z_DIM = 16, 2


def linear_logistic_model(x):
    """z ~ N(0, I), x ~ Bernoulli(sigmoid(z W + b)) with W, b as pyro.param sites."""
    weight = pyro.param("weight", lambda: 0.1 * torch.randn(Z_DIM, X_DIM))
    bias = pyro.param("bias", lambda: torch.zeros(X_DIM))
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(x.new_zeros(Z_DIM), 1.0).to_event(1))
        pyro.sample("x", dist.Bernoulli(logits=z @ weight + bias).to_event(1), obs=x)


def plain_functions(seed=0, update_module_params=False):
    """A linear-logistic VAE as plain functions: pyro.module for the encoder, pyro.param for the decoder."""
    torch.manual_seed(seed)
    encoder = torch.nn.Sequential(torch.nn.Linear(X_DIM, 16), torch.nn.ReLU(),
                                  torch.nn.Linear(16, 2 * Z_DIM))

    def guide(x):
        pyro.module("encoder", encoder, update_module_params=update_module_params)
        loc, raw_scale = encoder(x).chunk(2, dim=-1)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, torch.nn.functional.softplus(raw_scale) + 1e-3)
                        .to_event(1))

    def encode(x):
        return encoder(x)[..., :Z_DIM]

    return linear_logistic_model, guide, encode, encoder


def param_only_functions(seed=0):
    """The same pair with every parameter a pyro.param (no module)."""
    torch.manual_seed(seed)

    def guide(x):
        a = pyro.param("a", lambda: 0.1 * torch.randn(X_DIM, Z_DIM))
        c = pyro.param("c", lambda: torch.zeros(Z_DIM))
        log_scale = pyro.param("log_scale", lambda: torch.zeros(Z_DIM))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x @ a + c, log_scale.exp()).to_event(1))

    return linear_logistic_model, guide


def test_plain_functions_train_and_evaluate_with_a_custom_encode(bars):
    train, test = bars
    model, guide, encode, encoder = plain_functions()
    history = Trainer(model, guide, "elbo", lr=2e-2, batch_size=100,
                      progress=False).fit(train, epochs=6)
    assert history[-1]["loss"] < history[0]["loss"] - 0.5
    assert "encoder$$$0.weight" in pyro.get_param_store().keys()
    metrics = evaluate(model, guide, test, train, iwae_samples=50, encode=encode)
    assert metrics["test_elbo"] > bernoulli_baseline(train, test)
    assert metrics["nll"]["value"] <= -metrics["test_elbo"] + 1e-5
    assert all(error < CHANCE_4_CLASSES - 0.2 for error in metrics["knn_error"].values())
    assert metrics["active_dims"] in (1, 2)
    # without an encode (a function has no .encode) there are no code metrics
    plain = evaluate(model, guide, test, train, iwae_samples=5)
    assert plain["knn_error"] is None and plain["active_dims"] is None


def test_evaluate_needs_labels_for_knn(bars):
    train, test = bars
    model, guide, encode, _ = plain_functions()
    unlabelled = Dataset("bars", test.x, None, (4, 4), "bernoulli")
    with pytest.raises(PyroDGMError, match="labelled"):
        evaluate(model, guide, unlabelled, train, iwae_samples=2, encode=encode)
    metrics = evaluate(model, guide, unlabelled, train, iwae_samples=2, encode=encode, knn=False)
    assert metrics["knn_error"] is None and metrics["active_dims"] is not None


# --------------------------------------------------------------------------- checkpoints and resume


@pytest.fixture(scope="module")
def small_bars():
    return load_dataset("bars", "train", n_train=200)


def _fit_then_resume(make, data, folder, objective="elbo", options=None):
    """(uninterrupted 4-epoch history and params, 2 + 2 resumed history and params)."""
    kwargs = dict(lr=1e-2, batch_size=50, seed=3, progress=False, objective_options=options)

    def params(programs):
        store = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}
        modules = [p for p in programs if isinstance(p, torch.nn.Module)]
        return {**store, **parameters(*modules)}

    programs = make()
    full = Trainer(programs[0], programs[1], objective, **kwargs).fit(data, 4)
    full_params = params(programs)

    checkpoint = folder / "checkpoint.pt"
    programs = make()
    Trainer(programs[0], programs[1], objective, checkpoint=checkpoint, **kwargs).fit(data, 2)
    programs = make()
    resumed = Trainer(programs[0], programs[1], objective, checkpoint=checkpoint,
                      **kwargs).fit(data, 4, resume=True)
    return full, full_params, resumed, params(programs)


def _assert_same_run(full, full_params, resumed, resumed_params):
    assert [h["epoch"] for h in resumed] == [1, 2, 3, 4]
    for a, b in zip(full, resumed):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    assert full_params.keys() == resumed_params.keys()
    for name in full_params:
        assert torch.allclose(full_params[name], resumed_params[name], atol=1e-6), name


def test_resume_matches_an_uninterrupted_run_for_pyro_params(small_bars, tmp_path):
    _assert_same_run(*_fit_then_resume(param_only_functions, small_bars, tmp_path))


def test_resume_matches_an_uninterrupted_run_for_a_zoo_vae(small_bars, tmp_path):
    def make():
        return build("vae", small_bars, hidden=16, z_dim=2)
    _assert_same_run(*_fit_then_resume(make, small_bars, tmp_path))


def test_resume_matches_an_uninterrupted_run_for_pyro_module_with_update(small_bars, tmp_path):
    def make():
        return plain_functions(update_module_params=True)[:2]
    _assert_same_run(*_fit_then_resume(make, small_bars, tmp_path))


def test_resume_matches_an_uninterrupted_run_for_pyro_module_default(small_bars, tmp_path):
    def make():
        return plain_functions()[:2]
    _assert_same_run(*_fit_then_resume(make, small_bars, tmp_path))


@pytest.mark.parametrize("objective,options", [("iwae", {"particles": 1}),
                                               ("elbo", {"particles": 3})])
def test_resume_matches_an_uninterrupted_run_with_checks_and_particles(small_bars, tmp_path,
                                                                       objective, options):
    _assert_same_run(*_fit_then_resume(param_only_functions, small_bars, tmp_path, objective,
                                       options))


def test_resume_continues_the_history(small_bars, tmp_path):
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    first = Trainer(model, guide, checkpoint=checkpoint, batch_size=50,
                    progress=False).fit(small_bars, 2)
    first = [dict(h) for h in first]
    assert load_checkpoint(checkpoint)["history"] == first
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    history = Trainer(model, guide, checkpoint=checkpoint, batch_size=50,
                      progress=False).fit(small_bars, 3, resume=True)
    assert history[:2] == first and [h["epoch"] for h in history] == [1, 2, 3]
    assert load_checkpoint(checkpoint)["history"] == history
    # asking for fewer epochs than done trains nothing more
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    again = Trainer(model, guide, checkpoint=checkpoint, batch_size=50,
                    progress=False).fit(small_bars, 1, resume=True)
    assert again == history


def test_checkpoint_is_written_atomically(small_bars, tmp_path, monkeypatch):
    checkpoint = tmp_path / "checkpoint.pt"
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    trainer = Trainer(model, guide, checkpoint=checkpoint, batch_size=100, progress=False)
    trainer.fit(small_bars, 2)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]
    good = checkpoint.read_bytes()

    def crash_mid_write(state, f, *args, **kwargs):
        f.write(good[: len(good) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module.torch, "save", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(small_bars, 3)
    # the previous checkpoint is intact and no temporary file is left
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]
    assert checkpoint.read_bytes() == good
    assert len(load_checkpoint(checkpoint)["history"]) == 2


def test_corrupt_checkpoint_names_the_file(small_bars, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"\x00garbage, not a torch file" * 10)
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    trainer = Trainer(model, guide, checkpoint=checkpoint, progress=False)
    with pytest.raises(PyroDGMError) as raised:
        trainer.fit(small_bars, 2, resume=True)
    assert str(checkpoint) in str(raised.value) and "corrupt" in str(raised.value)
    torch.save({"something": "else"}, checkpoint)
    with pytest.raises(PyroDGMError, match="not a pyro_dgm checkpoint"):
        load_checkpoint(checkpoint)
    with pytest.raises(PyroDGMError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(PyroDGMError, match="checkpoint path"):
        Trainer(model, guide, progress=False).fit(small_bars, 1, resume=True)


def test_checkpoint_of_another_architecture_is_refused(small_bars, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    Trainer(model, guide, checkpoint=checkpoint, batch_size=100, progress=False).fit(small_bars, 1)
    for name, hyper in (("vae", {"hidden": 12, "z_dim": 2}), ("sbvae", {"hidden": 8})):
        model, guide = build(name, small_bars, **hyper)
        trainer = Trainer(model, guide, checkpoint=checkpoint, progress=False)
        with pytest.raises(PyroDGMError, match="does not fit"):
            trainer.fit(small_bars, 2, resume=True)


# --------------------------------------------------------------------------- the NaN stop


def _model_that_diverges_at_call(bad_call, bad_value):
    """Observation loc = w until the model's ``bad_call``-th run, then ``bad_value``."""
    calls = {"n": 0}

    def model(x):
        w = pyro.param("w", torch.zeros(X_DIM))
        calls["n"] += 1
        loc = torch.where(torch.tensor(calls["n"] >= bad_call), torch.tensor(bad_value),
                          w.expand(x.shape))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(loc, 1.0, validate_args=False).to_event(1), obs=x)

    def guide(x):
        pass

    return model, guide, calls


@pytest.mark.filterwarnings("ignore:Encountered NaN")
@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, bad_value):
    # 2 steps per epoch; the Trainer runs the programs once before its first step, so model
    # call 6 is step 5, the first step of epoch 3
    data = load_dataset("bars", "train", n_train=100)
    model, guide, calls = _model_that_diverges_at_call(6, bad_value)
    checkpoint = tmp_path / "checkpoint.pt"
    trainer = Trainer(model, guide, "elbo", lr=0.1, batch_size=50, checkpoint=checkpoint,
                      progress=False)
    with pytest.raises(TrainingDiverged) as raised:
        trainer.fit(data, epochs=10)
    assert isinstance(raised.value, PyroDGMError)
    message = str(raised.value)
    assert "epoch 3" in message and str(checkpoint) in message and "(epoch 2)" in message
    assert calls["n"] == 6
    assert len(trainer.history) == 2
    kept = load_checkpoint(checkpoint)
    assert kept["history"] == trainer.history
    assert all(math.isfinite(h["loss"]) for h in kept["history"])
    # the kept parameters are the good ones of epoch 2
    assert torch.isfinite(kept["param_store"]["params"]["w"]).all()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]


@pytest.mark.filterwarnings("ignore:Encountered NaN")
def test_nan_loss_without_checkpoint_says_so():
    data = load_dataset("bars", "train", n_train=100)
    model, guide, _ = _model_that_diverges_at_call(1, float("nan"))
    with pytest.raises(TrainingDiverged, match="epoch 1.*no checkpoint was written"):
        Trainer(model, guide, batch_size=50, progress=False).fit(data, epochs=2)


def test_nan_parameters_stop_training_as_divergence(tmp_path):
    data = load_dataset("bars", "train", n_train=100)
    calls = {"n": 0}

    def model(x):
        w = pyro.param("w", torch.zeros(X_DIM))
        calls["n"] += 1
        loc = w * float("nan") if calls["n"] >= 3 else w
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(loc.expand(x.shape), 1.0).to_event(1), obs=x)

    with pytest.raises(TrainingDiverged):
        Trainer(model, lambda x: None, batch_size=50, checkpoint=tmp_path / "c.pt",
                progress=False).fit(data, epochs=3)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("kwargs,words", [
    ({"batch_size": 0}, "batch size"),
    ({"batch_size": -5}, "batch size"),
    ({"lr": 0.0}, "learning rate"),
    ({"lr": -1e-3}, "learning rate"),
    ({"lr": float("nan")}, "learning rate"),
    ({"device": "tpu"}, "unknown device"),
    ({"objective": "nope"}, "unknown objective"),
    ({"objective_options": {"particles": 0}}, "particles"),
    ({"objective_options": {"alpha": 0.5}}, "alpha"),
])
def test_trainer_arguments_are_checked(kwargs, words):
    with pytest.raises(PyroDGMError, match=words):
        Trainer(lambda x: None, lambda x: None, progress=False, **kwargs)


def test_negative_epochs_are_refused(small_bars):
    model, guide = param_only_functions()
    with pytest.raises(PyroDGMError, match="epochs"):
        Trainer(model, guide, progress=False).fit(small_bars, -1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(PyroDGMError, match="CUDA"):
        Trainer(lambda x: None, lambda x: None, device="cuda", progress=False)


# --------------------------------------------------------------------------- the seconds budget


@pytest.fixture
def steady_clock(monkeypatch):
    """Every step takes exactly 0.25 s of the Trainer's clock, so budgets are deterministic."""
    now = {"t": 0.0}

    def perf_counter():
        now["t"] += 0.25
        return now["t"]

    monkeypatch.setattr(trainer_module.time, "perf_counter", perf_counter)


def _seconds_run(data, budgets, checkpoint=None, resume_each=False):
    """Parameters, history and counters after ``fit(seconds=b)`` for each budget in turn
    (with ``resume_each``, each by a fresh Trainer resuming from ``checkpoint``)."""
    trainer = None
    for budget in budgets:
        if trainer is None or resume_each:
            model, guide = param_only_functions()
            trainer = Trainer(model, guide, lr=1e-2, batch_size=30, seed=1, progress=False,
                              checkpoint=checkpoint)
        trainer.fit(data, seconds=budget, resume=resume_each and budget != budgets[0])
    store = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}
    return store, trainer.history, (trainer.steps, trainer.examples, trainer.train_seconds)


def test_seconds_budgets_continue_mid_epoch_on_the_same_batches(small_bars, steady_clock):
    # 200 examples in batches of 30: 7 steps an epoch; 2.5 s = 10 steps, stopping mid-epoch 2
    once = _seconds_run(small_bars, [5.0])
    twice = _seconds_run(small_bars, [2.5, 5.0])
    steps, examples, seconds = once[2]
    assert steps == 20 and seconds == pytest.approx(5.0)
    assert examples == 2 * 200 + 6 * 30               # two epochs and 6 batches of the third
    assert twice[2] == once[2]
    assert [h["epoch"] for h in once[1]] == [1, 2] and once[1] == twice[1]
    assert once[1][0]["seconds"] == pytest.approx(7 * 0.25)
    for name in once[0]:
        assert torch.equal(once[0][name], twice[0][name]), name


def test_a_checkpoint_written_mid_epoch_resumes_exactly(small_bars, steady_clock, tmp_path):
    once = _seconds_run(small_bars, [5.0])
    resumed = _seconds_run(small_bars, [2.5, 5.0], checkpoint=tmp_path / "c.pt", resume_each=True)
    assert resumed[2] == once[2] and resumed[1] == once[1]
    for name in once[0]:
        assert torch.allclose(once[0][name], resumed[0][name], atol=1e-6), name


def test_epochs_and_seconds_stop_at_whichever_comes_first(small_bars, steady_clock):
    model, guide = param_only_functions()
    trainer = Trainer(model, guide, batch_size=50, progress=False)
    trainer.fit(small_bars, epochs=3, seconds=1.5)   # 4 steps an epoch, 0.25 s each
    assert trainer.steps == 6 and len(trainer.history) == 1
    trainer.fit(small_bars, epochs=2, seconds=100.0)
    assert trainer.steps == 8 and len(trainer.history) == 2
    with pytest.raises(PyroDGMError, match="budget"):
        trainer.fit(small_bars)


@pytest.mark.filterwarnings("ignore:Encountered NaN")
def test_nan_loss_stops_a_seconds_budget_too():
    data = load_dataset("bars", "train", n_train=100)
    model, guide, _ = _model_that_diverges_at_call(4, float("nan"))
    trainer = Trainer(model, guide, "elbo", lr=0.1, batch_size=50, progress=False)
    with pytest.raises(TrainingDiverged, match="epoch 2"):
        trainer.fit(data, seconds=60.0)
    assert len(trainer.history) == 1 and trainer.steps == 3
    assert torch.isfinite(pyro.param("w")).all()     # the bad step was not applied


def test_version_1_checkpoints_are_refused_in_one_sentence(small_bars, tmp_path):
    checkpoint = tmp_path / "old.pt"
    torch.save({"version": 1, "history": [], "modules": {}, "param_store": {}, "optim": {},
                "rng": {}}, checkpoint)
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    trainer = Trainer(model, guide, checkpoint=checkpoint, progress=False)
    with pytest.raises(PyroDGMError) as raised:
        trainer.fit(small_bars, 1, resume=True)
    message = str(raised.value)
    assert "older pyro_dgm" in message and "retrain" in message and "\n" not in message


def test_the_loss_module_holds_the_programs_and_a_torch_optimizer_steps(small_bars):
    model, guide = build("vae", small_bars, hidden=8, z_dim=2)
    trainer = Trainer(model, guide, progress=False, clip_norm=1.0)
    assert trainer.loss.model is model and trainer.loss.guide is guide
    trainer.fit(small_bars, 1)
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    trained = {id(p) for p in trainer.optimizer.param_groups[0]["params"]}
    assert trained == {id(p) for p in (*model.parameters(), *guide.parameters())}
