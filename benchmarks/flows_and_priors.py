"""Benchmark: flow guides and the VampPrior against the plain VAE, on Frey faces and offline MNIST.

Seed ``001``'s tables (Sylvester flows, van den Berg et al. 2018; VampPrior, Tomczak & Welling
2018) give the published ordering: Sylvester flows best, then IAF / planar, then the VAE; the
VampPrior improves the VAE by about 2-3 nats on MNIST, and the HVAE (L = 2) more.

Every model gets the same budget (epochs, lr, batch, latent size, hidden width) and is
scored on the first ``--n-test`` held-out examples by the ELBO and the IWAE-k bound, with the
guide as proposal (:func:`pyro_dgm.infer.log_likelihood_bounds`); mean ± std over ``--seeds``.
MNIST is the offline protocol (8,000 / 2,000 test digits), dynamically binarized for training
and binarized once for evaluation; Frey faces has a Gaussian likelihood on [0, 1] pixels, so its
nats are per image of a continuous density (not the papers' discretized numbers).

    python benchmarks/flows_and_priors.py --dataset freyfaces --out runs/flows   # one data set
    python benchmarks/flows_and_priors.py --dataset mnist --out runs/flows
    python benchmarks/flows_and_priors.py --report --out runs/flows             # table + figure

``--dataset`` and ``--report`` together run the data set, then write the table and figure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer
from pyro_dgm.infer.estimators import log_likelihood_bounds
from pyro_dgm.zoo import get_entry

MODELS = (  # (label, zoo entry, extra hyper-parameters)
    ("VAE", "vae", {}),
    ("planar", "vae-flow", {"flow": "planar"}),
    ("IAF", "vae-flow", {"flow": "iaf"}),
    ("Householder", "vae-flow", {"flow": "householder"}),
    ("O-SNF", "vae-flow", {"flow": "sylvester-o"}),
    ("H-SNF", "vae-flow", {"flow": "sylvester-h"}),
    ("T-SNF", "vae-flow", {"flow": "sylvester-t"}),
    ("VampPrior", "vamp-vae", {}),
    ("HVAE + VampPrior", "vamp-hvae", {}),
)
SEED_TABLE = {  # seed 001: Freyfaces -ELBO / NLL (Sylvester paper); MNIST NLL (VampPrior paper)
    "VAE": "4.53 / 4.40 ; dyn. MNIST 84.50", "planar": "4.40 / 4.31", "IAF": "4.47 / 4.38",
    "O-SNF": "4.51 / 4.39", "H-SNF": "4.46 / 4.35", "T-SNF": "4.45 / 4.35",
    "VampPrior": "Frey 4.57 ; dyn. MNIST 82.38", "HVAE + VampPrior": "Frey 4.51 ; dyn. MNIST 81.24",
    "Householder": "-",
}


def hyper_for(entry_name: str, extra: dict, args) -> dict:
    if entry_name == "vae":
        hyper = {"z_dim": args.z_dim, "hidden": args.hidden}
    elif entry_name == "vae-flow":
        hyper = {"z_dim": args.z_dim, "hidden": args.hidden, "flow_length": args.flow_length}
    elif entry_name == "vamp-vae":
        hyper = {"z_dim": args.z_dim, "hidden": args.hidden, "pseudo_inputs": args.pseudo_inputs}
    else:
        hyper = {"z1_dim": args.z_dim, "z2_dim": args.z_dim, "hidden": args.hidden,
                 "pseudo_inputs": args.pseudo_inputs}
    return {**hyper, **extra}


def load(dataset: str, args):
    options = {"protocol": "offline", "binarize": "dynamic"} if dataset == "mnist" else {}
    return tuple(load_dataset(dataset, split, data_dir=args.data_dir, **options)
                 for split in ("train", "test"))


def run_one(label: str, entry_name: str, extra: dict, dataset: str, seed: int, train, test,
            args) -> dict:
    entry = get_entry(entry_name)
    torch.manual_seed(seed)
    model, guide = entry.build(entry.hyper(hyper_for(entry_name, extra, args)), train)
    trainer = Trainer(model, guide, "elbo", lr=args.lr, batch_size=100, seed=seed, progress=False)
    epochs = args.epochs_mnist if dataset == "mnist" else args.epochs_frey
    started = time.perf_counter()
    history = trainer.fit(train, epochs)
    seconds = time.perf_counter() - started
    torch.manual_seed(1000 + seed)
    x = test.observed(args.n_test, seed=1000 + seed)
    elbo, iwae = log_likelihood_bounds(model, guide, x, num_samples=args.iwae_samples,
                                       batch_size=50)
    return {"model": label, "dataset": dataset, "seed": seed, "epochs": epochs,
            "train_loss": history[-1]["loss"], "neg_elbo": -elbo.mean().item(),
            "nll": -iwae.mean().item(), "train_seconds": seconds}


def run_dataset(args) -> None:
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.dataset}.json"
    results = json.loads(path.read_text()) if path.exists() else []
    done = {(r["model"], r["seed"]) for r in results}
    train, test = load(args.dataset, args)
    for seed in range(args.seeds):
        for label, entry_name, extra in MODELS:
            if (label, seed) in done or (args.only and label not in args.only):
                continue
            result = run_one(label, entry_name, extra, args.dataset, seed, train, test, args)
            results.append(result)
            path.write_text(json.dumps(results, indent=1))
            print(f"{args.dataset} seed {seed} {label:18s} -ELBO {result['neg_elbo']:9.2f}  "
                  f"NLL {result['nll']:9.2f}  ({result['train_seconds']:.0f} s)", flush=True)


def summarize(results: list[dict]) -> dict:
    table: dict = {}
    for r in results:
        table.setdefault((r["dataset"], r["model"]), []).append(r)
    summary = {}
    for key, runs in table.items():
        neg_elbo = torch.tensor([r["neg_elbo"] for r in runs])
        nll = torch.tensor([r["nll"] for r in runs])
        std = (lambda t: t.std().item() if len(t) > 1 else float("nan"))
        summary[key] = {"neg_elbo": (neg_elbo.mean().item(), std(neg_elbo)),
                        "nll": (nll.mean().item(), std(nll)), "seeds": len(runs),
                        "seconds": sum(r["train_seconds"] for r in runs) / len(runs)}
    return summary


def report(args) -> None:
    out = Path(args.out)
    results = [r for name in ("freyfaces", "mnist") if (out / f"{name}.json").exists()
               for r in json.loads((out / f"{name}.json").read_text())]
    summary = summarize(results)
    datasets = [d for d in ("freyfaces", "mnist") if any(k[0] == d for k in summary)]
    lines = ["| model | " + " | ".join(f"{d} -ELBO | {d} NLL" for d in datasets)
             + " | seed 001 (published) |",
             "|---|" + "---|---|" * len(datasets) + "---|"]
    for label, _, _ in MODELS:
        cells = []
        for d in datasets:
            s = summary.get((d, label))
            cells += ([f"{s['neg_elbo'][0]:.2f} ± {s['neg_elbo'][1]:.2f}",
                       f"{s['nll'][0]:.2f} ± {s['nll'][1]:.2f}"] if s else ["-", "-"])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {SEED_TABLE[label]} |")
    seeds = {d: max((s["seeds"] for k, s in summary.items() if k[0] == d), default=0)
             for d in datasets}
    lines.append("")
    lines.append("nats per example, mean ± std over seeds " + str(seeds)
                 + "; NLL = -IWAE-k (k in the benchmark command).")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    figure(summary, datasets, out / "flows_and_priors.png")


def figure(summary: dict, datasets: list[str], path: Path) -> None:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5 * len(datasets), 3.8), layout="constrained")
    labels = [label for label, _, _ in MODELS]
    for i, d in enumerate(datasets):
        ax = fig.add_subplot(1, len(datasets), i + 1)
        for j, (key, marker) in enumerate((("neg_elbo", "o"), ("nll", "s"))):
            ys = [summary.get((d, m), {key: (float("nan"), 0)})[key] for m in labels]
            ax.errorbar([k + 0.15 * j for k in range(len(labels))], [y[0] for y in ys],
                        yerr=[y[1] for y in ys], fmt=marker, capsize=3,
                        label="-ELBO" if key == "neg_elbo" else "NLL (IWAE-k)")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_ylabel("nats per example (lower is better)")
        ax.set_title(d)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("freyfaces", "mnist"))
    parser.add_argument("--report", action="store_true", help="write table.md and the figure")
    parser.add_argument("--out", default="runs/flows_and_priors")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs-mnist", type=int, default=5)
    parser.add_argument("--epochs-frey", type=int, default=30)
    parser.add_argument("--z-dim", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--flow-length", type=int, default=4)
    parser.add_argument("--pseudo-inputs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--iwae-samples", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--only", nargs="*", help="model labels to run (default all)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except PyroDGMError as error:
        parser.exit(2, f"error: {error}\n")


def run(args) -> None:
    if not (args.dataset or args.report):
        raise PyroDGMError("give --dataset, --report or both")
    unknown = sorted(set(args.only or []) - {label for label, _, _ in MODELS})
    if unknown:
        raise PyroDGMError(f"unknown model {', '.join(unknown)} in --only; the labels are "
                           f"{', '.join(label for label, _, _ in MODELS)}")
    if min(args.seeds, args.epochs_mnist, args.epochs_frey, args.n_test) < 1:
        raise PyroDGMError("--seeds, --epochs-mnist, --epochs-frey and --n-test must be at "
                           "least 1")
    if args.dataset:
        run_dataset(args)
    if args.report:
        report(args)


if __name__ == "__main__":
    main()
