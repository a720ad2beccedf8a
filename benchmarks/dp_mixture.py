"""Benchmark: the DP mixture by minibatch SVI (issue 3), Kumaraswamy against Beta stick posteriors.

Three parts, each printed as a table and saved to ``--out`` (JSON and PNG figures):

- ``synthetic``: ``gaussian-clusters`` (2-D, ``--components`` well-separated clusters) with
  ``--n-train`` points (default 10,000); for each stick posterior: the components carrying more
  than 1 % of the posterior mean weight against the truth, the held-out predictive
  log-likelihood per point (on ``--n-test`` held-out points) against the generating density's,
  seconds per epoch;
- ``scale``: seconds per epoch at N = ``--big-n`` (default 100,000; same model, batch
  ``--big-batch``), and what the fit found after ``--big-epochs`` epochs;
- ``mnist``: the offline MNIST test digits (first 8,000 of the protocol's permutation to train,
  last 2,000 held out) projected on the training digits' first two principal components; the
  held-out log-likelihood against one Gaussian, and the components found (fewer than the ten
  digits: the classes overlap in two dimensions).

    python benchmarks/dp_mixture.py --out runs/bench_dp_mixture [--parts synthetic,scale,mnist]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import pyro.distributions as dist

from pyro_dgm import Trainer, load_dataset, plots
from pyro_dgm.errors import PyroDGMError, run_or_exit
from pyro_dgm.data import Dataset
from pyro_dgm.data.synthetic import true_log_density
from pyro_dgm.guides.dp_mixture import DPMixtureGuide
from pyro_dgm.models.dp_mixture import (
    DPMixture,
    components_with_weight,
    fitted_components,
    predictive_log_density,
)

FAMILIES = ("kumaraswamy", "beta")


def fit(train: Dataset, family: str, truncation: int, alpha0: float, batch: int, epochs: int,
        lr: float, seed: int = 0):
    model = DPMixture.from_data(train.x, truncation, alpha0)
    guide = DPMixtureGuide.from_data(train.x, truncation, family, seed=seed)
    trainer = Trainer(model, guide, "meanfield", lr=lr, batch_size=batch, seed=seed, progress=False)
    history = trainer.fit(train, epochs)
    return model, guide, history


def summarize(guide, history, test: Dataset, train: Dataset, figure: Path, title: str) -> dict:
    fitted = fitted_components(guide)
    one_gaussian = dist.Normal(train.x.mean(0), train.x.std(0)).log_prob(test.x).sum(-1).mean()
    row = {"components_with_weight": components_with_weight(fitted["weights"]),
           "test_loglik": predictive_log_density(guide, test.x, 100).mean().item(),
           "one_gaussian_test_loglik": one_gaussian.item(),
           "seconds_per_epoch": sum(h["seconds"] for h in history) / len(history),
           "epochs": len(history), "final_loss": history[-1]["loss"],
           "weights": [round(w, 4) for w in fitted["weights"].tolist()]}
    if "means" in test.info:
        row["true_test_loglik"] = true_log_density(test).mean().item()
        row["true_components"] = int(test.info["means"].shape[0])
    truth = train.info if "means" in train.info else None
    plots.mixture_fit(train.x[:20_000], fitted["weights"], fitted["means"], fitted["scales"],
                      figure, truth=truth, title=title)
    return row


def synthetic(args, n_train: int, batch: int, epochs: int, tag: str) -> dict:
    options = {"n_components": args.components, "separation": args.separation, "seed": args.seed}
    train = load_dataset("gaussian-clusters", "train", n_train=n_train, **options)
    test = load_dataset("gaussian-clusters", "test", n_test=args.n_test, **options)
    results = {}
    for family in FAMILIES:
        _, guide, history = fit(train, family, args.truncation, args.alpha0, batch, epochs, args.lr,
                                args.seed)
        results[family] = summarize(guide, history, test, train,
                                    args.out / f"{tag}_{family}.png", f"{family}, N={n_train}")
        print(tag, family, json.dumps({k: v for k, v in results[family].items() if k != "weights"}),
              flush=True)
    return results


def mnist_projection(data_dir) -> tuple[Dataset, Dataset]:
    """The offline MNIST digits on the training split's first two principal components, scaled
    to unit variance."""
    train = load_dataset("mnist", "train", data_dir=data_dir, protocol="offline")
    test = load_dataset("mnist", "test", data_dir=data_dir, protocol="offline")
    centre = train.x.mean(0)
    _, _, components = torch.linalg.svd(train.x - centre, full_matrices=False)
    project = lambda x: (x - centre) @ components[:2].T  # noqa: E731
    scale = project(train.x).std(0)
    made = [Dataset("mnist-pca2", (project(d.x) / scale).float().contiguous(), d.y, (1, 2),
                    "gaussian", info={"split": d.info.get("split")}) for d in (train, test)]
    return made[0], made[1]


def mnist(args) -> dict:
    train, test = mnist_projection(args.data_dir)
    results = {}
    for family in FAMILIES:
        _, guide, history = fit(train, family, args.truncation, args.alpha0, args.batch,
                                args.mnist_epochs, args.lr, args.seed)
        results[family] = summarize(guide, history, test, train,
                                    args.out / f"mnist_pca2_{family}.png", f"{family}, MNIST PCA-2")
        print("mnist", family, json.dumps({k: v for k, v in results[family].items() if k != "weights"}),
              flush=True)
    return results


PARTS = ("synthetic", "scale", "mnist")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_dp_mixture"))
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=5000,
                        help="held-out points of the synthetic parts")
    parser.add_argument("--components", type=int, default=6)
    parser.add_argument("--separation", type=float, default=6.0)
    parser.add_argument("--truncation", type=int, default=20)
    parser.add_argument("--alpha0", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--big-n", type=int, default=100_000, help="points of the scale part")
    parser.add_argument("--big-batch", type=int, default=1000)
    parser.add_argument("--big-epochs", type=int, default=10)
    parser.add_argument("--mnist-epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    run_or_exit(parser, run, argv)


def check(args) -> list[str]:
    """The parts to run; one sentence for an unknown part or an epoch count below one."""
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise PyroDGMError(f"unknown part {', '.join(unknown)} in --parts; the parts are "
                           f"{', '.join(PARTS)}")
    if min(args.epochs, args.big_epochs, args.mnist_epochs) < 1:
        raise PyroDGMError("--epochs, --big-epochs and --mnist-epochs must be at least 1")
    return parts


def run(args) -> None:
    parts = check(args)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"settings": {k: str(v) for k, v in vars(args).items()}}
    started = time.perf_counter()
    if "synthetic" in parts:
        report["synthetic"] = synthetic(args, args.n_train, args.batch, args.epochs, "synthetic")
    if "scale" in parts:
        report["scale"] = synthetic(args, args.big_n, args.big_batch, args.big_epochs, "scale")
    if "mnist" in parts:
        report["mnist"] = mnist(args)
    report["total_seconds"] = time.perf_counter() - started
    (args.out / "dp_mixture.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| part | stick posterior | N | components (truth) | test loglik | truth / 1 Gaussian | s/epoch |")
    print("|---|---|---|---|---|---|---|")
    for part in PARTS:
        for family, row in report.get(part, {}).items():
            reference = row.get("true_test_loglik", row["one_gaussian_test_loglik"])
            n = {"synthetic": args.n_train, "scale": args.big_n, "mnist": 8000}[part]
            print(f"| {part} | {family} | {n} | {row['components_with_weight']} "
                  f"({row.get('true_components', '-')}) | {row['test_loglik']:.3f} | "
                  f"{reference:.3f} | {row['seconds_per_epoch']:.2f} |")


if __name__ == "__main__":
    main()
