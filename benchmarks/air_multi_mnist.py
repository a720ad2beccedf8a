"""Benchmark: AIR on multi-MNIST under a wall-clock budget; held-out count accuracy over time.

Trains the zoo's ``air`` entry with the Trainer's steps (objective ``count-enum``, the ELBO with
the count summed out, or any other it lists, such as ``tracegraph-steps``: ``TraceGraph_ELBO``
with data-dependent baselines), evaluates the count accuracy of the guide's most probable scene
on held-out canvases (held-out digits) every ``--eval-every`` steps, and writes into ``--out``:

- ``curve.json``: ``[{"step", "seconds", "epoch", "loss", "count_accuracy"}, ...]``;
- ``summary.json``: settings, final count accuracy, confusion matrix, per-count accuracy, the
  two-digit accuracy by how much the digits' boxes overlap (IoU), seconds per step and per
  epoch, the profile's top operators;
- ``profile.txt``: ``torch.profiler`` table of a few steps (where the time goes);
- figures: ``count_accuracy.png``, ``confusion.png``, ``boxes.png``, ``reconstructions.png``.

    OMP_NUM_THREADS=1 python benchmarks/air_multi_mnist.py --minutes 30 --out /tmp/air_bench
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torchvision.ops import box_convert, box_iou

from pyro_dgm import plots
from pyro_dgm.experiment import parse_settings
from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import Trainer
from pyro_dgm.infer import counting
from pyro_dgm.zoo import air, get_entry


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between evaluations")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=1_000)
    parser.add_argument("--max-digits", type=int, default=2)
    parser.add_argument("--overlap", default="reject", choices=("reject", "max"),
                        help="multi-mnist's rule for digits whose strokes meet: redraw the canvas "
                             "(AIR's data) or combine by the pixel-wise max")
    parser.add_argument("--objective", default=None, help="default: the zoo's (count-enum)")
    parser.add_argument("--lr", type=float, default=None, help="default: the zoo's (1e-3)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the zoo's (64)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an AIR hyper-parameter, e.g. baseline_lr_scale=100")
    parser.add_argument("--anneal-pres", default=None, metavar="START:STEPS",
                        help="anneal the presence prior geometrically from START to the model's "
                             "value over STEPS steps, e.g. 0.9:1500")
    parser.add_argument("--init", default=None, metavar="AIR_PT",
                        help="start from the model and guide weights of an earlier run's air.pt")
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="the training seed (weights, batches)")
    parser.add_argument("--data-seed", type=int, default=0, help="the canvases' seed")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="air_bench")
    return parser.parse_args(argv)


def profile_steps(trainer: Trainer, batches, steps: int) -> tuple[str, list[dict]]:
    """Profile ``steps`` training steps; returns the table and the top operators by self CPU time."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step(next(batches))
    averages = prof.key_averages()
    table = averages.table(sort_by="self_cpu_time_total", row_limit=25)
    total = sum(e.self_cpu_time_total for e in averages) or 1.0
    top = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:12]
    return table, [{"op": e.key, "self_seconds_per_step": e.self_cpu_time_total / 1e6 / steps,
                    "fraction": e.self_cpu_time_total / total} for e in top]


def box_overlap(boxes: torch.Tensor) -> torch.Tensor:
    """Intersection over union of the first two boxes (left, top, width, height) of each canvas."""
    first, second = (box_convert(boxes[:, k].float(), "xywh", "xyxy") for k in (0, 1))
    return box_iou(first, second).diagonal()


def accuracy_by_overlap(guide, test, edges=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0)) -> list[dict]:
    """Count accuracy on the two-digit canvases, by how much their digits' boxes overlap."""
    pairs = test.y == 2
    overlap = box_overlap(test.info["boxes"][pairs])
    right = counting.infer_counts(guide, test.x[pairs]) == 2
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (overlap >= low) & (overlap < high)
        rows.append({"iou": f"[{low}, {high})", "canvases": int(inside.sum()),
                     "count_accuracy": float(right[inside].float().mean()) if inside.any() else None})
    return rows


def endless_batches(data, batch_size: int, generator: torch.Generator):
    epoch = 0
    while True:
        epoch += 1
        for batch in data.batches(batch_size, generator=generator, drop_last=True):
            yield batch


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        return run(args)
    except PyroDGMError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def parse_anneal(text: str) -> tuple[float, float]:
    """``"0.9:1500"`` -> ``(0.9, 1500.0)``: the presence prior's start and the annealing steps."""
    try:
        start, steps = (float(v) for v in text.split(":"))
    except ValueError:
        raise PyroDGMError(f"--anneal-pres takes START:STEPS, e.g. 0.9:1500, got {text!r}") from None
    if not (0 < start < 1 and steps > 0):
        raise PyroDGMError(f"--anneal-pres needs 0 < START < 1 and STEPS > 0, got {text!r}")
    return start, steps


