"""Experiment tracking (``pyro-dgm train ... --log tensorboard,mlflow``): what a tracker holds
is read back and compared with ``metrics.json``, the run folder's source of truth.

TensorBoard is in the ``test`` extra; MLflow is not (it is large), so its tests skip where it
is not installed (``pip install 'pyro-dgm[mlflow]'``).
"""

import json
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

from pyro_dgm.cli import main
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.tracking import TRACKERS, Tracker, check_trackers, metric_scalars

SETTINGS = {"n_train": 200, "n_test": 50, "hidden": 16, "z_dim": 2}
TINY = ["vae", "--dataset", "bars", "--quiet", "--threads", "1",
        *[arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")]]
STEPS_PER_EPOCH = 2  # 200 examples, batches of 100


def train(out: Path, *arguments: str) -> int:
    return main(["train", *TINY, "--out", str(out), *arguments])


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def single_error_line(capsys, status: int) -> str:
    """Status 2 and exactly one line, ``error: ...``, on stderr; return it."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), captured
    assert "Traceback" not in captured.err
    return lines[0]


def tensorboard_events(out: Path):
    """The run's TensorBoard events, every one of them kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"),
                              size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def scalars(events, tag: str) -> dict[int, float]:
    return {event.step: event.value for event in events.Scalars(tag)}


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory):
    pytest.importorskip("tensorboard")
    out = tmp_path_factory.mktemp("tensorboard") / "run"
    assert train(out, "--epochs", "2", "--log", "tensorboard") == 0
    return out


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory):
    pytest.importorskip("mlflow", reason="MLflow is not installed: pip install 'pyro-dgm[mlflow]'")
    out = tmp_path_factory.mktemp("mlflow") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        assert train(out, "--epochs", "2", "--log", "mlflow") == 0
    return out


