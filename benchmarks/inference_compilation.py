"""Inference compilation on non-conjugate polynomial regression (seed 004, "Learning importance
sampling proposals"): a learned amortized proposal vs the prior as proposal vs random-walk MH.

1. Train the proposal with the vectorized ``sleep`` objective on simulated data sets (the
   Trainer, as ``pyro-dgm train polyreg`` does), and time one training sample under ``sleep``
   and under Pyro's ``CSIS`` loop.
2. On held-out data sets: a reference posterior from NUTS; then, at the same wall-clock budget
   per data set, IS with the learned proposal, IS with the prior, and random-walk MH, each
   repeated. Reports ESS/s, the error of the posterior mean of ``w`` and of the posterior
   predictive mean curve against NUTS, and the log-evidence estimate with its spread.
3. Writes ``OUT/results.md``, ``OUT/results.json``, ``OUT/proposal.pt`` (the trained proposal;
   ``--proposal`` reuses it) and ``OUT/curves_*.png`` (curves from the prior, the proposal,
   after weighting, from MH and from NUTS over the data points).

    python benchmarks/inference_compilation.py --out runs/inference_compilation
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import pyro
from pyro.ops.stats import effective_sample_size

from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError, run_or_exit
from pyro_dgm.guides.polyreg import PolyRegProposal
from pyro_dgm.infer import Trainer
from pyro_dgm.infer.compilation import nuts_reference, random_walk_mh
from pyro_dgm.infer.importance import ImportanceSamples, importance_sample, prior_proposal
from pyro_dgm.models.polyreg import PolyRegression
from pyro_dgm.zoo.polyreg import regression_curves

GRID = torch.linspace(-1, 1, 50)


def seconds_per_training_sample(model, guide, train, objective: str, steps: int,
                                batch: int) -> float:
    trainer = Trainer(model, guide, objective, lr=1e-4, batch_size=batch, progress=False)
    batches = train.batches(batch, generator=torch.Generator().manual_seed(1))
    trainer.step(next(batches))  # warm up (first-step preparation)
    started = time.perf_counter()
    for _ in range(steps):
        trainer.step(next(batches))
    return (time.perf_counter() - started) / (steps * batch)


def timed_importance(model, proposal, args, seconds: float, chunk: int) -> tuple:
    """IS in chunks of ``chunk`` draws until ``seconds`` are used up."""
    parts, started = [], time.perf_counter()
    while not parts or time.perf_counter() - started < seconds:
        parts.append(importance_sample(model, proposal, *args, num_samples=chunk,
                                       max_plate_nesting=1))
    return ImportanceSamples.cat(parts), time.perf_counter() - started


def curve_mean(model, w: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    curves = model.regression_function(w, GRID.expand(w.shape[0], -1))
    if weights is None:
        return curves.mean(0)
    return (weights.unsqueeze(-1) * curves).sum(0)


def rmse(a, b) -> float:
    return float(((a - b) ** 2).mean().sqrt())


def mcmc_ess(w: torch.Tensor) -> float:
    """Mean over coefficients of Pyro's ESS of one chain ``(S, D+1)``."""
    return float(effective_sample_size(w.unsqueeze(0), chain_dim=0, sample_dim=1).mean())


def evaluate_method(name, model, guide, args, reference, budget, chunk):
    if name == "MH (random walk)":
        run = random_walk_mh(model, *args, seconds=budget, warmup=100)
        w = run["samples"]["w"].reshape(run["samples"]["w"].shape[0], -1)
        return {"seconds": run["seconds"], "draws": run["steps"],
                "ess": mcmc_ess(w), "mean_w": w.mean(0), "curve": curve_mean(model, w),
                "log_evidence": math.nan, "w_plot": w[-50:]}
    proposal = guide if name == "IS, learned proposal" else prior_proposal(model)
    samples, seconds = timed_importance(model, proposal, args, budget, chunk)
    weights = samples.normalized_weights()[:, 0]
    w = samples.samples["w"][:, 0]
    return {"seconds": seconds, "draws": samples.num_samples, "ess": float(samples.ess()[0]),
            "mean_w": samples.posterior_mean("w")[0], "curve": curve_mean(model, w, weights),
            "log_evidence": float(samples.log_evidence()[0]),
            "w_plot": samples.resample(50)["w"][:, 0], "w_proposal": w[:50]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/inference_compilation")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--datasets", type=int, default=6, help="held-out data sets compared")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per method and data set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nuts-samples", type=int, default=600)
    parser.add_argument("--nuts-warmup", type=int, default=200)
    parser.add_argument("--timing-steps", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=2000, help="IS draws per vectorized call")
    parser.add_argument("--reference-draws", type=int, default=100_000,
                        help="draws of the learned-proposal IS run that is the log-evidence "
                             "reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proposal", help="OUT/proposal.pt of an earlier run: skip training")
    run_or_exit(parser, run, argv)


