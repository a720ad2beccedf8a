"""Experiment tracking: a run's configuration, scalars and figures mirrored to TensorBoard or
MLflow (``pyro-dgm train ... --log tensorboard,mlflow``).

The run folder's JSON files stay the source of truth; a tracker only mirrors them, into the run
folder too unless told otherwise:

- ``tensorboard``: event files in ``RUN/tensorboard/`` (``tensorboard --logdir RUN``), through
  ``torch.utils.tensorboard.SummaryWriter``; needs ``pip install 'pyro-dgm[tensorboard]'``.
- ``mlflow``: a local store in the run folder, ``RUN/mlflow.db`` with artifacts in
  ``RUN/mlartifacts/`` (``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db``), or the
  server of ``$MLFLOW_TRACKING_URI`` where it is set; the experiment is
  ``$MLFLOW_EXPERIMENT_NAME``, else ``pyro-dgm``; one MLflow run per ``train`` command. Needs
  ``pip install 'pyro-dgm[mlflow]'``.

What an :class:`~pyro_dgm.experiment.Experiment` logs, by name (each equal to its value in
``metrics.json``):

- ``train/step_loss`` after every optimizer step (step = the Trainer's step count), the
  step's loss per example;
- ``train/loss`` after every epoch (step = the epoch), ``metrics.json``'s ``history`` loss;
- ``metrics/KEY`` at the end (step = the epochs done), every number of ``metrics.json``
  outside ``history``, ``hyper`` and ``data`` (nested ones as ``metrics/nll.value``);
- the configuration (``config.json``) at the start, and the run folder's PNG figures at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import shutil
import time
from pathlib import Path

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.registry import Registry


class Tracker:
    """Where a run is mirrored. A subclass names the module it needs (``requires``), the extra
    of pyro-dgm that installs it (``extra``) and what it writes into the run folder
    (``outputs``), and is built on the run folder."""

    name = requires = extra = ""
    outputs: tuple[str, ...] = ()

    @classmethod
    def check_installed(cls) -> None:
        """Refuse, in one sentence naming the install command, a tracker whose package is missing."""
        if not cls.requires:
            return
        try:
            importlib.import_module(cls.requires)
        except ImportError:
            raise PyroDGMError(f"logging to {cls.name} needs the {cls.requires} package; install "
                               f"it with: pip install 'pyro-dgm[{cls.extra}]'") from None

    def __init__(self, out: Path):
        self.out = Path(out)

    def log_config(self, config: dict) -> None:
        """The run's configuration (the contents of ``config.json``)."""
        raise NotImplementedError

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        """Named numbers at ``step``."""
        raise NotImplementedError

    def log_image(self, name: str, path: Path) -> None:
        """The image file ``path`` (a PNG figure) under ``name``."""
        raise NotImplementedError

    def close(self, failed: bool = False) -> None:
        """Write out what is buffered and release the tracker; ``failed``: the run stopped on
        an error or an interruption."""
        raise NotImplementedError


TRACKERS: Registry[type[Tracker]] = Registry("tracker")


def register(tracker: type[Tracker]) -> type[Tracker]:
    """Add a :class:`Tracker` subclass to :data:`TRACKERS` under its ``name`` (a decorator)."""
    return TRACKERS.register(tracker.name, tracker)


@register
class TensorBoardTracker(Tracker):
    """Event files in ``RUN/tensorboard/``: scalars, the configuration as text, figures as images."""

    name = requires = extra = "tensorboard"
    outputs = ("tensorboard",)

    def __init__(self, out: Path):
        from torch.utils.tensorboard import SummaryWriter

        super().__init__(out)
        self.writer = SummaryWriter(log_dir=str(self.out / "tensorboard"))

    def log_config(self, config: dict) -> None:
        text = json.dumps(config, indent=2)
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()))

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, global_step=step)

    def log_image(self, name: str, path: Path) -> None:
        from matplotlib.image import imread

        pixels = imread(path)  # height x width x RGB(A)
        self.writer.add_image(name, pixels[..., :3], dataformats="HWC")

    def close(self, failed: bool = False) -> None:
        self.writer.close()


