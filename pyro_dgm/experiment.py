"""The experiment layer: one object owns a run, from its configuration to its folder.

An :class:`Experiment` is made from a configuration (the keys of ``config.json``) and does,
in this order::

    validate -> load data -> seed -> build model and guide -> train (epochs or seconds)
             -> held-out metrics -> figures -> run folder

It also restores a trained run from its folder, evaluates it and samples from it. The command
line's ``train``, ``evaluate`` and ``sample`` are thin calls into it, and ``compare`` is a loop
over experiments that share one data draw and one budget (:mod:`pyro_dgm.compare`).

>>> config = make_config("vae", dataset="bars", epochs=5, settings={"z_dim": 2})
>>> experiment = Experiment(config, out="runs/vae-bars")
>>> metrics = experiment.run()                 # writes config.json, checkpoint.pt, metrics.json, PNGs
>>> run = load_run("runs/vae-bars")            # config, model, guide, train, test, parameters loaded

**Seeding.** The seed is set before anything random is built: two experiments with the same
configuration start from the same weights, see the same batches and write the same
``metrics.json`` (timings aside).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyro
import torch

from pyro_dgm.data import Dataset, dataset_options, load_dataset, model_takes
from pyro_dgm.data.registry import parse_dataset_name
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer, get_objective, load_checkpoint
from pyro_dgm.infer import distributed
from pyro_dgm.infer.ais_hmc import check_ais_options
from pyro_dgm.infer.distributed import sharded_evaluation, writes_files
from pyro_dgm.infer.estimators import progress_bars
from pyro_dgm.infer.objectives import check_objective_options, refuse_unless
from pyro_dgm.infer.trainer import PRECISIONS, resolve_device
from pyro_dgm.tracking import (
    TrackerGroup,
    check_trackers,
    metric_scalars,
    open_trackers,
    remove_tracker_outputs,
)
from pyro_dgm.zoo import ZooEntry, get_entry

CONFIG, METRICS, EVAL, CHECKPOINT = "config.json", "metrics.json", "eval.json", "checkpoint.pt"
# keys of config.json that must be present for a run to be rebuilt
CONFIG_KEYS = ("model", "dataset", "objective", "epochs", "batch_size", "lr", "seed", "device",
               "data_dir", "hyper", "objective_options", "data_options")


# -- configuration ------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A setting's value as JSON where it parses (``20``, ``1e-3``, ``[200, 200]``, ``true``),
    else the string itself (``dynamic``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_settings(pairs: list[str]) -> dict:
    """``["z_dim=20", "binarize=dynamic"]`` -> ``{"z_dim": 20, "binarize": "dynamic"}``."""
    settings = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise PyroDGMError(f"--set takes key=value, got {pair!r}")
        settings[key] = parse_value(text)
    return settings


def check_dataset(entry: ZooEntry, dataset: str) -> None:
    """Refuse a data set that does not exist or that the model is not set up for."""
    if not model_takes(entry.datasets, dataset):  # an unknown name is refused here too
        raise PyroDGMError(f"model {entry.name!r} is not set up for data set {dataset!r}; "
                           f"it takes {', '.join(entry.datasets)}")


def check_objective(entry: ZooEntry, objective: str) -> None:
    """Refuse an objective that does not exist or that the zoo does not list for the model."""
    get_objective(objective)
    if objective not in entry.objectives:
        raise PyroDGMError(f"objective {objective!r} does not apply to model {entry.name!r}; "
                           f"it takes {', '.join(entry.objectives)}")


def split_settings(entry: ZooEntry, dataset: str, objective: str | None, settings: dict) -> dict:
    """Route settings to the model's hyper-parameters, the objective's options, or the data set.

    With ``objective=None`` (a comparison of several objectives) no objective option is taken;
    those go in each objective's spec instead. An unknown key lists the valid ones.
    """
    objective_keys = get_objective(objective).options if objective is not None else {}
    data_keys = {"binarize", *dataset_options(dataset)}
    routed = {"hyper": {}, "objective_options": {}, "data_options": {}}
    for key, value in settings.items():
        if key in entry.defaults:
            routed["hyper"][key] = value
        elif key in objective_keys:
            routed["objective_options"][key] = value
        elif key in data_keys:
            routed["data_options"][key] = value
        else:
            valid = sorted({*entry.defaults, *objective_keys, *data_keys})
            hint = ("" if objective is not None else
                    " (objective options go in the spec, e.g. iwae:particles=5)")
            raise PyroDGMError(f"unknown setting {key!r} for model {entry.name!r}"
                               + (f", objective {objective!r}" if objective else "")
                               + f" and data set {dataset!r}; valid: {', '.join(valid)}{hint}")
    return routed


def validate_config(config: dict) -> dict:
    """Refuse, in one sentence, a configuration that could not train; return it unchanged.

    Run before anything is written, so a bad value never replaces a good run's ``config.json``.
    """
    entry = get_entry(config["model"])
    check_objective(entry, config["objective"])
    check_dataset(entry, config["dataset"])
    entry.hyper(config["hyper"])
    _whole(config["batch_size"], "the batch size", minimum=1)
    _whole(config["epochs"], "the number of epochs", minimum=0)
    _whole(config["seed"], "the seed", minimum=None)
    lr = config["lr"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise PyroDGMError(f"the learning rate must be a positive finite number, got {lr!r}")
    seconds = config.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not 0 < seconds < math.inf):
        raise PyroDGMError(f"--seconds must be a positive finite number, got {seconds!r}")
    resolve_device(config["device"])
    precision = config.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise PyroDGMError(f"unknown precision {precision!r}; expected one of "
                           f"{', '.join(PRECISIONS)}")
    if precision == "bf16":
        refuse_unless(config["objective"], "bf16")
    check_objective_options(config["objective"], config["objective_options"])
    return config


def _whole(value, what: str, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (
            minimum is not None and value < minimum):
        bound = "" if minimum is None else (" of at least 1" if minimum == 1 else
                                            " of zero or more")
        raise PyroDGMError(f"{what} must be a whole number{bound}, got {value!r}")


def make_config(model: str, *, dataset: str = "bars", objective: str | None = None,
                epochs: int | None = None, seconds: float | None = None,
                batch_size: int | None = None, lr: float | None = None, seed: int = 0,
                device: str = "cpu", data_dir: str | None = None,
                settings: dict | None = None, precision: str = "fp32") -> dict:
    """A complete, validated run configuration (the keys of ``config.json``).

    Unset values take the zoo entry's published defaults; ``settings`` mixes hyper-parameters,
    objective options and data options, routed by :func:`split_settings`.
    """
    entry = get_entry(model)
    objective = objective or entry.objective
    check_objective(entry, objective)
    check_dataset(entry, dataset)
    registered, path = parse_dataset_name(dataset)
    if path is not None:  # the user's own files: a run folder must find them from anywhere
        dataset = f"{registered}:{Path(path).expanduser().resolve()}"
    routed = split_settings(entry, dataset, objective, settings or {})
    training = entry.training
    return validate_config({
        "model": entry.name, "dataset": dataset, "objective": objective,
        "epochs": training["epochs"] if epochs is None else epochs,
        "seconds": seconds,
        "batch_size": training["batch_size"] if batch_size is None else batch_size,
        "lr": training["lr"] if lr is None else lr, "seed": seed, "device": device,
        "precision": precision,
        "data_dir": None if data_dir is None else str(data_dir),
        "hyper": entry.hyper(routed["hyper"]),
        "objective_options": routed["objective_options"], "data_options": routed["data_options"],
    })


# keys a config file may hold: those of config.json (``seconds`` too); the three tables
# hold hyper-parameters, objective options and data options
CONFIG_FILE_KEYS = (*CONFIG_KEYS, "seconds", "precision")
SETTING_TABLES = ("hyper", "objective_options", "data_options")


def read_config_file(path: str | Path) -> dict:
    """A run description from a ``.json``, ``.toml`` or ``.yaml`` file whose keys are those of
    ``config.json`` (so the ``config.json`` of any run folder is one); keys may be left out.

    An unknown key, a file that does not parse, or a table that is not a table is refused in
    one sentence. For example, ``run.toml``::

        model = "vae"
        dataset = "mnist"
        epochs = 60
        [hyper]
        z_dim = 20
    """
    path = Path(path)
    if not path.is_file():
        raise PyroDGMError(f"config file {path} does not exist")
    kind = {".json": "JSON", ".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}.get(
        path.suffix.lower())
    if kind is None:
        raise PyroDGMError(f"config file {path} must end in .json, .toml, .yaml or .yml")
    values = _parse_config_text(path.read_text(), kind, path)
    if not isinstance(values, dict):
        raise PyroDGMError(f"config file {path} must hold a table of keys, not "
                           f"{type(values).__name__}")
    unknown = sorted(set(values) - set(CONFIG_FILE_KEYS))
    if unknown:
        raise PyroDGMError(f"config file {path} has unknown key(s) {', '.join(unknown)}; valid "
                           f"keys are: {', '.join(CONFIG_FILE_KEYS)}")
    for table in SETTING_TABLES:
        if not isinstance(values.get(table, {}), dict):
            raise PyroDGMError(f"config file {path}: {table} must be a table of name = value")
    return values


def _parse_config_text(text: str, kind: str, path: Path) -> Any:
    if kind == "JSON":
        parse, errors = json.loads, (ValueError,)
    elif kind == "TOML":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise PyroDGMError("reading TOML needs Python 3.11 or later; use a .json or .yaml "
                               "config file") from None
        parse, errors = tomllib.loads, (ValueError,)
    else:
        try:
            import yaml
        except ImportError:
            raise PyroDGMError("reading YAML needs PyYAML: pip install pyyaml") from None
        parse, errors = yaml.safe_load, (yaml.YAMLError,)
    try:
        return parse(text)
    except errors as error:
        reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        raise PyroDGMError(f"config file {path} is not valid {kind} ({reason})") from None


def config_from_file(values: dict, settings: dict | None = None, **given) -> dict:
    """:func:`make_config` from a config file's ``values``, the ``given`` values that are not
    None (command-line flags) and ``settings`` (``--set``) overriding the file's."""
    merged = {key: values.get(key) for key in CONFIG_FILE_KEYS if key not in SETTING_TABLES}
    merged.update({key: value for key, value in given.items() if value is not None})
    model = merged.pop("model")
    if model is None:
        raise PyroDGMError("no model: name one (pyro-dgm train MODEL) or give the config file "
                           "a model key")
    file_settings = {key: value for table in SETTING_TABLES
                     for key, value in values.get(table, {}).items()}
    arguments = {key: value for key, value in merged.items() if value is not None}
    return make_config(model, settings={**file_settings, **(settings or {})}, **arguments)


