"""Benchmark: the cost of a mixture prior's training step, DLGMM / DLDPM against the VAE.

The component ``c`` of the deep latent mixture models (seed ``000``) is summed out either in the
ELBO (``marginalize=sum``: one decoder pass per component, the seed's estimator) or in the
prior's density (``enumerate``: one decoder pass). This script times one training step of each
variant on 100 offline MNIST digits, the variants' steps interleaved in rounds so that a
changing machine load hits every variant alike, and reports the median seconds per step, per
epoch of 80 steps, and the ratio to the first variant. Writes ``OUT/speed.json`` and
``OUT/speed.md``. (The likelihood and kNN numbers of these models are the study
``pyro-dgm reproduce mixture-priors``.)

    python benchmarks/mixture_prior_speed.py --rounds 5 --out runs/mixture-speed
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pyro
import torch

from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer
from pyro_dgm.tables import markdown_table
from pyro_dgm.zoo import get_entry

MODELS = ("vae", "dlgmm", "dldpm")


def variants(models: list[str]) -> list[tuple[str, str, dict]]:
    """``(label, zoo model, hyper-parameters)``: the VAE, then each mixture both ways."""
    mixtures = [(f"{name} ({marginalize}, T={components})", name,
                 {"marginalize": marginalize, "components": components})
                for name, components in (("dlgmm", 3), ("dldpm", 17))
                for marginalize in ("enumerate", "sum")]
    return [v for v in [("vae", "vae", {}), *mixtures] if v[1] in models]


def measure(args) -> list[dict]:
    train = load_dataset("mnist", "train", data_dir=args.data_dir, protocol="offline")
    batch = train.x[:100]
    chosen = variants(args.models)
    trainers = []
    for label, name, hyper in chosen:
        entry = get_entry(name)
        hidden = {"hidden": args.hidden} if args.hidden else {}
        model, guide = entry.build(entry.hyper({**hyper, **hidden}), train)
        trainers.append(Trainer(model, guide, entry.objective, lr=args.lr, progress=False))
        trainers[-1].step(batch)  # warm-up
    times = {label: [] for label, _, _ in chosen}
    for _ in range(args.rounds):
        for (label, _, _), trainer in zip(chosen, trainers):
            pyro.clear_param_store()  # the models share site names; let each register its own
            trainer.step(batch)
            started = time.perf_counter()
            for _ in range(5):
                trainer.step(batch)
            times[label].append((time.perf_counter() - started) / 5)
    return [{"variant": label, "seconds_per_step": statistics.median(times[label]),
             "seconds_per_epoch": 80 * statistics.median(times[label])} for label in times]


def to_markdown(rows: list[dict]) -> str:
    base = rows[0]["seconds_per_step"]
    header = ["variant", "s/step (median)", "s/epoch (80 steps)", f"vs {rows[0]['variant']}"]
    return markdown_table(header, [
        [r["variant"], f"{r['seconds_per_step']:.3f}", f"{r['seconds_per_epoch']:.1f}",
         f"{r['seconds_per_step'] / base:.1f}x"] for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS),
                        help="zoo models to time, comma-separated (default all)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="hidden units of every model (default: the zoo's, 500)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/mixture-speed")
    args = parser.parse_args(argv)
    args.models = args.models.split(",")
    try:
        unknown = sorted(set(args.models) - set(MODELS))
        if unknown:
            raise PyroDGMError(f"unknown model {', '.join(unknown)} in --models; this benchmark "
                               f"times {', '.join(MODELS)}")
        if args.rounds < 1:
            raise PyroDGMError(f"--rounds must be at least 1, got {args.rounds}")
        torch.set_num_threads(args.threads)
        rows = measure(args)
    except PyroDGMError as error:
        parser.exit(2, f"error: {error}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "speed.md").write_text(to_markdown(rows))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
