"""Benchmark: test NLL by IWAE-k and by AIS with HMC in latent space, at matched compute.

Wu et al. (2017), "On the quantitative analysis of decoder-based generative models", score
VAEs and GANs by AIS from the prior to the posterior with HMC moves. Here a VAE is trained on
the offline MNIST protocol (dynamically binarized digits) for a CPU budget in seconds, or any
run folder of a model with one continuous latent is scored (``--run DIR``: a GAN generator
needs no guide; IWAE is then left out). For each budget ``B`` of decoder evaluations per test
example:

- IWAE-k with ``k = B`` (one decoder pass per importance sample, plus the encoder);
- AIS with ``--ais-chains C`` chains and ``T = B / (C (L + 1))`` annealing steps of HMC with
  ``L`` leapfrog steps (each evaluation is a forward and a backward pass: AIS is charged
  ``C T (L + 1)``, slightly more than the ``C (T L + 1)`` passes it makes).

Both are stochastic lower bounds of log p(x): the larger (smaller NLL) is the tighter.

    python benchmarks/ais_vs_iwae.py --seconds 300 --n-test 300 --out runs/ais-vs-iwae
    python benchmarks/ais_vs_iwae.py --run runs/my-gan --n-test 300 --out runs/ais-gan
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import pyro
import pyro.poutine as poutine

from pyro_dgm.errors import PyroDGMError, run_or_exit
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.infer import log_likelihood_bounds
from pyro_dgm.infer.ais_hmc import ais_log_likelihood, latent_site
from pyro_dgm.tables import markdown_table


def trained(args) -> Experiment:
    """The run folder ``--run``, restored, or a VAE trained for ``--seconds`` on MNIST."""
    if args.run:
        experiment = Experiment.from_run(args.run, "cpu")
        experiment.restore()
        return experiment
    settings = {"protocol": "offline", "binarize": "dynamic"}
    if args.hidden:
        settings["hidden"] = args.hidden
    config = make_config("vae", dataset="mnist", seconds=args.seconds, seed=args.seed,
                         data_dir=args.data_dir, settings=settings)
    experiment = Experiment(config)
    experiment.train()
    return experiment


def guide_proposes(guide, model, x: torch.Tensor) -> bool:
    """Whether the guide samples the model's latent site (IWAE needs it as a proposal)."""
    site, _ = latent_site(model, x)
    with poutine.block(), torch.no_grad():
        return site in poutine.trace(guide).get_trace(x[:2]).nodes


def compare(experiment: Experiment, args) -> list[dict]:
    _, test = experiment.data
    x = test.observed()[:args.n_test]
    model, guide = experiment.model, experiment.guide
    iwae_applies = guide_proposes(guide, model, x)
    rows = []
    for budget in args.budgets:
        row = {"budget": budget, "n_test": int(x.shape[0])}
        if iwae_applies:
            pyro.set_rng_seed(args.seed)
            started = time.perf_counter()
            elbo, iwae = log_likelihood_bounds(model, guide, x, num_samples=budget)
            row.update(iwae_k=budget, iwae_nll=-iwae.mean().item(), elbo=elbo.mean().item(),
                       iwae_seconds=time.perf_counter() - started)
        steps = budget // (args.ais_chains * (args.leapfrog_steps + 1))
        if steps >= 1:
            pyro.set_rng_seed(args.seed)
            started = time.perf_counter()
            result = ais_log_likelihood(model, x, steps, args.ais_chains,
                                        leapfrog_steps=args.leapfrog_steps)
            row.update(ais_steps=steps, ais_chains=args.ais_chains, ais_nll=result.nll,
                       ais_nll_stderr=result.nll_stderr,
                       ais_acceptance=result.acceptance.mean().item(),
                       ais_evaluations=steps * args.ais_chains * (args.leapfrog_steps + 1),
                       ais_seconds=time.perf_counter() - started)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    header = ["decoder evals / example", "IWAE-k NLL", "s", "AIS T x C", "AIS NLL ± stderr",
              "acceptance", "s"]
    lines = []
    for r in rows:
        iwae = ([f"{r['iwae_nll']:.2f} (k={r['iwae_k']})", f"{r['iwae_seconds']:.0f}"]
                if "iwae_nll" in r else ["-", "-"])
        ais = ([f"{r['ais_steps']} x {r['ais_chains']}",
                f"{r['ais_nll']:.2f} ± {r['ais_nll_stderr']:.2f}", f"{r['ais_acceptance']:.2f}",
                f"{r['ais_seconds']:.0f}"] if "ais_nll" in r else ["-"] * 4)
        lines.append([r["budget"], *iwae, *ais])
    return markdown_table(header, lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="score this run folder instead of training a VAE")
    parser.add_argument("--seconds", type=float, default=300, help="VAE training budget")
    parser.add_argument("--hidden", type=int, default=None, help="VAE hidden units (default 500)")
    parser.add_argument("--n-test", type=int, default=300, help="held-out digits scored")
    parser.add_argument("--budgets", default="110,440,1760",
                        help="comma-separated decoder evaluations per example")
    parser.add_argument("--ais-chains", type=int, default=2)
    parser.add_argument("--leapfrog-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/ais-vs-iwae")
    run_or_exit(parser, run, argv)


def run(args) -> None:
    try:
        args.budgets = [int(b) for b in args.budgets.split(",")]
    except ValueError:
        raise PyroDGMError(f"--budgets takes comma-separated whole numbers, got "
                           f"{args.budgets!r}") from None
    if min(args.budgets + [args.n_test, args.ais_chains, args.leapfrog_steps]) < 1 \
            or args.seconds <= 0:
        raise PyroDGMError("--budgets, --n-test, --ais-chains, --leapfrog-steps and --seconds "
                           "must be positive")
    torch.set_num_threads(1)
    started = time.perf_counter()
    experiment = trained(args)
    train_seconds = time.perf_counter() - started
    rows = compare(experiment, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": experiment.config["model"], "dataset": experiment.config["dataset"],
              "run": args.run, "train_seconds": None if args.run else train_seconds,
              "epochs": len(experiment.history), "leapfrog_steps": args.leapfrog_steps,
              "rows": rows}
    (out / "ais_vs_iwae.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "ais_vs_iwae.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
