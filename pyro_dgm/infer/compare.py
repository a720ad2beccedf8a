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

:func:`gradient_variance` measures what explains why one objective learns faster than another:
the spread of its stochastic gradient estimator for the guide parameters :math:`\phi` at a
fixed parameter point. With :math:`M` independent estimates :math:`g_1, \dots, g_M` of
:math:`\nabla_\phi \mathcal L` on one fixed batch,

.. math::

    \bar g = \frac1M \sum_m g_m, \qquad
    \mathrm{tr}\,\widehat{\mathrm{Cov}}[g] = \frac1{M-1} \sum_m \lVert g_m - \bar g \rVert^2,
    \qquad \mathrm{SNR} = \frac{\lVert \bar g \rVert}{\sqrt{\mathrm{tr}\,\widehat{\mathrm{Cov}}[g]}},

the trace of the covariance (total variance) and a signal-to-noise ratio, as in Rainforth et
al. (2018), "Tighter variational bounds are not necessarily better", who show that the IWAE
bound's guide-gradient SNR falls as k grows.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

import pyro
import pyro.poutine as poutine

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.estimators import log_likelihood_bounds
from pyro_dgm.infer.objectives import (
    ObjectiveLoss,
    build_objective,
    get_objective,
    gradient_estimate,
)
from pyro_dgm.infer.trainer import Trainer, TrainingDiverged, program_traces, resolve_device


# -- objective specs ----------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective of a comparison: its ``label`` (the spec string), registry ``name``, options."""

    label: str
    name: str
    options: dict = field(default_factory=dict)


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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
            options[key] = _value(value.strip())
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


# -- gradient variance --------------------------------------------------------------------
def _as_args(batch) -> tuple:
    return batch if isinstance(batch, tuple) else (batch,)


def guide_parameters(guide: Callable, *args) -> dict[str, torch.Tensor]:
    """The guide's parameters, as the leaf tensors that objectives put gradients on.

    They are read from the ``param`` sites of one guide trace (a ``PyroModule`` guide's
    parameters, ``pyro.module`` networks and ``pyro.param`` sites alike), so that the model's
    parameters are excluded even for objectives that also set the model's gradients.
    """
    with poutine.block():
        trace = poutine.trace(guide).get_trace(*args)
    store = pyro.get_param_store()
    return {name: store.get_param(name).unconstrained()
            for name, site in trace.nodes.items() if site["type"] == "param"}


def gradient_variance(loss: ObjectiveLoss, batch, num_estimates: int = 100,
                      params: dict[str, torch.Tensor] | Sequence[torch.Tensor] | None = None,
                      seed: int | None = None, per_example: bool = True) -> dict:
    r"""Spread of ``loss``'s gradient estimator for the guide parameters at the current point.

    Back-propagates the loss module ``loss`` (an
    :class:`~pyro_dgm.infer.objectives.ObjectiveLoss`) ``num_estimates`` times on the same
    ``batch`` (a tensor or a tuple of program arguments), clearing every gradient in between,
    and flattens the gradients of ``params`` (default: :func:`guide_parameters` of
    ``loss.guide``; a parameter with no gradient counts as zero). Parameters are not changed.
    With ``per_example`` the gradients are those of the loss per example (divided by the batch
    size), so numbers compare across batch sizes.

    Returns ``num_estimates``, ``num_params``, ``batch_size``, ``mean`` and ``variance`` (per
    coordinate of the flattened gradient, in the order of ``params``), ``total_variance`` (trace of the sample covariance, unbiased),
    ``mean_squared_norm`` (mean of ``|g|^2``), ``squared_norm_of_mean`` (``|mean|^2``),
    ``snr`` (``|mean| / sqrt(total_variance)``) and ``mean_coordinate_snr`` (mean over
    coordinates of ``|mean_i| / sd_i``, Rainforth et al. 2018, coordinates with ``sd_i > 0``).
    """
    if num_estimates < 2:
        raise PyroDGMError(f"gradient variance needs at least 2 estimates, got {num_estimates}")
    args = _as_args(batch)
    if seed is not None:
        pyro.set_rng_seed(seed)
    if params is None:
        params = guide_parameters(loss.guide, *args)
    params = list(params.values()) if isinstance(params, dict) else list(params)
    if not params:
        raise PyroDGMError("the guide has no parameters to measure the gradient variance of")
    scale = 1.0 / args[0].shape[0] if per_example else 1.0
    estimates = [gradient_estimate(loss, args, params).detach() * scale
                 for _ in range(num_estimates)]
    return gradient_statistics(torch.stack(estimates), batch_size=args[0].shape[0])


