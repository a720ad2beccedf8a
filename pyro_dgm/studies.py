"""Reproduction studies as data: ``pyro-dgm reproduce STUDY --budget smoke|cpu|paper``.

A :class:`Study` is a description, not a script: the runs of a published table (a zoo model,
objective, data set and settings per row), the metrics the table reports, the published values
with their source, and budgets - ``smoke`` (seconds: the tests run every study this way),
``cpu`` (the protocol whose numbers the README quotes, on a laptop's cores) and ``paper`` (the
papers' training length). :func:`reproduce` runs each (run, seed) through the experiment layer
(:class:`pyro_dgm.experiment.Experiment`: train, then ``evaluate``), one run folder each, and
writes ``study.md``, ``study.csv``, ``study.json`` and ``study.png`` (measured, mean ± std
over seeds, beside published) after every run, so an interrupted study keeps what finished and
``resume`` trains only what is missing.

Studies register themselves in :data:`STUDIES`; a new reproduction is one :func:`register`
call below (or in any module imported before ``reproduce`` runs).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from pyro_dgm.data import dataset_options
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import Experiment, check_writable, make_config, read_json, write_json
from pyro_dgm.registry import Registry
from pyro_dgm.tables import markdown_table
from pyro_dgm.zoo import get_entry

BUDGETS = ("smoke", "cpu", "paper")
STUDY_FILES = ("study.md", "study.csv", "study.json", "study.png")


@dataclass(frozen=True)
class Budget:
    """How long each run trains and how it is scored.

    ``settings`` apply to every run that takes them (e.g. ``hidden=16`` for a smoke run;
    a run's own settings win); ``eval_examples`` cuts the held-out set (None: all of it);
    ``train_examples`` cuts the training set (for smoke runs only: the run folder's
    ``config.json`` does not record the cut, its ``row.json`` does).
    """

    epochs: int | None = None
    seconds: float | None = None
    iwae_samples: int = 100
    eval_examples: int | None = None
    batch_size: int | None = None
    train_examples: int | None = None
    settings: dict = field(default_factory=dict)
    figures: bool = True  # each run's own figures (the study's figure is always drawn)


@dataclass(frozen=True)
class StudyRun:
    """One row of a published table: a zoo model under an objective on a data set."""

    label: str
    model: str
    objective: str | None = None
    dataset: str = "mnist"
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """A column: ``path`` into ``eval.json`` (e.g. ``("nll", "value")``), times ``scale``
    (100 for an error fraction shown in percent, -1 for a test ELBO shown as -ELBO)."""

    key: str
    title: str
    path: tuple[str, ...]
    scale: float = 1.0
    digits: int = 2

    def read(self, evaluation: dict) -> float:
        value = evaluation
        for step in self.path:
            value = value.get(step) if isinstance(value, dict) else None
        return math.nan if value is None else self.scale * float(value)


@dataclass(frozen=True)
class Study:
    """A published comparison, as data."""

    name: str
    title: str
    source: str
    protocol: str
    runs: tuple[StudyRun, ...]
    metrics: tuple[Metric, ...]
    budgets: dict[str, Budget]
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> key -> value
    knn: bool = False
    lr: float | None = None
    note: str = ""


STUDIES: Registry = Registry("study", "studies")


def register(study: Study) -> Study:
    missing = [budget for budget in BUDGETS if budget not in study.budgets]
    if missing:
        raise ValueError(f"study {study.name!r} lacks the budget(s) {', '.join(missing)}")
    for label in study.published:
        if label not in {run.label for run in study.runs}:
            raise ValueError(f"study {study.name!r} publishes a value for unknown run {label!r}")
    STUDIES[study.name] = study
    return study


def get_study(name: str) -> Study:
    return STUDIES[name]


# -- running a study ----------------------------------------------------------------------
def run_config(study: Study, run: StudyRun, budget: Budget, seed: int, data_dir=None,
               device: str = "cpu") -> dict:
    """The ``config.json`` of one (run, seed) of ``study`` under ``budget``."""
    entry = get_entry(run.model)
    takes = {*entry.defaults, *dataset_options(run.dataset)}
    settings = {key: value for key, value in budget.settings.items() if key in takes}
    return make_config(run.model, dataset=run.dataset, objective=run.objective,
                       epochs=budget.epochs, seconds=budget.seconds, lr=study.lr,
                       batch_size=budget.batch_size, seed=seed, device=device,
                       data_dir=data_dir, settings={**settings, **run.settings})


def reproduce(name: str, budget: str = "cpu", seeds: Sequence[int] = (0,), *, out: str | Path,
              data_dir=None, device: str = "cpu", resume: bool = False, overwrite: bool = False,
              progress: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Run study ``name`` under ``budget`` for each seed into ``out``; returns ``study.json``.

    A folder that holds a study is refused unless ``resume`` (finished runs with the same
    configuration are read back, not retrained) or ``overwrite``.
    """
    study = get_study(name)
    if budget not in study.budgets:
        raise PyroDGMError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    if not seeds:
        raise PyroDGMError("give at least one seed")
    chosen = study.budgets[budget]
    out = Path(out)
    check_writable(out)
    if (out / "study.json").exists() and not (resume or overwrite):
        raise PyroDGMError(f"{out} already holds a study; continue it with --resume, or start it "
                           f"anew with --overwrite")
    configs = {(run.label, seed): run_config(study, run, chosen, seed, data_dir, device)
               for run in study.runs for seed in seeds}  # every config is checked before training
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in study.runs:
        for seed in seeds:
            folder = out / _slug(run.label) / f"seed-{seed}"
            config = configs[(run.label, seed)]
            row = None if overwrite else _finished_row(folder, config, chosen)
            if row is None:
                if log is not None:
                    log(f"{study.name}: {run.label}, seed {seed}")
                row = _run_one(study, run, config, chosen, folder, progress)
            rows.append(row)
            result = _result(study, budget, chosen, seeds, rows)
            write_study(result, out, figure=False)  # the tables as each run finishes
    write_study(result, out)
    return result


def _run_one(study: Study, run: StudyRun, config: dict, budget: Budget, folder: Path,
             progress: bool) -> dict:
    experiment = Experiment(config, out=folder)
    if budget.train_examples is not None:
        train, test = experiment.data
        experiment = Experiment(config, out=folder, data=(train.head(budget.train_examples), test))
    metrics = experiment.run(overwrite=True, eval_samples=min(budget.iwae_samples, 100),
                             progress=progress, figures=budget.figures)
    evaluation = experiment.evaluate(iwae_samples=budget.iwae_samples, knn=study.knn,
                                     examples=budget.eval_examples, progress=progress)
    row = {"label": run.label, "model": run.model, "objective": config["objective"],
           "seed": config["seed"], "epochs": metrics["epochs"],
           "seconds_per_epoch": metrics["seconds_per_epoch"],
           **{metric.key: metric.read(evaluation) for metric in study.metrics}}
    write_json({"config": config, "budget": asdict(budget), "row": row}, folder / "row.json")
    return row


def _finished_row(folder: Path, config: dict, budget: Budget) -> dict | None:
    """The row of a run folder finished with this configuration and budget, else None."""
    saved = folder / "row.json"
    if not saved.is_file():
        return None
    record = read_json(saved)
    if record.get("config") != config or record.get("budget") != json.loads(
            json.dumps(asdict(budget))):
        return None
    return record["row"]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in label).strip("-").lower()


