r"""Comparing objectives on one model: the library behind ``pyro-dgm compare``.

:func:`compare` trains one zoo model under several objectives with everything else held
equal: the same data (drawn once with ``data_seed``), the same architecture (``hyper``), the
same initial weights for a given seed (the model is built right after
``pyro.set_rng_seed(seed)``), the same training randomness stream per seed (the Trainer is
seeded with it), the same optimizer settings and the same budget, either whole epochs or
wall-clock seconds of training. Every run is scored by the same estimator: minus the IWAE-k
bound (Burda et al., 2016; seed ``002``) with the same k on the same held-out examples,

.. math::

    \widehat{\mathrm{NLL}} = -\frac1N \sum_n \log \frac1k \sum_{s=1}^k
        \frac{p_\theta(x_n, z_{n,s})}{q_\phi(z_{n,s} \mid x_n)},
    \qquad z_{n,s} \sim q_\phi(z \mid x_n),

recorded at checkpoints against training wall-clock time (evaluation time is not counted).

:func:`~pyro_dgm.infer.gradients.gradient_variance` measures the spread of each objective's
guide-gradient estimator at one parameter point, which explains why one learns faster.

Each run is an :class:`~pyro_dgm.experiment.Experiment`: ``compare`` is a loop over experiments
that share one data draw and one budget, and trains through the one ``Trainer.fit`` loop.

Objective specs are strings ``name[:key=value,...]``, e.g. ``"elbo"``, ``"iwae:particles=50"``;
the whole string is the run's label, so one objective may appear with different options.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

import pyro
import pyro.poutine as poutine

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import (
    Experiment,
    check_dataset,
    check_objective,
    check_writable,
    parse_value,
    read_json,
)
from pyro_dgm.infer.estimators import log_likelihood_bounds
from pyro_dgm.infer.gradients import gradient_variance, guide_parameters
from pyro_dgm.infer.objectives import build_objective, get_objective
from pyro_dgm.infer.trainer import Trainer, TrainingDiverged, program_traces, resolve_device
from pyro_dgm.tables import markdown_table
from pyro_dgm.zoo import get_entry


# -- objective specs ----------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective of a comparison: its ``label`` (the spec string), registry ``name``, options."""

    label: str
    name: str
    options: dict = field(default_factory=dict)


def parse_objective_spec(text: str) -> ObjectiveSpec:
    """``"iwae:particles=5"`` -> ``ObjectiveSpec("iwae:particles=5", "iwae", {"particles": 5})``.

    Values are read as JSON where they parse (numbers, ``true``), else kept as strings. The
    objective name and option names are checked against the registry.
    """
    label = text.strip()
    name, colon, rest = label.partition(":")
    name = name.strip()
    if not name:
        raise PyroDGMError(f"objective spec {text!r} has no objective name; "
                           f"write name[:key=value,...], e.g. iwae:particles=5")
    options = {}
    if colon:
        for pair in rest.split(","):
            key, eq, value = pair.partition("=")
            key = key.strip()
            if not eq or not key or not value.strip():
                raise PyroDGMError(f"objective spec {text!r}: option {pair.strip()!r} is not "
                                   f"key=value; write name[:key=value,...], e.g. iwae:particles=5")
            if key in options:
                raise PyroDGMError(f"objective spec {text!r} sets option {key!r} twice")
            options[key] = parse_value(value.strip())
    objective = get_objective(name)
    unknown = sorted(set(options) - set(objective.options))
    if unknown:
        raise PyroDGMError(f"objective spec {text!r}: objective {name!r} has no option(s) "
                           f"{unknown}; it takes {sorted(objective.options) or 'none'}")
    return ObjectiveSpec(label, name, options)