def gradient_statistics(estimates: torch.Tensor, batch_size: int | None = None) -> dict:
    """The statistics of :func:`gradient_variance` from ``estimates`` of shape ``(M, P)``."""
    estimates = estimates.double()
    mean = estimates.mean(0)
    variance = estimates.var(0, unbiased=True)
    total_variance = variance.sum().item()
    sd = variance.sqrt()
    spread = sd > 0
    return {
        "num_estimates": estimates.shape[0], "num_params": estimates.shape[1],
        "batch_size": batch_size,
        "mean": mean, "variance": variance,
        "total_variance": total_variance,
        "mean_squared_norm": estimates.pow(2).sum(1).mean().item(),
        "squared_norm_of_mean": mean.pow(2).sum().item(),
        "snr": mean.norm().item() / math.sqrt(total_variance) if total_variance > 0 else math.inf,
        "mean_coordinate_snr": (mean.abs()[spread] / sd[spread]).mean().item()
        if spread.any() else math.inf,
    }


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
        header = (f"| objective | seeds | NLL (IWAE-{k}, nats) | test ELBO (nats) | s / epoch "
                  f"| epochs | guide grad variance (tr Cov) | guide grad SNR |")
        lines = [header, "|" + "---|" * 8]
        for row in self.summary():
            cells = [f"`{row['label']}`", str(row["seeds"]),
                     _pm(row["final_nll"], ".3f"), _pm(row["test_elbo"], ".3f"),
                     _pm(row["seconds_per_epoch"], ".3g"), _pm(row["epochs"], ".3g"),
                     _pm(row["grad_total_variance"], ".3g"), _pm(row["grad_snr"], ".3g")]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

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