def mlflow_runs(out: Path):
    """The client of the run folder's local MLflow store and its runs, oldest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pyro-dgm")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return client, runs


# -- TensorBoard --------------------------------------------------------------------------
def test_tensorboard_scalars_equal_metrics_json(tensorboard_run):
    metrics = read(tensorboard_run, "metrics.json")
    events = tensorboard_events(tensorboard_run)
    # event files hold 32-bit floats
    assert scalars(events, "train/loss") == {
        entry["epoch"]: pytest.approx(entry["loss"], rel=1e-6) for entry in metrics["history"]}
    assert scalars(events, "metrics/test_elbo") == {2: pytest.approx(metrics["test_elbo"], rel=1e-6)}
    for tag, value in metric_scalars(metrics).items():
        assert scalars(events, tag) == {2: pytest.approx(value, rel=1e-6)}, tag
    step_losses = scalars(events, "train/step_loss")
    assert sorted(step_losses) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    first_epoch = [step_losses[step] for step in range(1, STEPS_PER_EPOCH + 1)]
    assert sum(first_epoch) / STEPS_PER_EPOCH == pytest.approx(metrics["history"][0]["loss"],
                                                               rel=1e-6)


def test_tensorboard_holds_the_config_and_the_figures(tensorboard_run):
    events = tensorboard_events(tensorboard_run)
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text) == read(tensorboard_run, "config.json")
    figures = {path.stem for path in tensorboard_run.glob("*.png")}
    assert "samples" in figures and set(events.Tags()["images"]) == figures
    height, width, _ = imread(tensorboard_run / "samples.png").shape
    image = events.Images("samples")[0]
    assert (image.height, image.width) == (height, width)


# -- MLflow -------------------------------------------------------------------------------
def test_mlflow_metrics_equal_metrics_json(mlflow_run):
    metrics = read(mlflow_run, "metrics.json")
    client, runs = mlflow_runs(mlflow_run)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run_id = runs[0].info.run_id
    history = client.get_metric_history(run_id, "train/loss")
    assert {m.step: m.value for m in history} == {e["epoch"]: e["loss"]
                                                 for e in metrics["history"]}
    assert runs[0].data.metrics["metrics/test_elbo"] == metrics["test_elbo"]
    assert {key: runs[0].data.metrics[key] for key in metric_scalars(metrics)} == \
        metric_scalars(metrics)
    steps = client.get_metric_history(run_id, "train/step_loss")
    assert sorted(m.step for m in steps) == list(range(1, 2 * STEPS_PER_EPOCH + 1))


def test_mlflow_holds_the_config_and_the_figures(mlflow_run):
    client, runs = mlflow_runs(mlflow_run)
    run = runs[0]
    config = read(mlflow_run, "config.json")
    assert run.data.params["hyper.z_dim"] == "2" and run.data.params["model"] == "vae"
    assert run.data.tags["pyro_dgm.run_folder"] == str(mlflow_run.resolve())
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "figures"} <= artifacts
    figures = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {path.name for path in mlflow_run.glob("*.png")}
    local = Path(client.download_artifacts(run.info.run_id, "config.json", str(mlflow_run.parent)))
    assert json.loads(local.read_text()) == config


def test_an_mlflow_store_that_cannot_be_used_is_one_sentence(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is not installed: pip install 'pyro-dgm[mlflow]'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://nowhere")
    line = single_error_line(capsys, train(tmp_path / "run", "--epochs", "1", "--log", "mlflow"))
    assert "could not start logging to mlflow" in line and "bogus://nowhere" in line
    assert not (tmp_path / "run" / "config.json").exists()


# -- choosing trackers --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
def test_a_missing_extra_is_one_sentence_before_anything_is_written(name, tmp_path, capsys,
                                                                    monkeypatch):
    monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    out = tmp_path / "run"
    line = single_error_line(capsys, train(out, "--epochs", "1", "--log", f"tensorboard,{name}"))
    assert f"pip install 'pyro-dgm[{name}]'" in line
    assert not out.exists()


def test_an_unknown_tracker_lists_the_known_ones(tmp_path, capsys):
    out = tmp_path / "run"
    line = single_error_line(capsys, train(out, "--epochs", "1", "--log", "wandb"))
    assert "'wandb'" in line and "mlflow, tensorboard" in line
    assert not out.exists()


def test_trackers_are_named_once_and_need_a_run_folder():
    assert check_trackers(["tensorboard", "tensorboard"]) == ("tensorboard",)
    assert set(TRACKERS) == {"tensorboard", "mlflow"}
    config = make_config("vae", epochs=1, settings=SETTINGS)
    with pytest.raises(PyroDGMError, match="run folder"):
        Experiment(config, out=None, trackers=["tensorboard"])


def test_resume_may_change_the_trackers(tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    config = read(out, "config.json")
    assert not (out / "tensorboard").exists()
    assert train(out, "--epochs", "2", "--resume", "--log", "tensorboard") == 0
    assert read(out, "config.json") == {**config, "epochs": 2}  # --log is no run setting
    metrics = read(out, "metrics.json")
    events = tensorboard_events(out)
    # only what this command trained: the second epoch and its steps
    assert scalars(events, "train/loss") == {2: pytest.approx(metrics["history"][1]["loss"],
                                                              rel=1e-6)}
    assert sorted(scalars(events, "train/step_loss")) == [3, 4]
    assert scalars(events, "metrics/test_elbo") == {2: pytest.approx(metrics["test_elbo"],
                                                                     rel=1e-6)}


def test_overwrite_starts_the_tracker_outputs_anew(tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    assert train(out, "--epochs", "1", "--log", "tensorboard") == 0
    assert train(out, "--epochs", "1", "--overwrite", "--log", "tensorboard") == 0
    assert len(list((out / "tensorboard").iterdir())) == 1


class RecordingTracker(Tracker):
    """Keeps every call, in order (the last one made is in ``RecordingTracker.calls``)."""

    name = "recording"
    calls: list = []

    def __init__(self, out):
        super().__init__(out)
        RecordingTracker.calls = self.calls = []

    def log_config(self, config):
        self.calls.append(("config", config))

    def log_scalars(self, scalars, step):
        self.calls.append(("scalars", scalars, step))

    def log_image(self, name, path):
        self.calls.append(("image", name))

    def close(self, failed=False):
        self.calls.append(("close", failed))


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setitem(TRACKERS, "recording", RecordingTracker)
    return RecordingTracker


def test_an_experiment_logs_config_first_then_losses_metrics_figures(recording, tmp_path):
    config = make_config("vae", epochs=1, settings=SETTINGS)
    metrics = Experiment(config, out=tmp_path / "run", trackers=["recording"]).run()
    calls = recording.calls
    assert calls[0] == ("config", config) and calls[-1] == ("close", False)
    scalars = [call[1:] for call in calls if call[0] == "scalars"]
    assert [step for _, step in scalars] == [1, 2, 1, 1]  # two steps, the epoch, the metrics
    assert scalars[2] == ({"train/loss": metrics["history"][0]["loss"]}, 1)
    assert scalars[3] == (metric_scalars(metrics), 1)
    assert {"metrics/test_elbo", "metrics/n_train"} <= set(scalars[3][0])
    images = [call[1] for call in calls if call[0] == "image"]
    assert "samples" in images and calls.index(("image", images[0])) > calls.index(
        ("scalars", *scalars[3]))


def test_a_run_stopped_by_an_error_closes_its_trackers_as_failed(recording, tmp_path):
    experiment = Experiment(make_config("vae", epochs=2, settings=SETTINGS), out=tmp_path / "run",
                            trackers=["recording"])
    trainer = experiment.make_trainer()

    def interrupt(trainer, loss):
        if trainer.steps == 3:
            raise KeyboardInterrupt

    trainer.on_step.append(interrupt)
    with pytest.raises(KeyboardInterrupt):
        experiment.run()
    assert recording.calls[-1] == ("close", True)
    assert experiment.tracker.trackers == []  # dropped once the run ended


# -- the Trainer's hooks ------------------------------------------------------------------
def test_trainer_hooks_see_every_step_and_epoch():
    experiment = Experiment(make_config("vae", epochs=2, settings=SETTINGS))
    trainer = experiment.make_trainer()
    steps, epochs = [], []
    trainer.on_step.append(lambda t, loss: steps.append((t.steps, loss)))
    trainer.on_epoch.append(lambda t, entry: epochs.append(entry))
    history = trainer.fit(experiment.data[0], 2)
    assert epochs == history
    assert [step for step, _ in steps] == list(range(1, trainer.steps + 1))
    assert trainer.steps == 2 * STEPS_PER_EPOCH
    first_epoch = [loss for _, loss in steps[:STEPS_PER_EPOCH]]
    assert sum(first_epoch) / STEPS_PER_EPOCH == pytest.approx(history[0]["loss"])