def run(args) -> None:
    counts = ("epochs", "datasets", "repeats", "nuts_samples", "timing_steps", "chunk",
              "reference_draws")
    if min(getattr(args, name) for name in counts) < 1 or args.budget <= 0:
        raise PyroDGMError("--budget must be positive and --" + ", --".join(
            name.replace("_", "-") for name in counts) + " at least 1")
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train = load_dataset("polyreg", "train", n_train=args.n_train, seed=args.seed)
    test = load_dataset("polyreg", "test", seed=args.seed)
    model, guide = PolyRegression(), PolyRegProposal()

    # -- 1. speed of a training sample: vectorized sleep vs Pyro's CSIS loop ------------------
    timing = {obj: seconds_per_training_sample(model, PolyRegProposal(), train, obj,
                                               args.timing_steps, args.batch_size)
              for obj in ("csis", "sleep")}
    print(f"s per training sample: {timing}", flush=True)

    # -- training the proposal (or loading one that an earlier run saved) ----------------------
    if args.proposal:
        saved = torch.load(args.proposal)
        guide.load_state_dict(saved["guide"])
        history = saved["history"]
    else:
        trainer = Trainer(model, guide, "sleep", lr=args.lr, batch_size=args.batch_size,
                          seed=args.seed, progress=False)
        history = trainer.fit(train, args.epochs)
        torch.save({"guide": guide.state_dict(), "history": history}, out / "proposal.pt")
    train_seconds = sum(h["seconds"] for h in history)
    print(f"trained {args.epochs} epochs in {train_seconds:.0f} s, final loss "
          f"{history[-1]['loss']:.3f}", flush=True)
    guide.eval()

    # -- 2. comparison on held-out data sets --------------------------------------------------
    methods = ("IS, learned proposal", "IS, prior", "MH (random walk)")
    rows = {m: [] for m in methods}
    reference_rows = []
    for b in range(args.datasets):
        data = test.arrays(slice(b, b + 1))
        reference = nuts_reference(model, *data, num_samples=args.nuts_samples,
                                   warmup=args.nuts_warmup, seed=args.seed + b)
        w_ref = reference["samples"]["w"].reshape(args.nuts_samples, -1)
        ref = {"mean_w": w_ref.mean(0), "curve": curve_mean(model, w_ref)}
        # a long run of the learned proposal as a second reference for the log-evidence
        pyro.set_rng_seed(1000 + b)
        long_is, _ = timed_importance(model, guide, data, 0.0, args.reference_draws)
        reference_rows.append({"nuts_seconds": reference["seconds"],
                               "log_evidence_100k": float(long_is.log_evidence()[0]),
                               "ess_100k": float(long_is.ess()[0])})
        plots = {}
        for method in methods:
            for repeat in range(args.repeats):
                pyro.set_rng_seed(args.seed + 100 * b + repeat)
                result = evaluate_method(method, model, guide, data, ref, args.budget, args.chunk)
                rows[method].append({
                    "dataset": b, "repeat": repeat, "seconds": result["seconds"],
                    "draws": result["draws"], "ess": result["ess"],
                    "ess_per_s": result["ess"] / result["seconds"],
                    "mean_error": rmse(result["mean_w"], ref["mean_w"]),
                    "predictive_error": rmse(result["curve"], ref["curve"]),
                    "log_evidence": result["log_evidence"]})
                if repeat == 0:
                    plots[method] = result
        print(f"data set {b}: NUTS {reference['seconds']:.0f} s; " + "; ".join(
            f"{m}: ESS/s {rows[m][-1]['ess_per_s']:.1f}" for m in methods), flush=True)
        t, y, mask = (a[0] for a in data)
        panels = {"samples from prior": plots["IS, prior"]["w_proposal"],
                  "samples from proposal": plots["IS, learned proposal"]["w_proposal"],
                  "after importance weighting": plots["IS, learned proposal"]["w_plot"],
                  "Metropolis-Hastings": plots["MH (random walk)"]["w_plot"],
                  "NUTS (reference)": w_ref[-50:]}
        regression_curves(model, t, y, mask, panels, out / f"curves_{b}.png",
                          title=f"held-out data set {b} ({int(mask.sum())} points)")

    # -- 3. tables ------------------------------------------------------------------------------
    summary = summarize(rows, reference_rows, timing, history, train_seconds, args)
    (out / "results.json").write_text(json.dumps(
        {"args": vars(args), "summary": summary, "rows": rows, "reference": reference_rows,
         "timing": timing, "history": history}, indent=2))
    (out / "results.md").write_text(summary["markdown"])
    print(summary["markdown"])