def run(args) -> dict:
    if args.minutes <= 0 or min(args.eval_every, args.profile_steps) < 1:
        raise PyroDGMError("--minutes must be positive and --eval-every, --profile-steps at least 1")
    if args.anneal_pres:
        start_pres_prior, anneal_steps = parse_anneal(args.anneal_pres)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entry = get_entry("air")
    hyper = entry.hyper(parse_settings(args.set))
    lr = args.lr or entry.training["lr"]
    batch_size = args.batch_size or entry.training["batch_size"]
    options = {"n_train": args.n_train, "n_test": args.n_test, "max_digits": args.max_digits,
               "overlap": args.overlap}
    train = load_dataset("multi-mnist", "train", data_dir=args.data_dir, seed=args.data_seed,
                         **options)
    test = load_dataset("multi-mnist", "test", data_dir=args.data_dir, seed=args.data_seed,
                        **options)
    hyper["steps"] = max(hyper["steps"], args.max_digits + 1)
    model, guide = entry.build(hyper, train)
    if args.init:
        weights = torch.load(args.init, map_location="cpu")
        model.load_state_dict(weights["model"])
        guide.load_state_dict(weights["guide"])
    args.objective = args.objective or entry.objective
    trainer = Trainer(model, guide, args.objective, lr=lr, batch_size=batch_size, seed=args.seed,
                      progress=False)
    batches = endless_batches(train, batch_size, trainer.generator)
    steps_per_epoch = train.n // batch_size

    table, top = profile_steps(trainer, batches, args.profile_steps)
    (out / "profile.txt").write_text(table)
    step, losses, curve = args.profile_steps, [], []
    budget = 60.0 * args.minutes
    train_seconds, eval_seconds = 0.0, 0.0
    final_pres_prior = model.pres_prior
    while True:
        if args.anneal_pres:
            fraction = min(step / anneal_steps, 1.0)
            model.pres_prior = start_pres_prior ** (1 - fraction) * final_pres_prior ** fraction
        started = time.perf_counter()
        loss = trainer.step(next(batches))
        train_seconds += time.perf_counter() - started
        step += 1
        losses.append(loss)
        if not math.isfinite(loss):
            print(f"step {step}: loss {loss}; stopping", flush=True)
            break
        done = train_seconds >= budget
        if step % args.eval_every == 0 or done:
            started = time.perf_counter()
            metrics = counting.count_metrics(guide, test)
            eval_seconds += time.perf_counter() - started
            point = {"step": step, "seconds": train_seconds, "epoch": step / steps_per_epoch,
                     "loss": sum(losses) / len(losses), "count_accuracy": metrics["count_accuracy"]}
            curve.append(point)
            losses = []
            print(json.dumps(point), flush=True)
            (out / "curve.json").write_text(json.dumps(curve, indent=1))
        if done:
            break

    final = counting.count_metrics(guide, test)
    seconds_per_step = train_seconds / max(step - args.profile_steps, 1)
    summary = {
        "settings": {"lr": lr, "batch_size": batch_size, "objective": args.objective,
                     "hyper": hyper, "data": options, "seed": args.seed, "data_seed": args.data_seed,
                     "threads": args.threads, "minutes": args.minutes,
                     "anneal_pres": args.anneal_pres, "init": args.init},
        "steps": step, "epochs": step / steps_per_epoch, "train_seconds": train_seconds,
        "eval_seconds": eval_seconds, "seconds_per_step": seconds_per_step,
        "seconds_per_epoch": seconds_per_step * steps_per_epoch,
        "best_count_accuracy": max(c["count_accuracy"] for c in curve) if curve else None,
        **final, "two_digit_accuracy_by_overlap": accuracy_by_overlap(guide, test),
        "profile_top": top,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    air.accuracy_curve(curve, out / "count_accuracy.png")
    air.confusion_figure(final["confusion"], out / "confusion.png")
    air.boxes(guide, test.x[:16], test.image_shape, out / "boxes.png", true_counts=test.y[:16])
    plots.reconstructions(model, guide, test.x[:10], test.image_shape, out / "reconstructions.png")
    torch.save({"model": model.state_dict(), "guide": guide.state_dict(), "hyper": hyper},
               out / "air.pt")
    print(json.dumps({k: summary[k] for k in ("steps", "seconds_per_step", "seconds_per_epoch",
                                              "count_accuracy", "best_count_accuracy",
                                              "confusion")}), flush=True)
    print(json.dumps(summary["two_digit_accuracy_by_overlap"]), flush=True)
    return summary


if __name__ == "__main__":
    main()