def read_json(path: Path) -> dict:
    """A JSON file of a run folder, or one sentence saying why it cannot be read."""
    if not path.is_file():
        raise PyroDGMError(f"{path} does not exist: is {path.parent} a pyro-dgm run folder?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PyroDGMError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None


def write_json(data: dict, path: Path) -> None:
    """Write ``data`` atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise PyroDGMError(f"could not write {path} ({error.strerror or error})") from None


def read_config(run_dir: Path) -> dict:
    """The ``config.json`` of a run folder, with every key a run needs."""
    config = read_json(Path(run_dir) / CONFIG)
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise PyroDGMError(f"{Path(run_dir) / CONFIG} lacks the key(s) {', '.join(missing)}; "
                           f"it was not written by pyro-dgm train")
    config.setdefault("seconds", None)
    config.setdefault("precision", "fp32")  # runs written before --precision existed
    return config


# -- the run folder -----------------------------------------------------------------------
RUN_FILES = (CONFIG, CHECKPOINT, METRICS, EVAL)
# what may differ between a run's config.json and the flags that resume it
RESUMABLE = ("epochs", "seconds", "device", "precision")


def check_writable(out: Path) -> None:
    """Refuse, before anything is written, an ``out`` that cannot hold a run folder."""
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == out else f"lies under the file {parent}"
                raise PyroDGMError(f"the run folder {out} {where}; choose another --out")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise PyroDGMError(f"cannot write into {parent} (permission denied); "
                                   f"choose another --out")
            return


def holds_a_run(out: Path) -> bool:
    return any((out / name).exists() for name in (CONFIG, CHECKPOINT))


def check_resume(config: dict, given: dict, out: Path) -> dict:
    """``config`` (a run's) with ``given`` (the flags of a resume) applied where they may change
    it; a flag that contradicts the run is refused in one sentence."""
    for key, value in given.items():
        if value is None or key in RESUMABLE:
            continue
        current = config[key]
        if isinstance(current, dict):
            conflicts = {k: v for k, v in value.items() if current.get(k) != v}
            if conflicts:
                k, v = next(iter(conflicts.items()))
                raise PyroDGMError(f"the run in {out} was trained with {k}={current.get(k)!r}; "
                                   f"--resume cannot change it to {v!r} (only "
                                   f"{', '.join('--' + r for r in RESUMABLE)} can change)")
        elif current != value:
            raise PyroDGMError(f"the run in {out} was trained with {key} {current!r}; --resume "
                               f"cannot change it to {value!r} (only "
                               f"{', '.join('--' + r for r in RESUMABLE)} can change)")
    updates = {key: given[key] for key in RESUMABLE if given.get(key) is not None}
    if "epochs" in updates:
        updates.setdefault("seconds", None)
    elif updates.get("seconds") is not None:
        updates["epochs"] = config["epochs"]
    return validate_config({**config, **updates})


@contextlib.contextmanager
def locked(out: Path):
    """Hold the run folder's lock: a second process training into ``out`` is refused."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PyroDGMError(f"another process is training into {out}; wait for it or choose "
                               f"another --out") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the experiment -----------------------------------------------------------------------
class Experiment:
    """One run: configuration, data, model and guide, training, metrics, figures, folder.

    ``config`` holds the keys of ``config.json`` (see :func:`make_config`); ``out`` is the run
    folder (``None``: nothing is written). ``data`` gives an already loaded ``(train, test)``
    pair, e.g. the one draw shared by every run of a comparison. ``trackers`` names where
    :meth:`run` mirrors the run besides its folder (``"tensorboard"``, ``"mlflow"``: see
    :mod:`pyro_dgm.tracking`); they are not part of the configuration.
    """

    def __init__(self, config: dict, out: str | Path | None = None,
                 data: tuple[Dataset, Dataset] | None = None, trackers=()):
        self.config = config
        self.entry = get_entry(config["model"])
        self.out = Path(out) if out is not None else None
        self.trackers = check_trackers(trackers)
        if self.trackers and self.out is None:
            raise PyroDGMError("tracking a run needs its run folder (out)")
        self.tracker = TrackerGroup()  # the open trackers while run() runs
        self._data = data
        self.model = self.guide = self.trainer = None
        self.history: list[dict] = []

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str | None = None,
                 trackers=()) -> "Experiment":
        """The experiment of a run folder (its model and guide not built yet)."""
        config = read_config(Path(run_dir))
        if device is not None:
            config["device"] = device
        return cls(config, out=run_dir, trackers=trackers)

    # -- the parts ------------------------------------------------------------------------
    @property
    def data(self) -> tuple[Dataset, Dataset]:
        """The ``(train, test)`` data sets of the configuration, loaded once."""
        if self._data is None:
            options = dict(self.config["data_options"])
            binarize = options.pop("binarize", None)
            self._data = tuple(
                load_dataset(self.config["dataset"], split, data_dir=self.config["data_dir"],
                             binarize=binarize, seed=self.config["seed"], **options)
                for split in ("train", "test"))
        return self._data

    def build(self):
        """Seed, then build the model and guide: the same seed gives the same initial weights."""
        device = resolve_device(self.config["device"])
        train, _ = self.data
        pyro.clear_param_store()
        pyro.set_rng_seed(self.config["seed"])
        try:
            model, guide = self.entry.build(self.entry.hyper(self.config["hyper"]), train)
        except (ValueError, TypeError) as error:
            raise PyroDGMError(f"model {self.entry.name!r} cannot be built with "
                               f"{self.config['hyper']}: {error}") from None
        self.model, self.guide = model.to(device), guide.to(device)
        return self.model, self.guide

    def make_trainer(self, progress: bool = False) -> Trainer:
        """The Trainer of this run (building the model first if needed)."""
        if self.model is None:
            self.build()
        checkpoint = self.out / CHECKPOINT if self.out is not None else None
        self.trainer = Trainer(self.model, self.guide, self.config["objective"],
                               lr=self.config["lr"], batch_size=self.config["batch_size"],
                               seed=self.config["seed"], device=self.config["device"],
                               objective_options=self.config["objective_options"],
                               checkpoint=checkpoint, progress=progress,
                               precision=self.config.get("precision", "fp32"))
        self.trainer.on_step.append(lambda trainer, loss: self.tracker.log_scalars(
            {"train/step_loss": loss}, trainer.steps))
        self.trainer.on_epoch.append(lambda trainer, entry: self.tracker.log_scalars(
            {"train/loss": entry["loss"]}, entry["epoch"]))
        return self.trainer

    # -- training -------------------------------------------------------------------------
    def train(self, resume: bool = False, progress: bool = False) -> list[dict]:
        """Train for the configured budget (``seconds`` if set, else ``epochs``)."""
        trainer = self.trainer or self.make_trainer(progress)
        if self.out is not None and writes_files():
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.config, self.out / CONFIG)
        train, _ = self.data
        if self.config.get("seconds") is not None:
            self.history = trainer.fit(train, seconds=self.config["seconds"], resume=resume)
        else:
            self.history = trainer.fit(train, self.config["epochs"], resume=resume)
        return self.history

    def metrics(self, eval_samples: int = 100) -> dict:
        """The contents of ``metrics.json``: what was trained, for how long, held-out numbers."""
        train, test = self.data
        seconds = sum(h["seconds"] for h in self.history)
        pyro.set_rng_seed(self.config["seed"])
        with sharded_evaluation():  # shared out over the processes of a data-parallel run
            held_out = self.entry.test_metrics(self.model, self.guide, test, eval_samples)
        return {
            "model": self.config["model"], "dataset": self.config["dataset"],
            "objective": self.config["objective"], "epochs": len(self.history),
            "n_train": len(train), "n_test": len(test), "train_seconds": seconds,
            "seconds_per_epoch": seconds / max(len(self.history), 1),
            "history": self.history, **held_out, "hyper": self.config["hyper"],
            "data": {k: v for k, v in train.info.items() if isinstance(v, (str, int, float))},
        }

    def figures(self) -> None:
        """The model family's figures, into the run folder."""
        train, test = self.data
        self.entry.figures(self.model, self.guide, train, test, self.history, self._folder())

    def run(self, resume: bool = False, overwrite: bool = False, eval_samples: int = 100,
            progress: bool = False, log=None, figures: bool = True) -> dict:
        """Train, then write ``metrics.json`` and the figures; returns the metrics.

        A folder that already holds a run is refused unless ``resume`` (continue it from its
        checkpoint) or ``overwrite`` (start it anew); a folder another process trains into is
        refused. ``log`` (e.g. ``print``) is told when training ends and where results go;
        ``figures=False`` skips the figures (a study's smoke runs). The trackers are opened
        here and closed when the run ends, however it ends. Under data parallelism every rank
        must run the same configuration (checked first, one sentence otherwise); ranks other
        than 0 train and share the held-out metrics, but check, lock and write nothing, and
        return ``{}``.
        """
        group = distributed.current()
        if group is not None:  # data_dir: where a node keeps its files may differ
            group.check_same({**self.config, "resume": resume, "overwrite": overwrite,
                              "eval_samples": eval_samples, "figures": figures},
                             ignore=("data_dir",))
        if self.out is None or not writes_files():
            return self._train_and_report(resume, eval_samples, progress, log, figures)
        check_writable(self.out)
        if not resume and not overwrite and holds_a_run(self.out):
            raise PyroDGMError(f"{self.out} already holds a run; continue it with --resume, "
                               f"or start it anew with --overwrite")
        with locked(self.out):
            for stale in self.out.glob("*.tmp"):  # half-written by a process that was killed
                stale.unlink()
            if overwrite and not resume:
                for name in RUN_FILES:
                    (self.out / name).unlink(missing_ok=True)
                remove_tracker_outputs(self.out)
            with self._tracking():
                return self._train_and_report(resume, eval_samples, progress, log, figures)

    @contextlib.contextmanager
    def _tracking(self):
        """``self.tracker``: the trackers open on the run folder, for one run."""
        try:
            with open_trackers(self.trackers, self.out) as self.tracker:
                yield
        finally:
            self.tracker = TrackerGroup()

    def _train_and_report(self, resume, eval_samples, progress, log, figures=True) -> dict:
        started = time.perf_counter()
        self.tracker.log_config(self.config)
        self.train(resume=resume, progress=progress)
        if log is not None:
            epochs = len(self.history)
            log(f"trained {self.config['model']} on {self.config['dataset']} for {epochs} "
                f"epoch{'s' if epochs != 1 else ''} ({time.perf_counter() - started:.1f} s); "
                f"writing metrics and figures to {self.out}")
        metrics = self.metrics(eval_samples)  # every rank: the evaluation is shared out
        if not writes_files():  # files are rank 0's
            return {}
        self.tracker.log_scalars(metric_scalars(metrics), len(self.history))
        if self.out is not None:
            write_json(metrics, self.out / METRICS)
            if figures:
                self.figures()
            for figure in sorted(self.out.glob("*.png")):
                self.tracker.log_image(figure.stem, figure)
        return metrics

    # -- a trained run --------------------------------------------------------------------
    def restore(self):
        """Build the model and guide and load the run folder's checkpoint into them."""
        folder = self._folder()
        resolve_device(self.config["device"])
        state = load_checkpoint(folder / CHECKPOINT, self.config["device"])
        model, guide = self.build()
        pyro.clear_param_store()
        try:
            model.load_state_dict(state["modules"]["model"])
            guide.load_state_dict(state["modules"]["guide"])
        except (KeyError, RuntimeError):
            raise PyroDGMError(f"the checkpoint in {folder} does not fit the model in its "
                               f"{CONFIG}") from None
        self.history = list(state.get("history", []))
        return model, guide

    def evaluate(self, iwae_samples: int = 1000, knn: bool = False,
                 examples: int | None = None, progress: bool = False,
                 ais_steps: int | None = None, ais_chains: int | None = None) -> dict:
        """Held-out metrics of the restored run (``eval.json``) on the first ``examples`` test
        examples (None: all); ``knn`` needs labels; ``progress`` shows a bar over the test
        examples while the IWAE bound (and AIS) is computed. ``ais_steps`` adds AIS with HMC
        in latent space, ``ais_chains`` chains per example (:mod:`pyro_dgm.infer.ais_hmc`).
        Under data parallelism every rank calls it, the estimators share out the test
        examples (AIS runs whole on every rank), and rank 0 writes ``eval.json``."""
        ais_steps, ais_chains = check_ais_options(ais_steps, ais_chains)
        if self.model is None:
            self.restore()
        train, test = self.data
        test = test.head(examples)
        with progress_bars(progress), sharded_evaluation():
            metrics = self.entry.evaluate(self.model, self.guide, test, train,
                                          iwae_samples=iwae_samples,
                                          knn=knn and test.y is not None,
                                          seed=self.config["seed"], ais_steps=ais_steps,
                                          ais_chains=ais_chains)
        if self.out is not None and writes_files():
            write_json(metrics, self.out / EVAL)
        return metrics

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` draws from the restored model, seeded."""
        if n < 1:
            raise PyroDGMError(f"-n must be a positive number of samples, got {n}")
        if self.model is None:
            self.restore()
        pyro.set_rng_seed(seed)
        return self.model.sample(n)

    def _folder(self) -> Path:
        if self.out is None:
            raise PyroDGMError("this experiment has no run folder (out=None)")
        return self.out


@dataclass
class Run:
    """A trained run, as :func:`load_run` gives it back."""

    config: dict
    model: torch.nn.Module
    guide: torch.nn.Module
    train: Dataset
    test: Dataset
    history: list


def load_run(path: str | Path, device: str | None = None) -> Run:
    """Load the run folder ``path`` (written by ``pyro-dgm train`` or :meth:`Experiment.run`).

    Returns a :class:`Run` with the configuration, the model and guide with their trained
    parameters, the training and test data and the training history::

        run = pyro_dgm.load_run("runs/quickstart")
        codes = run.guide.encode(run.test.x)
    """
    experiment = Experiment.from_run(path, device)
    model, guide = experiment.restore()
    train, test = experiment.data
    return Run(experiment.config, model, guide, train, test, experiment.history)


# -- many runs ----------------------------------------------------------------------------
RUN_COLUMNS = ("run", "model", "objective", "dataset", "epochs", "test_elbo", "nll", "nll_k",
               "knn_error_3", "seconds")


def run_table(folders: list[str | Path]) -> list[dict]:
    """One row per run folder found under ``folders`` (any depth): what was trained, for how
    long, and its held-out numbers - ``test_elbo`` from ``metrics.json``, ``nll`` and kNN error
    from ``eval.json`` when ``pyro-dgm evaluate`` has written one. A run still training (no
    ``metrics.json``) has empty numbers; a folder that does not exist is refused."""
    rows = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise PyroDGMError(f"{folder} is not a folder")
        configs = [folder / CONFIG] if (folder / CONFIG).is_file() else sorted(
            folder.rglob(CONFIG))
        rows.extend(_run_row(config.parent) for config in configs)
    return rows


def _run_row(run: Path) -> dict:
    config = read_json(run / CONFIG)
    metrics = read_json(run / METRICS) if (run / METRICS).is_file() else {}
    evaluation = read_json(run / EVAL) if (run / EVAL).is_file() else {}
    nll = evaluation.get("nll") or metrics.get("nll") or {}
    knn = evaluation.get("knn_error") or metrics.get("knn_error") or {}
    return {"run": str(run), "model": config.get("model"), "objective": config.get("objective"),
            "dataset": config.get("dataset"), "epochs": metrics.get("epochs"),
            "test_elbo": metrics.get("test_elbo"), "nll": nll.get("value"),
            "nll_k": nll.get("k"), "knn_error_3": knn.get("3"),
            "seconds": metrics.get("train_seconds")}