# -- the table ----------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n"}`` of the finite ``values`` (std 0 for one value; NaN for none)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": statistics.fmean(finite),
            "std": statistics.stdev(finite) if len(finite) > 1 else 0.0, "n": len(finite)}


def _result(study: Study, budget_name: str, budget: Budget, seeds, rows: list[dict]) -> dict:
    summary = []
    for run in study.runs:
        mine = [row for row in rows if row["label"] == run.label]
        if not mine:
            continue
        summary.append({"label": run.label, "model": run.model, "seeds": len(mine),
                        "objective": mine[0]["objective"],
                        **{metric.key: mean_std([row[metric.key] for row in mine])
                           for metric in study.metrics},
                        "seconds_per_epoch": mean_std([row["seconds_per_epoch"] for row in mine]),
                        "published": study.published.get(run.label, {})})
    return {"study": study.name, "title": study.title, "source": study.source,
            "protocol": study.protocol, "note": study.note, "budget": budget_name,
            "budget_settings": asdict(budget), "seeds": list(seeds),
            "metrics": [asdict(metric) for metric in study.metrics],
            "runs": rows, "summary": summary}


def to_markdown(result: dict) -> str:
    """``study.md``: the protocol, then one row per run, measured (mean ± std) beside published."""
    budget = result["budget_settings"]
    length = (f"{budget['seconds']:g} s of training" if budget["seconds"] is not None
              else f"{budget['epochs']} epochs" if budget["epochs"] is not None
              else "the models' default epochs")
    metrics = [Metric(**{**m, "path": tuple(m["path"])}) for m in result["metrics"]]
    lines = [f"# {result['title']}", "",
             f"Source: {result['source']}. Protocol: {result['protocol']}. Budget "
             f"`{result['budget']}`: {length}, IWAE-{budget['iwae_samples']} on "
             f"{budget['eval_examples'] or 'all'} held-out examples; seeds {result['seeds']}; "
             f"measured as mean ± std over seeds, published values in brackets.", ""]
    if result["note"]:
        lines += [result["note"], ""]
    header = ["run", "objective", *(m.title for m in metrics), "s / epoch"]
    rows = []
    for row in result["summary"]:
        cells = [f"`{row['label']}`", f"`{row['objective']}`"]
        for metric in metrics:
            cell = _pm(row[metric.key], metric.digits)
            published = row["published"].get(metric.key)
            cells.append(cell + (f" ({published:g})" if published is not None else ""))
        cells.append(_pm(row["seconds_per_epoch"], 2))
        rows.append(cells)
    return "\n".join(lines) + "\n" + markdown_table(header, rows)


