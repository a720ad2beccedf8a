"""Benchmark: the DP-VAE (DLGMM, DLDPM) against the VAE and SB-VAE, and M2 / SB-M2 with few labels.

Seed ``000``: on full MNIST, DLGMM kNN error 9.14 / 8.38 / 8.42 % (k = 3 / 5 / 10), NLL DLGMM
96.50, DLDPM 96.91; semi-supervised test error with 10 / 5 / 1 % labels: SB-DGM 4.86 / 5.29 /
7.34 %, Gauss-DGM 3.95 / 4.74 / 11.55 %, kNN on pixels 6.13 / 7.66 / 15.27 %.

Part ``unsupervised`` trains ``vae``, ``sbvae``, and ``dlgmm`` / ``dldpm`` with both
marginalizations (``enumerate``: the component summed out in the prior density, one decoder
pass; ``sum``: the seed's estimator, one decoder pass per component) through the CLI with the
same epochs, lr and batch, then evaluates each with IWAE-k and kNN on the codes. Part ``semi``
trains ``m2`` and ``sb-m2`` on ``mnist-ssl`` with each labelled fraction and reads the test
classification error; the kNN baseline classifies test pixels with the labelled examples only.
Everything is on the offline MNIST split (8,000 / 2,000 test digits), not full MNIST.
Writes ``OUT/<part>.md`` and ``OUT/<part>.json``. ``--hidden``, ``--batch-size`` and
``--fractions`` shrink a run (the test suite's smoke run); the defaults are the published ones.

    python benchmarks/dpvae_and_ssvae.py --part unsupervised --epochs 6 --iwae-samples 500 --iwae-test 1000
    python benchmarks/dpvae_and_ssvae.py --part semi --semi-epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

import pyro

from pyro_dgm import load_run
from pyro_dgm.cli import main as cli
from pyro_dgm.data import load_dataset
from pyro_dgm.data.semi_supervised import balanced_labelled_mask
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import encode_all, evaluate, knn_error

UNSUPERVISED = (  # (label, zoo model, --set overrides)
    ("vae", "vae", []),
    ("sbvae", "sbvae", []),
    ("dlgmm (enumerate)", "dlgmm", ["marginalize=enumerate"]),
    ("dlgmm (sum)", "dlgmm", ["marginalize=sum"]),
    ("dldpm (enumerate)", "dldpm", ["marginalize=enumerate"]),
    ("dldpm (sum)", "dldpm", ["marginalize=sum"]),
)
SEED_UNSUPERVISED = {"vae": "96.80; 28.4/20.96/15.33", "sbvae": "98.01; 9.34/8.65/8.90",
                     "dlgmm": "96.50; 9.14/8.38/8.42", "dldpm": "96.91; -"}
FRACTIONS = (0.1, 0.05, 0.01)
MODELS = ("vae", "sbvae", "dlgmm", "dldpm", "m2", "sb-m2")
NONE_SELECTED = "(no model of this part in --models)\n"
SEED_SEMI = {"m2": (3.95, 4.74, 11.55), "sb-m2": (4.86, 5.29, 7.34), "knn": (6.13, 7.66, 15.27)}


def run_cli(model: str, dataset: str, settings: list[str], epochs: int, args, run_dir: Path,
            extra: list[str] = ()) -> dict:
    command = ["train", model, "--dataset", dataset, "--epochs", str(epochs), "--lr",
               str(args.lr), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
               "--out", str(run_dir), "--overwrite", "--quiet", "--set", "protocol=offline", *extra]
    for setting in settings + hidden_setting(args):
        command += ["--set", setting]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    status = cli(command)
    if status != 0:  # the CLI has printed its one-sentence error
        sys.exit(status)
    return json.loads((run_dir / "metrics.json").read_text())


def unsupervised(args) -> tuple[list[dict], str]:
    rows = []
    for label, model, settings in UNSUPERVISED:
        if model not in args.models:
            continue
        run_dir = Path(args.out) / label.replace(" ", "").replace("(", "-").replace(")", "")
        metrics = run_cli(model, "mnist", settings, args.epochs, args, run_dir,
                          ["--eval-samples", str(args.eval_samples)])
        evaluation = evaluate_run(run_dir, args)
        (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=2) + "\n")
        rows.append({"label": label, "model": model, "objective": metrics["objective"],
                     "epochs": metrics["epochs"], "seconds_per_epoch": metrics["seconds_per_epoch"],
                     "final_train_loss": metrics["history"][-1]["loss"], **evaluation})
    if not rows:
        return rows, NONE_SELECTED
    k = args.iwae_samples
    lines = [f"| model | objective | epochs | train loss | test -ELBO | NLL (IWAE-{k}, "
             f"{rows[0]['iwae_test_examples']} test digits) | kNN k=3 "
             f"| k=5 | k=10 | active dims | s/epoch | seed (full MNIST): NLL; kNN % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        knn = r["knn_error"]
        lines.append(f"| {r['label']} | {r['objective']} | {r['epochs']} | {r['final_train_loss']:.2f} "
                     f"| {-r['test_elbo']:.2f} | {r['nll']['value']:.2f} | {100 * knn['3']:.2f} % "
                     f"| {100 * knn['5']:.2f} % | {100 * knn['10']:.2f} % | {r['active_dims']} "
                     f"| {r['seconds_per_epoch']:.2f} | {SEED_UNSUPERVISED[r['model']]} |")
    return rows, "\n".join(lines) + "\n"


def evaluate_run(run_dir: Path, args) -> dict:
    """IWAE-k on the first ``--iwae-test`` test digits; kNN on the codes of all test digits."""
    run = load_run(run_dir)
    model, guide, train, test = run.model, run.guide, run.train, run.test
    subset = dataclasses.replace(test, x=test.x[:args.iwae_test], y=test.y[:args.iwae_test])
    metrics = evaluate(model, guide, subset, train, iwae_samples=args.iwae_samples, knn=False,
                       seed=args.seed)
    metrics["iwae_test_examples"] = subset.n
    metrics["knn_error"] = knn_error(encode_all(guide.encode, train.x), train.y,
                                     encode_all(guide.encode, test.x), test.y)
    return metrics


def speed(args) -> tuple[list[dict], str]:
    """Seconds per epoch (80 steps of 100 digits) of each variant, steps interleaved in rounds so
    that a changing machine load hits every variant alike; median over rounds."""
    import statistics
    import time

    from pyro_dgm.infer import Trainer
    from pyro_dgm.zoo import get_entry

    train = load_dataset("mnist", "train", data_dir=args.data_dir, protocol="offline")
    batch = train.x[:100]
    variants = [(f"{name} ({marginalize}, T={components})", name,
                 {"marginalize": marginalize, "components": components})
                for name, components in (("dlgmm", 3), ("dldpm", 17))
                for marginalize in ("enumerate", "sum")]
    variants = [v for v in [("vae", "vae", {}), *variants] if v[1] in args.models]
    trainers = []
    for label, name, overrides in variants:
        entry = get_entry(name)
        hidden = {"hidden": args.hidden} if args.hidden else {}
        model, guide = entry.build(entry.hyper({**overrides, **hidden}), train)
        trainers.append(Trainer(model, guide, entry.objective, lr=args.lr, progress=False))
        trainers[-1].step(batch)  # warm-up (the Trainer clears the param store; keep each alive)
    times = {label: [] for label, _, _ in variants}
    for _ in range(args.speed_rounds):
        for (label, _, _), trainer in zip(variants, trainers):
            pyro.clear_param_store()  # the models share site names; let each register its own
            trainer.step(batch)
            started = time.perf_counter()
            for _ in range(5):
                trainer.step(batch)
            times[label].append((time.perf_counter() - started) / 5)
    rows = [{"variant": label, "seconds_per_step": statistics.median(times[label]),
             "seconds_per_epoch": 80 * statistics.median(times[label])} for label in times]
    if not rows:
        return rows, NONE_SELECTED
    lines = [f"| variant | s/step (median) | s/epoch (80 steps) | vs {rows[0]['variant']} |",
             "|---|---|---|---|"]
    base = rows[0]["seconds_per_step"]
    lines += [f"| {r['variant']} | {r['seconds_per_step']:.3f} | {r['seconds_per_epoch']:.1f} "
              f"| {r['seconds_per_step'] / base:.1f}x |" for r in rows]
    return rows, "\n".join(lines) + "\n"


def pixel_knn(args) -> list[dict]:
    """kNN on raw pixels, using only the labelled training examples of each fraction."""
    train = load_dataset("mnist", "train", data_dir=args.data_dir, protocol="offline")
    test = load_dataset("mnist", "test", data_dir=args.data_dir, protocol="offline")
    rows = []
    for fraction in args.fractions:
        mask = balanced_labelled_mask(train.y, fraction, args.seed)
        errors = knn_error(train.x[mask], train.y[mask], test.x, test.y, ks=(1, 3, 5))
        rows.append({"model": "knn", "fraction": fraction, "n_labelled": int(mask.sum()),
                     "test_error": errors["3"], "knn_error": errors})
    return rows


def semi(args) -> tuple[list[dict], str]:
    rows = pixel_knn(args)
    for fraction in args.fractions:
        for model in [m for m in ("m2", "sb-m2") if m in args.models]:
            run_dir = Path(args.out) / f"{model}-{fraction}"
            metrics = run_cli(model, "mnist-ssl", [f"labelled_fraction={fraction}"],
                              args.semi_epochs, args, run_dir,
                              ["--eval-samples", str(args.eval_samples)])
            rows.append({"model": model, "fraction": fraction,
                         "n_labelled": metrics["data"]["n_labelled"],
                         "test_error": metrics["test_error"], "test_elbo": metrics["test_elbo"],
                         "epochs": metrics["epochs"],
                         "seconds_per_epoch": metrics["seconds_per_epoch"]})
    fractions = args.fractions
    lines = ["| model | " + " | ".join(f"{100 * f:g} % labels" for f in fractions)
             + " | s/epoch | seed (full MNIST) 10 / 5 / 1 % |",
             "|---|" + "---|" * len(fractions) + "---|---|"]
    for model in [m for m in ("m2", "sb-m2", "knn") if m in args.models or m == "knn"]:
        mine = {r["fraction"]: r for r in rows if r["model"] == model}
        cells = [f"{100 * mine[f]['test_error']:.2f} % ({mine[f]['n_labelled']})" for f in fractions]
        speed = (f"{sum(mine[f]['seconds_per_epoch'] for f in fractions) / len(fractions):.1f}"
                 if model != "knn" else "-")
        name = {"m2": "m2 (Gauss-DGM)", "sb-m2": "sb-m2 (SB-DGM)", "knn": "kNN k=3, pixels"}[model]
        lines.append(f"| {name} | {' | '.join(cells)} | {speed} "
                     f"| {' / '.join(str(v) for v in SEED_SEMI[model])} % |")
    return rows, "\n".join(lines) + "\n(number of labelled training examples in brackets)\n"


def hidden_setting(args) -> list[str]:
    """The ``--set`` that gives every model ``--hidden`` units (none: the zoo's defaults)."""
    return [f"hidden={args.hidden}"] if args.hidden else []


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"0.1,0.05"`` -> ``(0.1, 0.05)``: labelled fractions, each in (0, 1]."""
    try:
        fractions = tuple(float(f) for f in text.split(","))
    except ValueError:
        fractions = ()
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise PyroDGMError(f"--fractions takes comma-separated numbers in (0, 1], got {text!r}")
    return fractions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["unsupervised", "semi", "speed", "all"], default="all")
    parser.add_argument("--speed-rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the unsupervised models")
    parser.add_argument("--semi-epochs", type=int, default=3, help="epochs of m2 / sb-m2")
    parser.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS),
                        help="labelled fractions of the semi part, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="zoo models to run, comma-separated (default all)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=None,
                        help="hidden units of every model (default: the zoo's, 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-samples", type=int, default=10,
                        help="importance samples for the test ELBO of each training run")
    parser.add_argument("--iwae-samples", type=int, default=500)
    parser.add_argument("--iwae-test", type=int, default=2000,
                        help="test digits for the IWAE bound (kNN always uses all of them)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/bench-dpvae-ssvae")
    args = parser.parse_args(argv)
    try:
        run(args)
    except PyroDGMError as error:
        parser.exit(2, f"error: {error}\n")


def run(args) -> None:
    args.fractions = parse_fractions(args.fractions)
    args.models = args.models.split(",")
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        raise PyroDGMError(f"unknown model {', '.join(unknown)} in --models; this benchmark "
                           f"runs {', '.join(MODELS)}")
    if min(args.epochs, args.semi_epochs, args.speed_rounds, args.iwae_test) < 1:
        raise PyroDGMError("--epochs, --semi-epochs, --speed-rounds and --iwae-test must be "
                           "at least 1")
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = {"unsupervised": unsupervised, "semi": semi, "speed": speed}
    for name in (parts if args.part == "all" else [args.part]):
        rows, table = parts[name](args)
        (out / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")
        (out / f"{name}.md").write_text(table)
        print(table, flush=True)


if __name__ == "__main__":
    main()
