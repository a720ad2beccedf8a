"""Benchmark: a GAN's and a VAE's MNIST log-likelihood by AIS under one Gaussian observation model.

Wu, Burda, Salakhutdinov & Grosse (2017), "On the quantitative analysis of decoder-based
generative models", compare GANs and VAEs on MNIST by annealed importance sampling from the
prior to the posterior with HMC, every decoder scored under a Gaussian observation model
:math:`p_\\sigma(x \\mid z) = \\mathcal N(x;\\, \\mu(z),\\, \\sigma^2 I)`, :math:`\\sigma` chosen to
maximize the log-likelihood of held-out validation data. They report log-likelihoods in nats per
image (positive: a density over grey levels): on MNIST GANs about 300 and VAEs about 1,000
(recalled, not checked: their table is not among the stored copies here; approximate).

The protocol here, the honest version of theirs that the zoo allows:

- data: the offline MNIST protocol, grey levels in [0, 1], **not** binarized;
- ``gan``: the zoo's generator (sigmoid output) trained by the ``adversarial`` objective, with
  the R1 penalty ``--gradient-penalty`` (default 10: without it the discriminator wins within
  minutes and the digits are speckled, see the README's GAN section);
- ``vae``: the zoo's VAE, whose decoder on MNIST is Bernoulli (the data set's likelihood, a
  cross-entropy on grey levels; the zoo has no Gaussian-decoder option for MNIST), trained by
  the ELBO. Its decoder mean is the pixel probabilities :math:`\\mathrm{sigmoid}(\\cdot)`;
- both trained for ``--minutes`` of CPU each, with the same latent size ``--z-dim`` (Wu et al.
  use 10 and 50) and otherwise the zoo's defaults;
- both scored under **the same** Gaussian observation model around their decoder mean
  (:class:`pyro_dgm.infer.ais_hmc.GaussianObservation`): for each :math:`\\sigma` of
  ``--sigmas``, AIS (``--valid-steps`` steps) on ``--n-valid`` validation digits, the test
  digits ``n_test ... n_test + n_valid - 1`` of the offline split (never trained on, disjoint
  from the scored ones); the :math:`\\sigma` with the highest mean log-likelihood is kept per
  model, and AIS with ``--ais-steps`` steps and ``--ais-chains`` chains scores the first
  ``--n-test`` test digits under it.

The numbers are lower bounds of log p(x) (AIS is a stochastic lower bound), in nats per image,
with the standard error over chains.

    python benchmarks/gan_vs_vae_ais.py --minutes 3 --n-test 200 --threads 1 --out runs/gan-vs-vae

Writes ``OUT/gan_vs_vae_ais.json`` and the table ``OUT/gan_vs_vae_ais.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import pyro

from pyro_dgm.errors import PyroDGMError, run_or_exit
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.infer.ais_hmc import GaussianObservation, ais_log_likelihood, check_obs_scale
from pyro_dgm.tables import markdown_table

MODELS = ("gan", "vae")


def trained(name: str, args) -> Experiment:
    """The zoo's ``name`` trained for ``--minutes`` on offline MNIST grey levels."""
    settings = {"protocol": "offline", "binarize": "none", "z_dim": args.z_dim}
    if name == "gan":
        settings["gradient_penalty"] = args.gradient_penalty
    config = make_config(name, dataset="mnist", seconds=60 * args.minutes, seed=args.seed,
                         data_dir=args.data_dir, settings=settings)
    experiment = Experiment(config)
    experiment.train()
    return experiment


def log_likelihood(model, x: torch.Tensor, sigma: float, steps: int, args):
    """AIS log p(x) per digit under N(mean(z), sigma^2 I), seeded."""
    pyro.set_rng_seed(args.seed)
    return ais_log_likelihood(GaussianObservation(sigma)(model), x, steps, args.ais_chains,
                              leapfrog_steps=args.leapfrog_steps)