def compare(model_name: str, objectives: Sequence[str], *, dataset: str = "bars",
            seeds: Sequence[int] = (0,), epochs: int | None = None, seconds: float | None = None,
            lr: float | None = None, batch_size: int | None = None, hyper: dict | None = None,
            objective_options: dict[str, dict] | None = None, data_options: dict | None = None,
            data_dir=None, data_seed: int = 0, iwae_samples: int = 100,
            eval_examples: int | None = 500, eval_every: float | None = None,
            variance_samples: int = 100, variance_batch_size: int | None = None,
            variance_warmup: int = 0, device: str = "cpu", progress: bool = True) -> Comparison:
    """Train zoo model ``model_name`` under each objective spec in ``objectives``; see the module doc.

    - ``objectives``: spec strings ``name[:key=value,...]`` (the label of each run);
      ``objective_options`` maps a label to more options for it.
    - budget: ``epochs`` (whole epochs through ``Trainer.fit``) or ``seconds`` (training
      wall-clock, ``Trainer.step`` on batches until spent; the step that crosses the budget
      finishes); neither means the model's default epochs.
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
    """
    from pyro_dgm.data import available_datasets, load_dataset
    from pyro_dgm.zoo import get_entry

    entry = get_entry(model_name)
    if dataset not in available_datasets():
        raise PyroDGMError(f"unknown data set {dataset!r}; expected one of "
                           f"{', '.join(available_datasets())}")
    if dataset not in entry.datasets:
        raise PyroDGMError(f"model {entry.name!r} is not set up for data set {dataset!r}; "
                           f"it takes {', '.join(entry.datasets)}")
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
    lr = entry.training["lr"] if lr is None else lr
    batch_size = entry.training["batch_size"] if batch_size is None else batch_size
    hyper = entry.hyper(hyper)
    resolve_device(device)

    options = dict(data_options or {})
    binarize = options.pop("binarize", None)
    train, test = (load_dataset(dataset, split, data_dir=data_dir, binarize=binarize,
                                seed=data_seed, **options) for split in ("train", "test"))
    x_eval = _fixed_draw(test, test.x[:eval_examples], data_seed).to(device)
    variance_batch_size = variance_batch_size or batch_size
    x_variance = _fixed_draw(train, train.x[:variance_batch_size], data_seed).to(device)
    if eval_every is None:
        eval_every = max(1, epochs // 10) if epochs is not None else seconds / 10

    def build_at(seed: int):
        """The model and guide with seed ``seed``'s initial weights (param store cleared)."""
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        try:
            model, guide = entry.build(hyper, train)
        except (ValueError, TypeError) as error:
            raise PyroDGMError(f"model {entry.name!r} cannot be built with {hyper}: {error}") from None
        return model.to(device), guide.to(device)

    _check_objectives(specs, build_at(seeds[0]), x_variance)
    _warm_up(specs, build_at, seeds[0], x_variance, lr, device)
    config = {"model": entry.name, "dataset": dataset, "objectives": [s.label for s in specs],
              "seeds": list(seeds), "epochs": epochs, "seconds": seconds, "lr": lr,
              "batch_size": batch_size, "hyper": hyper, "data_options": data_options or {},
              "data_seed": data_seed, "n_train": len(train), "n_test": len(test),
              "iwae_samples": iwae_samples, "eval_examples": x_eval.shape[0],
              "eval_every": eval_every, "variance_samples": variance_samples,
              "variance_batch_size": x_variance.shape[0], "variance_warmup": variance_warmup,
              "device": device}
    runs = []
    for seed in seeds:
        grads = (_variances(specs, build_at, seed, x_variance, variance_samples, variance_warmup,
                            train, lr, batch_size, device) if variance_samples else {})
        for spec in specs:
            model, guide = build_at(seed)
            run = {"label": spec.label, "objective": spec.name, "options": spec.options,
                   "seed": seed, "init_fingerprint": weights_fingerprint(model, guide)}
            trainer = Trainer(model, guide, spec.name, lr=lr, batch_size=batch_size, seed=seed,
                              device=device, objective_options=spec.options, progress=False)
            evaluate = _evaluator(model, guide, x_eval, iwae_samples)
            if epochs is not None:
                run.update(_train_epochs(trainer, train, epochs, eval_every, evaluate))
            else:
                run.update(_train_seconds(trainer, train, seconds, eval_every, evaluate))
            final = run["curve"][-1]
            run.update(final_nll=final["nll"], test_elbo=final["test_elbo"], nll_k=iwae_samples,
                       seconds_per_epoch=run["train_seconds"] / run["epochs"]
                       if run["epochs"] else math.nan,
                       grad=grads.get(spec.label))
            runs.append(run)
            if progress:
                print(f"compare: {spec.label} seed {seed}: NLL {run['final_nll']:.3f} after "
                      f"{run['epochs']:.3g} epochs, {run['train_seconds']:.1f} s ({run['status']})",
                      file=sys.stderr)
    return Comparison(config, runs)


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
        if spec.name not in entry.objectives:
            raise PyroDGMError(f"objective {spec.name!r} does not apply to model {entry.name!r}; "
                               f"it takes {', '.join(entry.objectives)}")
        build_objective(spec.name, None, None, **spec.options)  # refuses bad option values
    return specs


def _check_objectives(specs, programs, x) -> None:
    """Run each objective's check on a guide trace, before any training starts."""
    model, guide = programs
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(x)
    for spec in specs:
        check = get_objective(spec.name).check
        if check is not None:
            check(guide_trace)


def _warm_up(specs, build_at, seed, x, lr, device) -> None:
    """One untimed training step per objective, so that one-time costs (lazy imports, the
    optimizer's first step) are not charged to whichever run happens to come first."""
    for spec in specs:
        model, guide = build_at(seed)
        Trainer(model, guide, spec.name, lr=lr, batch_size=x.shape[0], seed=seed, device=device,
                objective_options=spec.options, progress=False).step(x)


def _fixed_draw(data, x: torch.Tensor, seed: int) -> torch.Tensor:
    """``x`` as the model sees it; dynamically binarized data get one fixed draw."""
    if getattr(data, "binarize", "none") == "dynamic":
        return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))
    return x


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


