"""Issue 5's comparison: one model, several inference algorithms, the same estimator.

Runs :func:`pyro_dgm.compare.compare` (what ``pyro-dgm compare`` runs) on offline MNIST for

- ``sbn1``: a sigmoid belief net with one layer of 200 binary latents,
- ``sbn3``: three layers, 200-200-200,

under reweighted wake-sleep (K = 5 and 50), wake-sleep, NVIL and importance sampling from the
prior; and

- ``vae``: the Gaussian VAE under ``Trace_ELBO`` and the IWAE bound with k = 1, 5, 50,

and writes one folder per study (``compare.md``, ``compare.csv``, figures). Published ordering
to check (Bornschein & Bengio 2015): RWS beats wake-sleep and more particles help.

    python benchmarks/inference_algorithms.py --study sbn1 --epochs 20 --out runs/bench-sbn1
"""

from __future__ import annotations

import argparse
import time

import torch

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.compare import compare, parse_seeds

STUDIES = {
    "sbn1": ("sbn", {"layers": [200]},
             ["rws:particles=5", "rws:particles=50", "wake-sleep", "nvil", "prior-is:particles=50"]),
    "sbn3": ("sbn", {"layers": [200, 200, 200]},
             ["rws:particles=5", "rws:particles=50", "wake-sleep", "nvil", "prior-is:particles=50"]),
    "vae": ("vae", {}, ["elbo", "iwae:particles=1", "iwae:particles=5", "iwae:particles=50"]),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=sorted(STUDIES), required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=None,
                        help="budget in seconds of training per run instead of --epochs")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--iwae-samples", type=int, default=500)
    parser.add_argument("--eval-examples", type=int, default=1000)
    parser.add_argument("--variance-samples", type=int, default=100)
    parser.add_argument("--variance-warmup", type=int, default=3,
                        help="epochs of the first objective before the gradient variance is "
                             "measured (the same point for every objective)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        run(args)
    except PyroDGMError as error:
        parser.exit(2, f"error: {error}\n")


def run(args) -> None:
    torch.set_num_threads(args.threads)
    model, hyper, objectives = STUDIES[args.study]
    binarize = "dynamic" if model == "sbn" else "none"
    budget = ({"seconds": args.seconds} if args.seconds is not None else
              {"epochs": args.epochs, "eval_every": max(1, args.epochs // 5)})
    started = time.perf_counter()
    result = compare(model, objectives, dataset="mnist", hyper=hyper,
                     data_options={"protocol": "offline", "binarize": binarize},
                     seeds=parse_seeds(args.seeds), lr=args.lr, iwae_samples=args.iwae_samples,
                     eval_examples=args.eval_examples, variance_samples=args.variance_samples,
                     variance_warmup=args.variance_warmup, **budget)
    result.write(args.out)
    print(open(f"{args.out}/compare.md").read())
    print(f"wall-clock {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