def split_objective_list(text: str) -> list[str]:
    """``"elbo,iwae:particles=5,iwae:particles=50"`` -> the three spec strings.

    A comma-separated piece of the form ``key=value`` (no ``:``) continues the options of the
    spec before it, so ``"rws:particles=5,sleep=true,elbo"`` is two specs.
    """
    specs: list[str] = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece:
            raise PyroDGMError(f"--objectives {text!r} has an empty entry")
        if "=" in piece and ":" not in piece:
            if not specs or ":" not in specs[-1]:
                raise PyroDGMError(f"--objectives {text!r}: {piece!r} is an option without an "
                                   f"objective; write name:key=value, e.g. iwae:particles=5")
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    return specs


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``, refusing anything but distinct whole numbers."""
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise PyroDGMError(f"--seeds takes whole numbers separated by commas, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise PyroDGMError(f"--seeds lists a seed twice: {text!r}")
    return seeds


# -- the comparison -----------------------------------------------------------------------
SUMMARY_METRICS = ("final_nll", "test_elbo", "seconds_per_epoch", "train_seconds", "epochs",
                   "grad_total_variance", "grad_snr")
CSV_COLUMNS = ("label", "objective", "options", "seed", "final_nll", "test_elbo", "nll_k",
               "epochs", "steps", "train_seconds", "seconds_per_epoch", "grad_total_variance",
               "grad_mean_squared_norm", "grad_snr", "grad_mean_coordinate_snr", "status",
               "init_fingerprint")


@dataclass
class Comparison:
    """What :func:`compare` returns: the settings and one record per (objective, seed) run.

    Each run holds ``label``, ``objective``, ``options``, ``seed``, ``final_nll``,
    ``test_elbo``, ``nll_k``, ``epochs`` (fractional in seconds mode), ``steps``,
    ``train_seconds``, ``seconds_per_epoch``, ``curve`` (``[{"seconds", "epochs", "nll",
    "test_elbo"}, ...]`` from the first checkpoint, before training, to the last),
    ``grad`` (the :func:`gradient_variance` numbers, without the mean vector), ``status``
    (``"ok"`` or why the run stopped) and ``init_fingerprint`` (a hash of the initial weights).
    """

    config: dict
    runs: list[dict]

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(run["label"] for run in self.runs))

    def summary(self) -> list[dict]:
        """Per objective label: ``{metric: {"mean", "std", "n"}}`` over seeds (std 0 for one seed).

        Runs that diverged have a NaN final NLL, so their label's mean is NaN too.
        """
        rows = []
        for label in self.labels:
            runs = [run for run in self.runs if run["label"] == label]
            row = {"label": label, "objective": runs[0]["objective"], "seeds": len(runs)}
            for metric in SUMMARY_METRICS:
                values = [float(_flat(run)[metric]) for run in runs]
                row[metric] = {"mean": statistics.fmean(values),
                               "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                               "n": len(values)}
            rows.append(row)
        return rows

    def to_rows(self) -> list[dict]:
        """One flat row per run, in the columns of ``compare.csv``."""
        return [{column: _flat(run)[column] for column in CSV_COLUMNS} for run in self.runs]

    def to_markdown(self) -> str:
        """A markdown table: mean ± std over seeds per objective."""
        k = self.config["iwae_samples"]
        header = ["objective", "seeds", f"NLL (IWAE-{k}, nats)", "test ELBO (nats)", "s / epoch",
                  "epochs", "guide grad variance (tr Cov)", "guide grad SNR"]
        rows = [[f"`{row['label']}`", str(row["seeds"]),
                 _pm(row["final_nll"], ".3f"), _pm(row["test_elbo"], ".3f"),
                 _pm(row["seconds_per_epoch"], ".3g"), _pm(row["epochs"], ".3g"),
                 _pm(row["grad_total_variance"], ".3g"), _pm(row["grad_snr"], ".3g")]
                for row in self.summary()]
        return markdown_table(header, rows).rstrip("\n")

    def to_json(self) -> dict:
        return {"config": self.config, "runs": self.runs, "summary": self.summary()}

    def write(self, out: str | Path, figures: bool = True) -> dict[str, Path]:
        """Write ``compare.csv``, ``compare.md``, ``compare.json`` and the figures to ``out``."""
        from pyro_dgm import plots

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in ("compare.csv", "compare.md", "compare.json")}
        with open(paths["compare.csv"], "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(self.to_rows())
        paths["compare.md"].write_text(_markdown_preamble(self.config) + self.to_markdown() + "\n")
        paths["compare.json"].write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        if figures:
            summary = self.summary()
            paths["nll_vs_time.png"] = plots.nll_vs_time(
                self.runs, out / "nll_vs_time.png", k=self.config["iwae_samples"])
            paths["final_nll.png"] = plots.final_nll(
                summary, out / "final_nll.png", k=self.config["iwae_samples"])
            paths["grad_variance.png"] = plots.grad_variance(summary, out / "grad_variance.png")
        return paths


def _flat(run: dict) -> dict:
    grad = run.get("grad") or {}
    return {**run, "options": json.dumps(run["options"]),
            "grad_total_variance": grad.get("total_variance", math.nan),
            "grad_mean_squared_norm": grad.get("mean_squared_norm", math.nan),
            "grad_snr": grad.get("snr", math.nan),
            "grad_mean_coordinate_snr": grad.get("mean_coordinate_snr", math.nan)}


def _pm(stat: dict, fmt: str) -> str:
    if stat["n"] > 1:
        return f"{stat['mean']:{fmt}} ± {stat['std']:{fmt}}"
    return f"{stat['mean']:{fmt}}"


def _markdown_preamble(config: dict) -> str:
    budget = (f"{config['epochs']} epochs" if config["epochs"] is not None
              else f"{config['seconds']} s of training")
    return (f"# {config['model']} on {config['dataset']}: {', '.join(config['objectives'])}\n\n"
            f"Budget {budget}; seeds {list(config['seeds'])}; batch size {config['batch_size']}; "
            f"lr {config['lr']}; hyper {config['hyper']}. NLL = -IWAE-{config['iwae_samples']} "
            f"bound on {config['eval_examples']} held-out examples. Guide gradient variance: "
            f"{config['variance_samples']} estimates on one batch of "
            f"{config['variance_batch_size']} training examples at "
            + ("the initial weights" if not config["variance_warmup"] else
               f"the weights after {config['variance_warmup']} warm-up epochs of "
               f"`{config['objectives'][0]}`")
            + ". Mean ± std over seeds.\n\n")


def weights_fingerprint(*modules: torch.nn.Module) -> str:
    """A short hash of the modules' parameters and buffers: equal iff the weights are equal."""
    digest = hashlib.sha1()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def compare(model_name: str, objectives: Sequence[str] | str, *, dataset: str = "bars",
            seeds: Sequence[int] = (0,), epochs: int | None = None, seconds: float | None = None,
            lr: float | None = None, batch_size: int | None = None, hyper: dict | None = None,
            objective_options: dict[str, dict] | None = None, data_options: dict | None = None,
            data_dir=None, data_seed: int = 0, iwae_samples: int = 100,
            eval_examples: int | None = 500, eval_every: float | None = None,
            variance_samples: int = 100, variance_batch_size: int | None = None,
            variance_warmup: int = 0, device: str = "cpu", progress: bool = True,
            out: str | Path | None = None, resume: bool = False,
            overwrite: bool = False) -> Comparison:
    """Train zoo model ``model_name`` under each objective spec in ``objectives``; see the module doc.

    - ``objectives``: spec strings ``name[:key=value,...]`` (the label of each run), or one
      comma-separated string of them; ``objective_options`` maps a label to more options for it.
    - budget: ``epochs`` (whole epochs) or ``seconds`` (training wall-clock; the step that
      crosses the budget finishes); neither means the model's default epochs.
    - ``lr``, ``batch_size``: default the zoo entry's; ``hyper``: model hyper-parameters;
      ``data_options``: the data set's options (e.g. ``binarize``, ``n_train``); the data are
      drawn once with ``data_seed`` for every run.
    - evaluation: minus the IWAE-``iwae_samples`` bound and the ELBO on the first
      ``eval_examples`` test examples (``None``: all), every ``eval_every`` epochs (seconds in
      seconds mode; default a tenth of the budget), not counted in the training time.
    - gradient variance: ``variance_samples`` estimates per objective and seed on the first
      ``variance_batch_size`` (default ``batch_size``) training examples, at the seed's initial
      weights, or, with ``variance_warmup`` > 0, after that many epochs of training with the
      first objective (the same point for every objective). ``variance_samples=0`` skips it.
    - ``out``: the folder written as runs finish (``compare.json`` and the tables after every
      run, the figures at the end), so an interrupted comparison keeps its finished runs;
      ``resume`` continues one (same settings; finished runs are not repeated), ``overwrite``
      replaces one; without either, a folder holding a comparison is refused.
    """
    entry = get_entry(model_name)
    out = Path(out) if out is not None else None
    check_dataset(entry, dataset)
    if epochs is not None and seconds is not None:
        raise PyroDGMError("give a budget of epochs or of seconds, not both")
    if epochs is None and seconds is None:
        epochs = entry.training["epochs"]
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise PyroDGMError(f"epochs must be a positive whole number, got {epochs!r}")
    if seconds is not None and not seconds > 0:
        raise PyroDGMError(f"seconds must be positive, got {seconds!r}")
    if not seeds:
        raise PyroDGMError("compare needs at least one seed")
    if iwae_samples < 1 or (eval_examples is not None and eval_examples < 1):
        raise PyroDGMError("iwae_samples and eval_examples must be positive")
    if variance_samples == 1 or variance_samples < 0:
        raise PyroDGMError(f"variance_samples must be 0 (skip) or at least 2, got {variance_samples}")
    specs = _specs(objectives, objective_options or {}, entry)
    resolve_device(device)
    base = {"model": entry.name, "dataset": dataset, "objective": specs[0].name,
            "epochs": epochs, "seconds": seconds,
            "batch_size": entry.training["batch_size"] if batch_size is None else batch_size,
            "lr": entry.training["lr"] if lr is None else lr, "seed": data_seed,
            "device": device, "data_dir": None if data_dir is None else str(data_dir),
            "hyper": entry.hyper(hyper), "objective_options": {},
            "data_options": dict(data_options or {})}
    train, test = Experiment(base).data  # one draw of the data, shared by every run
    x_eval = test.observed(eval_examples, seed=data_seed, device=device)
    variance_batch_size = variance_batch_size or base["batch_size"]
    x_variance = train.observed(variance_batch_size, seed=data_seed, device=device)
    if eval_every is None:
        eval_every = max(1, epochs // 10) if epochs is not None else seconds / 10

    def experiment(spec: ObjectiveSpec, seed: int) -> Experiment:
        """The run of ``spec`` with seed ``seed``: its model and guide built, not trained."""
        config = {**base, "objective": spec.name, "objective_options": spec.options, "seed": seed}
        run = Experiment(config, data=(train, test))
        run.build()
        return run

    _check_objectives(specs, experiment(specs[0], seeds[0]), x_variance)
    _warm_up(specs, experiment, seeds[0], x_variance)
    config = {"model": entry.name, "dataset": dataset, "objectives": [s.label for s in specs],
              "seeds": list(seeds), "epochs": epochs, "seconds": seconds, "lr": base["lr"],
              "batch_size": base["batch_size"], "hyper": base["hyper"],
              "data_options": data_options or {}, "data_seed": data_seed,
              "n_train": len(train), "n_test": len(test), "iwae_samples": iwae_samples,
              "eval_examples": x_eval.shape[0], "eval_every": eval_every,
              "variance_samples": variance_samples, "variance_batch_size": x_variance.shape[0],
              "variance_warmup": variance_warmup, "device": device}
    finished = _finished_runs(out, config, resume, overwrite) if out is not None else {}
    runs = []
    for seed in seeds:
        todo = [spec for spec in specs if (spec.label, seed) not in finished]
        grads = (_variances(todo, specs[0], experiment, seed, x_variance, variance_samples,
                            variance_warmup, train) if variance_samples and todo else {})
        for spec in specs:
            if (spec.label, seed) in finished:
                runs.append(finished[spec.label, seed])
                continue
            run_experiment = experiment(spec, seed)
            model, guide = run_experiment.model, run_experiment.guide
            run = {"label": spec.label, "objective": spec.name, "options": spec.options,
                   "seed": seed, "init_fingerprint": weights_fingerprint(model, guide)}
            trainer = run_experiment.make_trainer()
            evaluate = _evaluator(model, guide, x_eval, iwae_samples)
            run.update(_train_with_curve(trainer, train, epochs, seconds, eval_every, evaluate))
            final = run["curve"][-1]
            run.update(final_nll=final["nll"], test_elbo=final["test_elbo"], nll_k=iwae_samples,
                       seconds_per_epoch=run["train_seconds"] / run["epochs"]
                       if run["epochs"] else math.nan,
                       grad=grads.get(spec.label))
            runs.append(run)
            if out is not None:
                Comparison(config, runs).write(out, figures=False)
            if progress:
                print(f"compare: {spec.label} seed {seed}: NLL {run['final_nll']:.3f} after "
                      f"{run['epochs']:.3g} epochs, {run['train_seconds']:.1f} s ({run['status']})",
                      file=sys.stderr)
    results = Comparison(config, runs)
    if out is not None:
        results.write(out)
    return results


# settings that may differ between a comparison and the one that resumes it
RESUMABLE = ("objectives", "seeds")


def _finished_runs(out: Path, config: dict, resume: bool, overwrite: bool) -> dict:
    """The runs already in ``out``'s ``compare.json``, by ``(label, seed)``, for a resume; a
    folder holding a comparison is refused unless ``resume`` or ``overwrite``."""
    check_writable(out)
    saved = out / "compare.json"
    if resume and overwrite:
        raise PyroDGMError("give --resume or --overwrite, not both")
    if not saved.exists() or overwrite:
        out.mkdir(parents=True, exist_ok=True)
        return {}
    if not resume:
        raise PyroDGMError(f"{out} already holds a comparison; continue it with --resume, or "
                           f"start it anew with --overwrite")
    previous = read_json(saved)
    before = {k: v for k, v in previous.get("config", {}).items() if k not in RESUMABLE}
    now = json.loads(json.dumps({k: v for k, v in config.items() if k not in RESUMABLE}))
    changed = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
    if changed:
        raise PyroDGMError(f"the comparison in {out} was made with other settings "
                           f"({', '.join(changed)}); --resume cannot change them")
    return {(run["label"], run["seed"]): run for run in previous.get("runs", [])}


def _specs(objectives, objective_options: dict, entry) -> list[ObjectiveSpec]:
    if isinstance(objectives, str):
        objectives = split_objective_list(objectives)
    specs = [parse_objective_spec(text) for text in objectives]
    if not specs:
        raise PyroDGMError("compare needs at least one objective")
    labels = [s.label for s in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise PyroDGMError(f"objective(s) {repeated} are listed twice")
    unknown = sorted(set(objective_options) - set(labels))
    if unknown:
        raise PyroDGMError(f"objective_options names {unknown}, which are not among the "
                           f"objectives {labels}")
    specs = [dataclasses.replace(s, options={**s.options, **objective_options.get(s.label, {})})
             for s in specs]
    for spec in specs:
        check_objective(entry, spec.name)
        build_objective(spec.name, None, None, **spec.options)  # refuses bad option values
    return specs


def _check_objectives(specs, run: Experiment, x) -> None:
    """Run each objective's check on a guide trace, before any training starts."""
    with poutine.block():
        guide_trace = poutine.trace(run.guide).get_trace(x)
    for spec in specs:
        check = get_objective(spec.name).check
        if check is not None:
            check(guide_trace)


def _warm_up(specs, experiment: Callable, seed: int, x) -> None:
    """One untimed training step per objective, so that one-time costs (lazy imports, the
    optimizer's first step) are not charged to whichever run happens to come first."""
    for spec in specs:
        experiment(spec, seed).make_trainer().step(x)


def _evaluator(model, guide, x_eval: torch.Tensor, k: int) -> Callable[[], dict]:
    """IWAE-k NLL and ELBO on ``x_eval``, with fixed draws, leaving the training RNG untouched."""
    def evaluate() -> dict:
        rng_state = pyro.util.get_rng_state()
        try:
            pyro.set_rng_seed(12345)
            elbo, iwae = log_likelihood_bounds(model, guide, x_eval, num_samples=k)
        except PyroDGMError:
            return {"nll": math.nan, "test_elbo": math.nan}
        finally:
            pyro.util.set_rng_state(rng_state)
        return {"nll": -iwae.mean().item(), "test_elbo": elbo.mean().item()}
    return evaluate


def _train_with_curve(trainer: Trainer, train, epochs: int | None, seconds: float | None,
                      eval_every: float, evaluate: Callable[[], dict]) -> dict:
    """Train for the budget (``epochs``, or ``seconds`` of training time) through
    ``Trainer.fit``, evaluating before training, every ``eval_every`` epochs (or seconds) and
    at the end; a run that diverges stops there, with NaN numbers."""
    budget = epochs if epochs is not None else seconds
    stops = [eval_every * i for i in range(1, math.ceil(budget / eval_every))] + [budget]
    curve = [{"seconds": 0.0, "epochs": 0, **evaluate()}]
    status = "ok"
    for stop in stops:
        try:
            if epochs is not None:
                trainer.fit(train, int(stop))
            else:
                trainer.fit(train, seconds=stop)
        except TrainingDiverged as error:
            status = f"diverged: {error}"
        done = len(trainer.history) if epochs is not None else trainer.examples / len(train)
        point = evaluate() if status == "ok" else {"nll": math.nan, "test_elbo": math.nan}
        curve.append({"seconds": trainer.train_seconds, "epochs": done, **point})
        if status != "ok":
            break
    return {"curve": curve, "train_seconds": trainer.train_seconds, "epochs": curve[-1]["epochs"],
            "steps": trainer.steps, "status": status}


def _variances(specs, reference_spec, experiment: Callable, seed: int, x, num_estimates: int,
               warmup: int, train) -> dict[str, dict]:
    """Guide-gradient statistics of the objectives ``specs`` at one parameter point for
    ``seed``: the initial weights, or those after ``warmup`` epochs of ``reference_spec``."""
    point = None
    if warmup:
        reference = experiment(reference_spec, seed)
        reference.make_trainer().fit(train, warmup)
        point = (reference.model.state_dict(), reference.guide.state_dict())
    grads = {}
    for spec in specs:
        run = experiment(spec, seed)
        model, guide = run.model, run.guide
        if point is not None:
            model.load_state_dict(point[0])
            guide.load_state_dict(point[1])
        if not guide_parameters(guide, x):  # an empty guide (exact likelihoods): none to measure
            continue
        loss = build_objective(spec.name, model, guide, **spec.options)
        loss.prepare((x,), *program_traces(model, guide, x))
        if hasattr(loss, "fit_baselines"):  # e.g. NVIL: its baselines fitted at this point too
            loss.fit_baselines(x)
        stats = gradient_variance(loss, x, num_estimates=num_estimates, seed=seed)
        del stats["mean"], stats["variance"]
        grads[spec.label] = stats
    return grads