def _mean_std(values):
    values = torch.tensor(values, dtype=torch.float64)
    return float(values.mean()), float(values.std()) if len(values) > 1 else 0.0


def summarize(rows, reference_rows, timing, history, train_seconds, args) -> dict:
    lines = [
        f"Budget {args.budget:.1f} s per method and data set, {args.datasets} held-out data sets "
        f"x {args.repeats} repeats; reference NUTS ({args.nuts_warmup} warm-up + "
        f"{args.nuts_samples} draws). Proposal trained by `sleep` for {args.epochs} epochs of "
        f"{args.n_train} simulated data sets ({train_seconds:.0f} s, final loss "
        f"{history[-1]['loss']:.3f}).", "",
        "| method | draws / budget | ESS | ESS/s | posterior-mean RMSE (w) | predictive-mean RMSE "
        "| log p(y) estimate: mean over data sets of (mean ± std over repeats) |",
        "|---|---|---|---|---|---|---|"]
    table = {}
    ref_logz = [r["log_evidence_100k"] for r in reference_rows]
    for method, entries in rows.items():
        stats = {key: _mean_std([e[key] for e in entries])[0]
                 for key in ("draws", "ess", "ess_per_s", "mean_error", "predictive_error")}
        spreads, means = [], []
        for b in range(args.datasets):
            values = [e["log_evidence"] for e in entries if e["dataset"] == b]
            m, s = _mean_std(values)
            means.append(m - ref_logz[b])
            spreads.append(s)
        stats["log_evidence_bias"] = _mean_std(means)[0]
        stats["log_evidence_std"] = _mean_std(spreads)[0]
        table[method] = stats
        logz = ("n/a (MH gives none)" if math.isnan(stats["log_evidence_bias"]) else
                f"{stats['log_evidence_bias']:+.3f} ± {stats['log_evidence_std']:.3f} "
                f"(vs the reference learned IS)")
        lines.append(f"| {method} | {stats['draws']:.0f} | {stats['ess']:.1f} | "
                     f"{stats['ess_per_s']:.1f} | {stats['mean_error']:.3f} | "
                     f"{stats['predictive_error']:.3f} | {logz} |")
    ratio = table["IS, learned proposal"]["ess_per_s"] / table["IS, prior"]["ess_per_s"]
    ratio_mh = table["IS, learned proposal"]["ess_per_s"] / table["MH (random walk)"]["ess_per_s"]
    speedup = timing["csis"] / timing["sleep"]
    lines += ["", f"ESS/s, learned proposal / prior: {ratio:.1f}x; learned proposal / MH: "
                  f"{ratio_mh:.1f}x.",
              f"Mean log p(y) per data set ({args.reference_draws} learned-IS draws): "
              f"{sum(ref_logz) / len(ref_logz):.3f}; ESS of those runs: "
              + ", ".join(f"{r['ess_100k']:.0f}" for r in reference_rows) + ".",
              f"Seconds per training sample: Pyro CSIS loop {timing['csis'] * 1e3:.2f} ms, "
              f"vectorized sleep {timing['sleep'] * 1e3:.3f} ms: speed-up {speedup:.0f}x "
              f"(batch {args.batch_size})."]
    return {"table": table, "ess_ratio_prior": ratio, "ess_ratio_mh": ratio_mh,
            "csis_speedup": speedup, "markdown": "\n".join(lines) + "\n"}


if __name__ == "__main__":
    main()
