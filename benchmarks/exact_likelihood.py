"""Benchmark: exact-likelihood models (NADE, a normalizing flow) beside the VAE on offline MNIST.

The question of issue 15 and seeds ``000``-``004``: how much does a latent variable buy over an
exact density? One seed and the same budget (epochs, batch size) for

- ``nade`` (500 hidden units) on dynamically binarized digits: the exact NLL;
- ``vae`` (500 hidden, 50 latent) on the same binarized digits: the IWAE-k NLL estimate;
- ``flow`` (RealNVP, 6 coupling layers) on the 8-bit grey levels: the dequantized NLL in nats
  and bits per dimension (a different, continuous task: its nats do not compare with the
  binary ones).

Each is one :class:`pyro_dgm.Experiment` (``make_config``) scored by its zoo entry's
``evaluate`` on the held-out digits (binarized once, seed 0). Published numbers of the seeds
(full MNIST, far larger budgets) are printed beside the measured ones, for orientation only:
the offline protocol trains on 8,000 and tests on 2,000 digits of the MNIST test set.

    python benchmarks/exact_likelihood.py --epochs 15 --iwae-samples 1000 --out runs/exact
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from pyro_dgm.errors import PyroDGMError, run_or_exit
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.tables import markdown_table, published_table, write_tables

MODELS = {  # name -> (data settings, what its nll is)
    "nade": ({"binarize": "dynamic"}, "exact NLL, binarized"),
    "vae": ({"binarize": "dynamic"}, "IWAE-{k} NLL, binarized"),
    "flow": ({}, "dequantized NLL, 8-bit grey levels"),
}
PUBLISHED = [  # (model, NLL in nats, source)
    ("NADE", "88.33", "Larochelle & Murray 2011 (binarized MNIST)"),
    ("EoNADE", "84.68", "seed 000, SB-RNN table"),
    ("DARN", "≈ 84.13", "seed 000, SB-RNN table"),
    ("DLGM", "≈ 85.51", "seed 000, SB-RNN table"),
    ("PixelCNN", "81.30", "seed 000, SB-RNN table"),
    ("VAE (L=1)", "88.56 / 84.50", "seed 001, VampPrior table (static / dynamic MNIST)"),
]


def train_and_evaluate(model: str, args) -> dict:
    """One run: train ``model`` for the common budget, then its entry's ``evaluate``."""
    data_settings, method = MODELS[model]
    settings = {**data_settings, "protocol": "offline"}
    if args.hidden:
        settings["hidden"] = args.hidden
    config = make_config(model, dataset="mnist", epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, seed=args.seed, data_dir=args.data_dir, settings=settings)
    experiment = Experiment(config)
    experiment.train()
    train, test = experiment.data
    test = test if args.n_test is None else _head(test, args.n_test)
    started = time.perf_counter()
    evaluation = experiment.entry.evaluate(experiment.model, experiment.guide, test, train,
                                           iwae_samples=args.iwae_samples, knn=False, seed=0)
    seconds = sum(h["seconds"] for h in experiment.history)
    return {"model": model, "nll": evaluation["nll"],
            "nll_method": evaluation.get("nll_method", "iwae"),
            "what": method.format(k=args.iwae_samples),
            "bits_per_dim": evaluation.get("bits_per_dim"), "test_elbo": evaluation["test_elbo"],
            "epochs": len(experiment.history), "lr": config["lr"], "seconds_per_epoch": seconds / max(args.epochs, 1),
            "eval_seconds": time.perf_counter() - started, "n_test": len(test)}


def _head(data, n: int):
    """The first ``n`` examples of ``data``."""
    return dataclasses.replace(data, x=data.x[:n], y=None if data.y is None else data.y[:n])


def table(rows: list[dict]) -> str:
    header = ["model", "what", "NLL (nats)", "bits/dim", "test -ELBO", "lr", "s/epoch"]
    return markdown_table(header, [
        [r["model"], r["what"], f"{r['nll']['value']:.2f}",
         f"{r['bits_per_dim']:.3f}" if r["bits_per_dim"] is not None else "-",
         f"{-r['test_elbo']:.2f}", f"{r['lr']:g}", f"{r['seconds_per_epoch']:.1f}"]
        for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of every model (default: each zoo entry's: 1e-3 for "
                             "NADE and the VAE, 3e-4 for the flow, which diverges at 1e-3)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iwae-samples", type=int, default=1000,
                        help="importance samples of the VAE's NLL estimate")
    parser.add_argument("--hidden", type=int, default=None,
                        help="hidden units of every model (default: each zoo entry's)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="score only the first N held-out digits (default: all 2,000)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {','.join(MODELS)} (default all)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/exact-likelihood")
    run_or_exit(parser, run, argv)


def run(args) -> None:
    if min(args.epochs, args.iwae_samples, args.batch_size) < 1 or (
            args.n_test is not None and args.n_test < 1) or (args.lr is not None and args.lr <= 0):
        raise PyroDGMError(f"--epochs, --iwae-samples, --batch-size, --n-test and --lr must be "
                           f"positive, got {args.epochs}, {args.iwae_samples}, "
                           f"{args.batch_size}, {args.n_test} and {args.lr}")
    models = args.models.split(",")
    if set(models) - set(MODELS):
        raise PyroDGMError(f"--models takes names from {', '.join(MODELS)}, got {args.models!r}")
    rows = [train_and_evaluate(model, args) for model in models]
    write_tables(args.out, rows, table(rows) + "\n" + published_table("NLL (nats)", PUBLISHED))


if __name__ == "__main__":
    main()
