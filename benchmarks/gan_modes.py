"""Benchmark: how many modes the ``gan`` covers, over seeds (toy 8 Gaussians) and on offline MNIST.

Each run is one :class:`pyro_dgm.Experiment` of the ``gan`` zoo entry trained by the
``adversarial`` objective, scored by the entry's ``evaluate`` (mode coverage of seeded samples
against the training data's classes, :mod:`pyro_dgm.zoo.gan`):

- ``toy2d`` with ``shape=mixture`` (8 Gaussians of std 0.2 on the circle of radius 2), the
  configuration of ``tests/test_gan.py`` (z = 4, 128 hidden units in both players, R1 with
  gamma = 10, Adam lr 2e-3, batch 200) for ``--epochs`` epochs, one run per seed: modes covered
  of 8 and the share of samples within 3 std of a mode;
- ``mnist`` (offline protocol, grey levels) with the entry's defaults for ``--mnist-seconds``
  seconds of training (0: skipped), with and without the R1 penalty: classes covered of 10 by a
  3-NN classifier on the training digits, and the entropy of the class shares.

    python benchmarks/gan_modes.py --seeds 0,1,2,3 --mnist-seconds 480 --out runs/gan-modes

Writes ``OUT/gan_modes.json`` and the table ``OUT/gan_modes.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from pyro_dgm.compare import parse_seeds
from pyro_dgm.errors import PyroDGMError, run_or_exit
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.tables import markdown_table

TOY = {"shape": "mixture", "z_dim": 4, "hidden": 128, "disc_hidden": 128,
       "gradient_penalty": 10.0}


def run(dataset: str, settings: dict, seed: int, args, **budget) -> dict:
    config = make_config("gan", dataset=dataset, seed=seed, data_dir=args.data_dir,
                         settings=settings, **budget)
    experiment = Experiment(config)
    experiment.train()
    train, test = experiment.data
    coverage = experiment.entry.evaluate(experiment.model, experiment.guide, test, train,
                                         iwae_samples=1, knn=False, seed=seed)
    last = experiment.history[-1] if experiment.history else {}
    return {"dataset": dataset, "seed": seed, "settings": settings,
            "epochs": len(experiment.history), "train_seconds": experiment.trainer.train_seconds,
            "discriminator_loss": last.get("discriminator_loss"),
            "generator_loss": last.get("generator_loss"),
            **{k: v for k, v in coverage.items() if k != "nll"}}


def _number(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict]) -> str:
    header = ["data", "setting", "seed", "epochs", "modes covered", "high-quality share",
              "class entropy (nats)", "final D / G loss"]
    return markdown_table(header, [
        [r["dataset"], f"R1 gamma={r['settings'].get('gradient_penalty', 0.0)}", r["seed"],
         r["epochs"], f"{r['modes_covered']} / {r['modes']}",
         _number(r.get("high_quality_fraction")),
         f"{r['class_entropy']:.3f} (max {math.log(r['modes']):.3f})",
         f"{_number(r['discriminator_loss'])} / {_number(r['generator_loss'])}"] for r in rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3", help="toy2d seeds, comma-separated")
    parser.add_argument("--epochs", type=int, default=100, help="toy2d epochs (10 steps each)")
    parser.add_argument("--n-train", type=int, default=2000, help="toy2d training points")
    parser.add_argument("--mnist-seconds", type=float, default=0.0,
                        help="training seconds per MNIST run (0: no MNIST runs)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    run_or_exit(parser, run_all, argv)


def run_all(args) -> None:
    seeds = parse_seeds(args.seeds)
    if args.epochs < 1 or args.n_train < 200 or not args.mnist_seconds >= 0:
        raise PyroDGMError("--epochs must be at least 1, --n-train at least 200 and "
                           "--mnist-seconds zero or more")
    torch.set_num_threads(1)
    rows = [run("toy2d", {**TOY, "n_train": args.n_train}, seed, args, epochs=args.epochs,
                lr=2e-3, batch_size=200) for seed in seeds]
    if args.mnist_seconds > 0:
        rows += [run("mnist", {"protocol": "offline", "gradient_penalty": gamma}, 0, args,
                     seconds=args.mnist_seconds) for gamma in (0.0, 10.0)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gan_modes.json").write_text(json.dumps(rows, indent=2))
    (out / "gan_modes.md").write_text(table(rows))
    print(table(rows))

if __name__ == "__main__":
    main()