def score(name: str, args, valid: torch.Tensor, test: torch.Tensor) -> dict:
    started = time.perf_counter()
    experiment = trained(name, args)
    train_seconds = time.perf_counter() - started
    model = experiment.model
    sweep = {sigma: log_likelihood(model, valid, sigma, args.valid_steps, args).log_px.mean()
             .item() for sigma in args.sigmas}
    sigma = max(sweep, key=sweep.get)
    started = time.perf_counter()
    result = log_likelihood(model, test, sigma, args.ais_steps, args)
    row = {"model": name, "z_dim": args.z_dim, "train_seconds": train_seconds,
           "epochs": len(experiment.history), "valid_loglik": {str(s): v for s, v in sweep.items()},
           "sigma": sigma, "n_test": int(test.shape[0]), "test_loglik": -result.nll,
           "test_loglik_stderr": result.nll_stderr, "ais_steps": args.ais_steps,
           "ais_chains": args.ais_chains, "acceptance": result.acceptance.mean().item(),
           "ais_seconds": time.perf_counter() - started}
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    header = ["model", "z", "train s (epochs)", "validation log p(x) by sigma", "sigma",
              "test log p(x), nats ± stderr", "AIS T x C", "acceptance"]
    return markdown_table(header, [
        [r["model"], r["z_dim"], f"{r['train_seconds']:.0f} ({r['epochs']})",
         ", ".join(f"{s}: {v:.0f}" for s, v in r["valid_loglik"].items()), r["sigma"],
         f"{r['test_loglik']:.1f} ± {r['test_loglik_stderr']:.1f}",
         f"{r['ais_steps']} x {r['ais_chains']}", f"{r['acceptance']:.2f}"] for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gan,vae", help="comma-separated: gan, vae")
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget per model")
    parser.add_argument("--z-dim", type=int, default=10, help="latent size of both models")
    parser.add_argument("--gradient-penalty", type=float, default=10.0,
                        help="the GAN's R1 penalty weight gamma (0: none)")
    parser.add_argument("--sigmas", default="0.05,0.1,0.15,0.2,0.3",
                        help="comma-separated observation scales swept on validation digits")
    parser.add_argument("--n-valid", type=int, default=50, help="validation digits")
    parser.add_argument("--valid-steps", type=int, default=50, help="AIS steps of the sweep")
    parser.add_argument("--n-test", type=int, default=200, help="test digits scored")
    parser.add_argument("--ais-steps", type=int, default=300)
    parser.add_argument("--ais-chains", type=int, default=4)
    parser.add_argument("--leapfrog-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="runs/gan-vs-vae-ais")
    run_or_exit(parser, run, argv)


def check(args) -> None:
    """Every option checked before anything is read or trained."""
    args.models = args.models.split(",")
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown or not args.models:
        raise PyroDGMError(f"--models takes {', '.join(MODELS)} separated by commas, got "
                           f"{unknown or args.models}")
    try:
        args.sigmas = [check_obs_scale(float(s)) for s in args.sigmas.split(",")]
    except ValueError:
        raise PyroDGMError(f"--sigmas takes positive numbers separated by commas, got "
                           f"{args.sigmas!r}") from None
    whole = ("z_dim", "n_valid", "valid_steps", "n_test", "ais_steps", "ais_chains",
             "leapfrog_steps", "threads")
    if min(getattr(args, name) for name in whole) < 1 or not (math.isfinite(args.minutes)
                                                               and args.minutes > 0):
        raise PyroDGMError(f"--minutes and --{', --'.join(n.replace('_', '-') for n in whole)} "
                           f"must be positive")
    if not (math.isfinite(args.gradient_penalty) and args.gradient_penalty >= 0):
        raise PyroDGMError(f"--gradient-penalty must be zero or more, got "
                           f"{args.gradient_penalty}")


def run(args) -> None:
    check(args)
    torch.set_num_threads(args.threads)
    probe = make_config("gan", dataset="mnist", data_dir=args.data_dir,
                        settings={"protocol": "offline", "binarize": "none"})
    _, test_split = Experiment(probe).data
    x = test_split.observed()
    if x.shape[0] < args.n_test + args.n_valid:
        raise PyroDGMError(f"--n-test + --n-valid is {args.n_test + args.n_valid}, more than "
                           f"the {x.shape[0]} test digits")
    test, valid = x[:args.n_test], x[args.n_test:args.n_test + args.n_valid]
    rows = [score(name, args, valid, test) for name in args.models]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"protocol": "offline MNIST, grey levels", "sigmas": args.sigmas,
              "gradient_penalty": args.gradient_penalty,
              "n_valid": args.n_valid, "valid_steps": args.valid_steps,
              "leapfrog_steps": args.leapfrog_steps, "minutes": args.minutes, "rows": rows}
    (out / "gan_vs_vae_ais.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gan_vs_vae_ais.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