def _train_epochs(trainer: Trainer, train, epochs: int, eval_every: int, evaluate) -> dict:
    """Whole epochs through ``Trainer.fit``, evaluating every ``eval_every`` epochs and at the end."""
    curve = [{"seconds": 0.0, "epochs": 0, **evaluate()}]
    status = "ok"
    stops = sorted({*range(int(eval_every), epochs, int(eval_every)), epochs})
    for stop in stops:
        try:
            trainer.fit(train, stop)
        except TrainingDiverged as error:
            status = f"diverged: {error}"
        seconds = sum(h["seconds"] for h in trainer.history)
        point = {"nll": math.nan, "test_elbo": math.nan} if status != "ok" else evaluate()
        curve.append({"seconds": seconds, "epochs": len(trainer.history), **point})
        if status != "ok":
            break
    steps = math.ceil(len(train) / trainer.batch_size) * len(trainer.history)
    return {"curve": curve, "train_seconds": curve[-1]["seconds"],
            "epochs": len(trainer.history), "steps": steps, "status": status}


def _train_seconds(trainer: Trainer, train, seconds: float, eval_every: float, evaluate) -> dict:
    """``Trainer.step`` on batches until ``seconds`` of training time are spent."""
    curve = [{"seconds": 0.0, "epochs": 0.0, **evaluate()}]
    spent, steps, examples, next_eval, status = 0.0, 0, 0, eval_every, "ok"
    while spent < seconds and status == "ok":
        for batch in train.batches(trainer.batch_size, generator=trainer.generator):
            started = time.perf_counter()
            try:
                loss = trainer.step(batch)
            except ValueError as error:  # a distribution refused non-finite parameters
                if "invalid values" not in str(error):
                    raise
                loss = math.nan
            spent += time.perf_counter() - started
            steps, examples = steps + 1, examples + _as_args(batch)[0].shape[0]
            if not math.isfinite(loss):
                status = f"diverged: the loss became {loss} at step {steps}"
                curve.append({"seconds": spent, "epochs": examples / len(train),
                              "nll": math.nan, "test_elbo": math.nan})
                break
            if spent >= next_eval or spent >= seconds:
                curve.append({"seconds": spent, "epochs": examples / len(train), **evaluate()})
                while next_eval <= spent:
                    next_eval += eval_every
            if spent >= seconds:
                break
    return {"curve": curve, "train_seconds": spent, "epochs": examples / len(train),
            "steps": steps, "status": status}


def _variances(specs, build_at, seed, x, num_estimates, warmup, train, lr, batch_size,
               device) -> dict[str, dict]:
    """Guide-gradient statistics of every objective at one parameter point for ``seed``."""
    point = None
    if warmup:
        model, guide = build_at(seed)
        reference = specs[0]
        Trainer(model, guide, reference.name, lr=lr, batch_size=batch_size, seed=seed,
                device=device, objective_options=reference.options,
                progress=False).fit(train, warmup)
        point = (model.state_dict(), guide.state_dict())
    grads = {}
    for spec in specs:
        model, guide = build_at(seed)
        if point is not None:
            model.load_state_dict(point[0])
            guide.load_state_dict(point[1])
        loss = build_objective(spec.name, model, guide, **spec.options)
        loss.prepare((x,), *program_traces(model, guide, x))
        if hasattr(loss, "fit_baselines"):  # e.g. NVIL: its baselines fitted at this point too
            loss.fit_baselines(x)
        stats = gradient_variance(loss, x, num_estimates=num_estimates, seed=seed)
        del stats["mean"], stats["variance"]
        grads[spec.label] = stats
    return grads