@register
class MLflowTracker(Tracker):
    """One MLflow run: the configuration as flattened parameters and ``config.json`` artifact,
    scalars as metrics (sent in batches), figures as artifacts under ``figures/``."""

    name = requires = extra = "mlflow"
    outputs = ("mlflow.db", "mlartifacts")
    BATCH = 1000  # the most metrics MLflow takes in one call

    def __init__(self, out: Path):
        from mlflow.tracking import MlflowClient

        super().__init__(out)
        local = not os.environ.get("MLFLOW_TRACKING_URI")
        self.client = MlflowClient(f"sqlite:///{(self.out / 'mlflow.db').resolve()}"
                                   if local else None)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "pyro-dgm"
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (experiment.experiment_id if experiment is not None else
                         self.client.create_experiment(
                             name, artifact_location=((self.out / "mlartifacts").resolve().as_uri()
                                                      if local else None)))
        self.run_id = self.client.create_run(experiment_id, run_name=self.out.resolve().name,
                                             tags={"pyro_dgm.run_folder": str(self.out.resolve())}
                                             ).info.run_id
        self._metrics = []  # not sent yet

    def log_config(self, config: dict) -> None:
        from mlflow.entities import Param

        params = [Param(key, str(value)) for key, value in flatten(config).items()]
        self.client.log_batch(self.run_id, params=params)
        self.client.log_dict(self.run_id, config, "config.json")

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._metrics += [Metric(name, value, now, step) for name, value in scalars.items()]
        if len(self._metrics) >= self.BATCH:
            self._send()

    def _send(self) -> None:
        for start in range(0, len(self._metrics), self.BATCH):
            self.client.log_batch(self.run_id, metrics=self._metrics[start:start + self.BATCH])
        self._metrics = []

    def log_image(self, name: str, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path="figures")

    def close(self, failed: bool = False) -> None:
        self._send()
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


def flatten(values: dict, prefix: str = "") -> dict:
    """``{"hyper": {"z_dim": 2}, "lr": 0.1}`` -> ``{"hyper.z_dim": 2, "lr": 0.1}``."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metric_scalars(metrics: dict) -> dict[str, float]:
    """The numbers of ``metrics.json`` that a tracker shows as ``metrics/KEY``: every finite
    number outside ``history``, ``hyper`` and ``data``, nested ones flattened."""
    held_out = {k: v for k, v in metrics.items() if k not in ("history", "hyper", "data")}
    return {f"metrics/{key}": value for key, value in flatten(held_out).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def check_trackers(names) -> tuple[str, ...]:
    """``names`` as a tuple without repeats, once every one is a known tracker whose package is
    installed; refused in one sentence otherwise (nothing is written)."""
    names = tuple(dict.fromkeys(names))
    for name in names:
        TRACKERS[name].check_installed()
    return names


class TrackerGroup:
    """Several trackers as one: each call goes to every tracker (none: nothing happens)."""

    def __init__(self, trackers=()):
        self.trackers = list(trackers)

    def log_config(self, config: dict) -> None:
        for tracker in self.trackers:
            tracker.log_config(config)

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log_scalars(scalars, step)

    def log_image(self, name: str, path: Path) -> None:
        for tracker in self.trackers:
            tracker.log_image(name, path)


def remove_tracker_outputs(out: Path) -> None:
    """Delete what any tracker wrote into the run folder ``out`` (a run started anew)."""
    for tracker in TRACKERS.values():
        for name in tracker.outputs:
            path = Path(out) / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def start(name: str, out: Path) -> Tracker:
    """The tracker ``name`` on the run folder ``out``, or one sentence saying why it cannot start
    (e.g. a ``$MLFLOW_TRACKING_URI`` that MLflow cannot use)."""
    try:
        return TRACKERS[name](out)
    except Exception as error:  # each tracking library raises its own types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PyroDGMError(f"could not start logging to {name}: {reason}") from None


@contextlib.contextmanager
def open_trackers(names, out: Path):
    """The trackers ``names`` opened on the run folder ``out``, as one :class:`TrackerGroup`;
    each is closed on the way out, told whether an exception (an error, Ctrl-C) ended the run."""
    with contextlib.ExitStack() as stack:
        opened = []
        for name in names:
            tracker = start(name, out)
            stack.push(lambda kind, error, traceback, tracker=tracker:
                       tracker.close(failed=kind is not None))
            opened.append(tracker)
        yield TrackerGroup(opened)