def _pm(stat: dict, digits: int) -> str:
    if stat["n"] == 0:
        return "-"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def write_study(result: dict, out: Path, figure: bool = True) -> None:
    """``study.json``, ``study.csv``, ``study.md`` and (with ``figure``) ``study.png``."""
    from pyro_dgm import plots

    write_json(result, out / "study.json")
    keys = list(result["runs"][0])
    with open(out / "study.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(result["runs"])
    (out / "study.md").write_text(to_markdown(result))
    if figure:
        plots.measured_vs_published(result["summary"], result["metrics"], out / "study.png",
                                    title=result["title"])


# -- the studies --------------------------------------------------------------------------
NLL = Metric("nll", "NLL (nats)", ("nll", "value"))
NEG_ELBO = Metric("neg_elbo", "test -ELBO (nats)", ("test_elbo",), scale=-1.0)
KNN = tuple(Metric(f"knn_{k}", f"kNN error k={k} (%)", ("knn_error", str(k)), scale=100.0)
            for k in (3, 5, 10))
ACTIVE_DIMS = Metric("active_dims", "active dims", ("active_dims",), digits=0)
OFFLINE_MNIST = ("offline MNIST (8,000 / 2,000 digits of the official test set, "
                 "../shared/data/README.md)")
# a smoke budget: every study in seconds, for the tests; the settings shrink the networks
SMOKE = Budget(epochs=1, iwae_samples=2, eval_examples=50, batch_size=100, train_examples=200,
               figures=False,
               settings={"hidden": 16, "layers": [16], "z_dim": 4, "z1_dim": 4, "z2_dim": 4,
                         "truncation": 8, "pseudo_inputs": 5, "rnn_hidden": 16, "embed": 16,
                         "n_train": 64, "n_test": 32, "flow_length": 2})

register(Study(
    name="sbvae-vs-vae",
    title="Gaussian VAE vs stick-breaking VAE: likelihood and kNN error of the codes",
    source="seed 000 (Nalisnick & Smyth 2017, Table: full MNIST NLL and kNN error, k = 3/5/10)",
    protocol=OFFLINE_MNIST + ", grey levels with the Bernoulli cross-entropy, lr 1e-3, batch "
             "100, same architecture (500 hidden units, 50 latent dimensions / sticks)",
    runs=(StudyRun("vae", "vae", "elbo"), StudyRun("sbvae", "sbvae", "meanfield"),
          StudyRun("sbvae, paper's KL series", "sbvae", "meanfield",
                   settings={"kl_terms": 10})),
    metrics=(NEG_ELBO, NLL, *KNN, ACTIVE_DIMS),
    budgets={"smoke": SMOKE, "cpu": Budget(epochs=60, iwae_samples=5000),
             "paper": Budget(epochs=1000, iwae_samples=5000, settings={"protocol": "full"})},
    published={"vae": {"nll": 96.80, "knn_3": 28.4, "knn_5": 20.96, "knn_10": 15.33},
               "sbvae": {"nll": 98.01, "knn_3": 9.34, "knn_5": 8.65, "knn_10": 8.90},
               "sbvae, paper's KL series": {"nll": 98.01, "knn_3": 9.34, "knn_5": 8.65,
                                            "knn_10": 8.90}},
    knn=True, lr=1e-3,
    note="The published numbers are on full MNIST (50,000 training digits, early stopping). "
         "The third run uses the paper's 10-term Taylor series for KL(Kumaraswamy || Beta), "
         "which understates the KL, so its -ELBO is not a true bound; its NLL (IWAE) does not "
         "use the KL and is comparable."))

register(Study(
    name="mixture-priors",
    title="Mixture priors (DLGMM, DLDPM) against the Gaussian and stick-breaking VAE",
    source="seed 000 (Nalisnick et al. 2016, full MNIST NLL and kNN error)",
    protocol=OFFLINE_MNIST + ", grey levels, lr 1e-3, batch 100; the component summed out of "
             "the ELBO (`sum`, the seed's estimator) or of the prior's density (`enumerate`)",
    runs=(StudyRun("vae", "vae"), StudyRun("sbvae", "sbvae"),
          StudyRun("dlgmm (sum)", "dlgmm", settings={"marginalize": "sum"}),
          StudyRun("dlgmm (enumerate)", "dlgmm", settings={"marginalize": "enumerate"}),
          StudyRun("dldpm (sum)", "dldpm", settings={"marginalize": "sum"}),
          StudyRun("dldpm (enumerate)", "dldpm", settings={"marginalize": "enumerate"})),
    metrics=(NLL, *KNN),
    budgets={"smoke": SMOKE, "cpu": Budget(epochs=15, iwae_samples=500, eval_examples=1000),
             "paper": Budget(epochs=1000, iwae_samples=5000, settings={"protocol": "full"})},
    published={"vae": {"nll": 96.80, "knn_3": 28.4, "knn_5": 20.96, "knn_10": 15.33},
               "sbvae": {"nll": 98.01, "knn_3": 9.34, "knn_5": 8.65, "knn_10": 8.90},
               "dlgmm (sum)": {"nll": 96.50, "knn_3": 9.14, "knn_5": 8.38, "knn_10": 8.42},
               "dldpm (sum)": {"nll": 96.91}},
    knn=True, lr=1e-3))

register(Study(
    name="semi-supervised",
    title="M2 with a Gaussian or a stick-breaking latent, few labels: test classification error",
    source="seed 000 (Nalisnick & Smyth 2017, semi-supervised MNIST: 10 / 5 / 1 % labels)",
    protocol=OFFLINE_MNIST + " with a balanced fraction of the training labels kept, lr 1e-3, "
             "batch 100",
    runs=tuple(StudyRun(f"{name} {100 * fraction:g} %", name, dataset="mnist-ssl",
                        settings={"labelled_fraction": fraction})
               for name in ("m2", "sb-m2") for fraction in (0.1, 0.05, 0.01)),
    metrics=(Metric("test_error", "test error (%)", ("test_error",), scale=100.0), NLL),
    budgets={"smoke": SMOKE, "cpu": Budget(epochs=3, iwae_samples=100, eval_examples=None),
             "paper": Budget(epochs=500, iwae_samples=100, settings={"protocol": "full"})},
    published={"m2 10 %": {"test_error": 3.95}, "m2 5 %": {"test_error": 4.74},
               "m2 1 %": {"test_error": 11.55}, "sb-m2 10 %": {"test_error": 4.86},
               "sb-m2 5 %": {"test_error": 5.29}, "sb-m2 1 %": {"test_error": 7.34}},
    lr=1e-3))


def _flows_and_priors(dataset: str, epochs: int, published: dict) -> Study:
    small = {"z_dim": 16, "hidden": 128}
    runs = (StudyRun("VAE", "vae", settings=small),
            *(StudyRun(label, "vae-flow", settings={**small, "flow": flow, "flow_length": 4})
              for label, flow in (("planar", "planar"), ("IAF", "iaf"),
                                  ("Householder", "householder"), ("O-SNF", "sylvester-o"),
                                  ("H-SNF", "sylvester-h"), ("T-SNF", "sylvester-t"))),
            StudyRun("VampPrior", "vamp-vae", settings={**small, "pseudo_inputs": 100}),
            StudyRun("HVAE + VampPrior", "vamp-hvae",
                     settings={"z1_dim": 16, "z2_dim": 16, "hidden": 128, "pseudo_inputs": 100}))
    if dataset == "mnist":
        runs = tuple(StudyRun(r.label, r.model, r.objective, "mnist",
                              {**r.settings, "binarize": "dynamic"}) for r in runs)
        protocol = OFFLINE_MNIST + ", dynamic binarization"
    else:
        runs = tuple(StudyRun(r.label, r.model, r.objective, "freyfaces", r.settings)
                     for r in runs)
        protocol = ("Frey faces (1,965 faces, 20x28, Gaussian likelihood on [0, 1] pixels, "
                    "so nats per image of a continuous density, not the papers' discretized "
                    "numbers)")
    return Study(
        name=f"flows-and-priors-{dataset}",
        title=f"Flow posteriors and the VampPrior against the VAE ({dataset})",
        source="seed 001 (Sylvester flows, van den Berg et al. 2018; VampPrior, Tomczak & "
               "Welling 2018: dynamic MNIST NLL)",
        protocol=protocol + ", every model with 16 latent dimensions, 128 hidden units, lr "
                            "1e-3, batch 100, flows of length 4, 100 pseudo-inputs",
        runs=runs, metrics=(NEG_ELBO, NLL),
        budgets={"smoke": SMOKE,
                 "cpu": Budget(epochs=epochs, iwae_samples=200, eval_examples=500),
                 "paper": Budget(epochs=2000, iwae_samples=5000)},
        published=published, lr=1e-3,
        note="Published ordering: Sylvester flows best, then IAF / planar, then the VAE; the "
             "VampPrior gains 2-3 nats over the VAE, the two-level HVAE more. The papers use "
             "40-64 latent dimensions and 300 hidden units: the values are for orientation.")


register(_flows_and_priors("mnist", 5, {"VAE": {"nll": 84.50}, "VampPrior": {"nll": 82.38},
                                        "HVAE + VampPrior": {"nll": 81.24}}))
register(_flows_and_priors("freyfaces", 30, {}))


def _sbn_inference(name: str, layers: list[int], epochs: int) -> Study:
    objectives = (("rws:particles=50", "rws", {"particles": 50}),
                  ("rws:particles=5", "rws", {"particles": 5}),
                  ("wake-sleep", "wake-sleep", {}), ("nvil", "nvil", {}),
                  ("prior-is:particles=50", "prior-is", {"particles": 50}))
    return Study(
        name=name,
        title=f"Inference algorithms for a sigmoid belief net with layers {layers}",
        source="seed 004 (reweighted wake-sleep, Bornschein & Bengio 2015: the ordering RWS "
               "K = 50 < RWS K = 5 < wake-sleep; the seeds give no values)",
        protocol=OFFLINE_MNIST + ", dynamic binarization, lr 1e-3, batch 100; NLL = -IWAE-500 "
                                 "with the guide as proposal on 1,000 held-out digits",
        runs=tuple(StudyRun(label, "sbn", objective,
                            settings={"layers": layers, "binarize": "dynamic", **options})
                   for label, objective, options in objectives),
        metrics=(NLL, NEG_ELBO),
        budgets={"smoke": SMOKE,
                 "cpu": Budget(epochs=epochs, iwae_samples=500, eval_examples=1000),
                 "paper": Budget(epochs=1000, iwae_samples=5000, settings={"protocol": "full"})},
        lr=1e-3,
        note="The guide-gradient variance of each objective is measured by `pyro-dgm compare` "
             "(README, Benchmarks).")


register(_sbn_inference("sbn-inference", [200], 20))
register(_sbn_inference("sbn3-inference", [200, 200, 200], 10))

register(Study(
    name="air-counting",
    title="AIR counts digits on multi-MNIST",
    source="seed 004 (Eslami et al. 2016: about 98 % count accuracy on 0-2 digit canvases)",
    protocol="multi-MNIST: 50x50 canvases of 0-2 digits from the offline MNIST split, 10,000 "
             "training and 1,000 held-out canvases, digits whose strokes would land on each "
             "other redrawn; count accuracy of the guide's most probable scene",
    runs=(StudyRun("count-enum", "air", "count-enum", "multi-mnist"),),
    metrics=(Metric("count_accuracy", "count accuracy (%)", ("count_accuracy",), scale=100.0),
             NLL),
    budgets={"smoke": SMOKE, "cpu": Budget(seconds=600, iwae_samples=10),
             "paper": Budget(epochs=100, iwae_samples=100)},
    published={"count-enum": {"count_accuracy": 98.0}}))
