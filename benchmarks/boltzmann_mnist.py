"""Benchmark: an RBM and a DBM on offline MNIST, trained by stochastic approximation within a CPU
budget and scored by AIS (issue 16; seed ``002``).

Protocol: the offline MNIST protocol of ``../shared/data/README.md`` (8,000 training and 2,000
held-out digits of the MNIST test set), binarized afresh for every batch (``binarize=dynamic``)
and once (seed 0) for the test log-likelihood. Each model trains for ``--minutes`` of training
steps, one seed, Adam at the zoo's lr, batch 100, 100 chains:

- ``rbm-pcd``: RBM-500, persistent contrastive divergence (1 Gibbs sweep per update);
- ``rbm-cd``: RBM-500, CD-k (``--cd-steps``, default 1);
- ``dbm``: DBM 500-1000, PCD with a 10-iteration mean-field data term, after
  ``--pretrain-epochs`` of greedy CD-1 pretraining per layer (time reported apart).

Then :math:`\\log Z` by AIS (``--ais-steps`` Gibbs sweeps, ``--ais-chains`` chains, a base
model with the training pixels' means and the test digits' mean hidden activity) and the test log-likelihood: exact given :math:`\\log Z`
for the RBM, the mean-field lower bound for the DBM. Three checks of that :math:`\\log Z`
(:mod:`pyro_dgm.infer.ais_gibbs`): the certified floor from the test digits (an estimate below
it is marked invalid), reverse AIS started from the training chains (bidirectional Monte
Carlo: the test log-likelihood it implies is printed beside), and the unnormalized log density
that chains reach from the training chains and from noise (far apart: the chains do not mix).
The published numbers (full MNIST, 60,000 digits, hours of training) are printed beside, for
orientation only.

    python benchmarks/boltzmann_mnist.py --minutes 8 --out runs/boltzmann
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pyro_dgm.errors import PyroDGMError, run_or_exit
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.infer.ais_gibbs import dbm_log_partition_reverse, log_path
from pyro_dgm.tables import markdown_table, published_table, write_tables
from pyro_dgm.zoo.boltzmann import ais_base

VARIANTS = {  # name -> (zoo model, objective, what)
    "rbm-pcd": ("rbm", "pcd", "RBM-{hidden}, PCD-1"),
    "rbm-cd": ("rbm", "cd", "RBM-{hidden}, CD-{k}"),
    "dbm": ("dbm", "pcd", "DBM {layers}, PCD + mean-field"),
}
PUBLISHED = [  # (model, test log-likelihood in nats, source)
    ("RBM-500, CD-1", "-125.53", "Salakhutdinov & Murray 2008, table 2"),
    ("RBM-500, CD-25", "-86.34", "Salakhutdinov & Murray 2008, table 2"),
    ("RBM-500, PCD", "about -86 to -87", "Tieleman 2008; Salakhutdinov & Hinton 2009"),
    ("DBM 500-1000", "-84.62", "Salakhutdinov & Hinton 2009, table 1"),
]


def train_and_score(variant: str, args) -> dict:
    model, objective, what = VARIANTS[variant]
    settings = {"protocol": "offline", "binarize": "dynamic", "chains": args.chains}
    if objective == "cd":
        settings["gibbs_steps"] = args.cd_steps
    if model == "rbm" and args.hidden:
        settings["hidden"] = args.hidden
    if model == "dbm":
        if args.layers:
            settings["layers"] = args.layers
        if args.pretrain_epochs:
            settings["pretrain_epochs"] = args.pretrain_epochs
    config = make_config(model, dataset="mnist", objective=objective, seconds=args.minutes * 60,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         data_dir=args.data_dir, settings=settings)
    experiment = Experiment(config)
    started = time.perf_counter()
    experiment.build()
    build_seconds = time.perf_counter() - started
    experiment.train()
    train, test = experiment.data
    test = test.head(args.n_test)
    started = time.perf_counter()
    scores = experiment.entry.evaluate(experiment.model, experiment.guide, test, train,
                                       knn=False, seed=0, ais_steps=args.ais_steps,
                                       ais_chains=args.ais_chains)
    ais_seconds = time.perf_counter() - started
    checks = chain_checks(experiment.model, args.chains, args.ais_steps,
                          ais_base(experiment.model, experiment.guide, test.observed()))
    history = experiment.history
    hyper = experiment.entry.hyper(config["hyper"])
    what = what.format(k=args.cd_steps, hidden=hyper.get("hidden"),
                       layers="-".join(map(str, hyper.get("layers", []))))
    return {"variant": variant, "what": what,
            "test_loglik": -scores["nll"]["value"], "nll_method": scores["nll_method"],
            "bound": model == "dbm", "ais_log_z": scores["ais_log_z"],
            "ais_log_z_stderr": scores["ais_log_z_stderr"], "ais_ess": scores["ais_ess"],
            "ais_log_z_floor": scores.get("ais_log_z_floor"), "ais_valid": scores.get("ais_valid"),
            "ais_steps": args.ais_steps, "ais_chains": args.ais_chains, **checks,
            "epochs": len(history), "steps": experiment.trainer.steps,
            "train_seconds": experiment.trainer.train_seconds,
            "pretrain_seconds": build_seconds if model == "dbm" else 0.0,
            "final_reconstruction": history[-1]["loss"] if history else None,
            "ais_seconds": ais_seconds, "n_test": len(test)}


@torch.no_grad()
def chain_checks(model, chains: int, ais_steps: int, base, sweeps: int = 1000) -> dict:
    """Two checks of the chains, beside the certified floor of the evaluate hook.

    Mixing: :math:`\\log f_1` (the even layers' unnormalized log density, the odd ones summed
    out) averaged over the training chains and over as many chains started from uniform noise,
    each run ``sweeps`` more Gibbs sweeps. Far apart, the model has a region that chains from
    noise do not leave, and forward AIS, whose chains start from noise too, misses the other.

    From above: reverse AIS (bidirectional Monte Carlo) started at the training chains along
    the forward run's path (``base``), an estimate of :math:`\\log Z` that errs high where
    forward AIS errs low - if the training chains themselves sample the model."""
    trained = getattr(model, "persistent_chains", None)
    if trained is None:
        trained = model.noise(chains)
    for _ in range(sweeps):
        trained = model.gibbs_sweep(trained)
    from_noise = model.gibbs_chain(chains, sweeps, start=model.noise(chains))
    reverse = dbm_log_partition_reverse(model, trained, steps=ais_steps, base=base)
    return {"log_f_training_chains": log_path(model, trained, 1.0, base).mean().item(),
            "log_f_noise_chains": log_path(model, from_noise, 1.0, base).mean().item(),
            "ais_log_z_reverse": reverse.log_z, "ais_log_z_reverse_stderr": reverse.stderr}


def table(rows: list[dict]) -> str:
    header = ["model", "test log-lik (nats)", "log Z: forward AIS", "reverse AIS", "floor",
              "log f: training / noise chains", "epochs", "train min", "AIS min"]
    lines = []
    for r in rows:
        bound = " (bound)" if r["bound"] else ""
        invalid = "" if r["ais_valid"] is not False else " **invalid: log Z below its floor**"
        lowest = r["test_loglik"] + r["ais_log_z"] - r["ais_log_z_reverse"]
        lines.append([r["what"], f"{r['test_loglik']:.2f}{bound}{invalid} (reverse: {lowest:.2f})",
                      f"{r['ais_log_z']:.2f} ± {r['ais_log_z_stderr']:.2f}",
                      f"{r['ais_log_z_reverse']:.2f} ± {r['ais_log_z_reverse_stderr']:.2f}",
                      f"{r['ais_log_z_floor']:.2f}",
                      f"{r['log_f_training_chains']:.1f} / {r['log_f_noise_chains']:.1f}",
                      r["epochs"], f"{(r['train_seconds'] + r['pretrain_seconds']) / 60:.1f}",
                      f"{r['ais_seconds'] / 60:.1f}"])
    return markdown_table(header, lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0,
                        help="training budget of each variant, in minutes of steps")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {','.join(VARIANTS)} (default all)")
    parser.add_argument("--lr", type=float, default=None, help="default: the zoo's (3e-4)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--cd-steps", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=None, help="RBM hidden units (500)")
    parser.add_argument("--layers", default=None, help="DBM layers, e.g. 500,1000 (default)")
    parser.add_argument("--pretrain-epochs", type=int, default=2,
                        help="greedy CD-1 pretraining epochs per DBM layer (0: none)")
    parser.add_argument("--ais-steps", type=int, default=10000)
    parser.add_argument("--ais-chains", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=None, help="default: all 2,000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/boltzmann")
    run_or_exit(parser, run, argv)


def run(args) -> None:
    if not args.minutes > 0 or min(args.batch_size, args.chains, args.cd_steps, args.ais_steps,
                                   args.ais_chains, args.threads) < 1 \
            or args.pretrain_epochs < 0 or (args.n_test is not None and args.n_test < 1):
        raise PyroDGMError("--minutes, --batch-size, --chains, --cd-steps, --ais-steps, "
                           "--ais-chains, --threads and --n-test must be positive, "
                           "--pretrain-epochs zero or more")
    if args.layers:
        try:
            args.layers = [int(h) for h in args.layers.split(",")]
        except ValueError:
            raise PyroDGMError(f"--layers takes whole numbers separated by commas, got "
                               f"{args.layers!r}") from None
    variants = args.variants.split(",")
    if set(variants) - set(VARIANTS):
        raise PyroDGMError(f"--variants takes names from {', '.join(VARIANTS)}, "
                           f"got {args.variants!r}")
    torch.set_num_threads(args.threads)
    rows = []
    for variant in variants:
        rows.append(train_and_score(variant, args))
        print(json.dumps(rows[-1]), flush=True)
    write_tables(args.out, rows, table(rows) + "\n" + published_table("test log-lik (nats)", PUBLISHED))


if __name__ == "__main__":
    main()
