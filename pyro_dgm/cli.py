"""The command line: ``pyro-dgm list | train | evaluate | sample | compare``.

Every run lives in one folder: ``config.json`` (how it was made), ``checkpoint.pt``,
``metrics.json`` (training), ``eval.json`` (``evaluate``) and PNG figures. Bad input prints one
sentence, ``error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyro_dgm import plots
from pyro_dgm.data import available_datasets, dataset_options
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import Experiment, make_config, parse_settings
from pyro_dgm.infer import OBJECTIVES
from pyro_dgm.zoo import ZOO


# -- commands -----------------------------------------------------------------------------
def command_list(args) -> None:
    print("models:")
    for entry in ZOO.values():
        print(f"  {entry.name:<10} {entry.description}; guide {entry.guide.split('.')[-1]}; "
              f"objectives {', '.join(entry.objectives)} (default {entry.objective})")
    print("objectives:")
    for spec in OBJECTIVES.values():
        options = ", ".join(f"{k}={v}" for k, v in spec.options.items())
        print(f"  {spec.name:<10} {spec.description}" + (f" [{options}]" if options else ""))
    print("data sets:")
    for name in available_datasets():
        print(f"  {name:<10} options: {', '.join(['binarize', *dataset_options(name)])}")


def command_train(args) -> None:
    out = Path(args.out or f"runs/{args.model}-{args.dataset}")
    if args.resume:
        experiment = Experiment.from_run(out)
        if args.epochs is not None:
            experiment.config["epochs"] = args.epochs
    else:
        config = make_config(args.model, dataset=args.dataset, objective=args.objective,
                             epochs=args.epochs, seconds=args.seconds,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             device=args.device, data_dir=args.data_dir,
                             settings=parse_settings(args.set))
        experiment = Experiment(config, out=out)
    metrics = experiment.run(resume=args.resume, eval_samples=args.eval_samples,
                             progress=not args.quiet, log=print)
    if "test_elbo" in metrics:
        print(f"test ELBO {metrics['test_elbo']:.3f} nats per example")


def command_evaluate(args) -> None:
    experiment = Experiment.from_run(args.run_dir, args.device)
    metrics = experiment.evaluate(iwae_samples=args.iwae_samples, knn=args.knn)
    print(json.dumps(metrics, indent=2))


def command_sample(args) -> None:
    experiment = Experiment.from_run(args.run_dir, args.device)
    samples = experiment.sample(args.n, seed=args.seed)
    train, _ = experiment.data
    path = plots.image_grid(samples, train.image_shape,
                            args.out or Path(args.run_dir) / "samples.png",
                            title="samples from the model")
    print(f"wrote {path}")


def command_compare(args) -> None:
    """Train one model under several objectives with the same data, weights, budget and seeds."""
    from pyro_dgm.compare import compare, parse_seeds

    if args.epochs is not None and args.seconds is not None:
        raise PyroDGMError("give --epochs or --seconds, not both")
    results = compare(
        args.model, args.objectives, dataset=args.dataset, seeds=parse_seeds(args.seeds),
        epochs=args.epochs, seconds=args.seconds, lr=args.lr, batch_size=args.batch_size,
        settings=parse_settings(args.set), data_dir=args.data_dir,
        iwae_samples=args.iwae_samples, eval_examples=args.eval_examples,
        variance_samples=args.variance_samples, variance_warmup=args.variance_warmup,
        device=args.device, progress=not args.quiet)
    out = Path(args.out)
    results.write(out)
    print(results.to_markdown())
    print(f"wrote compare.csv, compare.md, compare.json and figures to {out}")


# -- parser -------------------------------------------------------------------------------
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyro-dgm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="models, objectives and data sets")

    train = commands.add_parser("train", help="train a zoo model; writes a run folder")
    train.add_argument("model")
    train.add_argument("--dataset", default="bars")
    train.add_argument("--objective", help="default: the model's default objective")
    train.add_argument("--epochs", type=int, help="total epochs (default: the model's)")
    train.add_argument("--seconds", type=float,
                       help="a budget of training seconds instead of epochs")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="run folder (default: runs/MODEL-DATASET)")
    train.add_argument("--data-dir", help="where data files are (default: $PYRO_DGM_DATA, "
                                          "then ~/.cache/pyro_dgm)")
    train.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a hyper-parameter, objective option or data option")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint")
    train.add_argument("--eval-samples", type=int, default=100,
                       help="importance samples for the test ELBO in metrics.json")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate_ = commands.add_parser("evaluate", help="held-out metrics; writes DIR/eval.json")
    evaluate_.add_argument("run_dir")
    evaluate_.add_argument("--iwae-samples", type=int, default=1000)
    evaluate_.add_argument("--knn", action="store_true", help="kNN error on the codes")
    evaluate_.add_argument("--device", choices=["cpu", "cuda"])

    sample = commands.add_parser("sample", help="draw samples from a trained model")
    sample.add_argument("run_dir")
    sample.add_argument("-n", type=int, default=100)
    sample.add_argument("--out")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", choices=["cpu", "cuda"])

    compare = commands.add_parser("compare", help="train one model under several objectives; "
                                                  "writes DIR/compare.{csv,md,json} and figures")
    compare.add_argument("model")
    compare.add_argument("--objectives", required=True,
                         help="comma-separated specs name[:key=value,...], e.g. "
                              "elbo,iwae:particles=5,iwae:particles=50")
    compare.add_argument("--epochs", type=int, help="budget in epochs (default: the model's)")
    compare.add_argument("--seconds", type=float, help="budget in seconds of training time")
    compare.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    compare.add_argument("--dataset", default="bars")
    compare.add_argument("--batch-size", type=int)
    compare.add_argument("--lr", type=float)
    compare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a hyper-parameter or data option, shared by every run")
    compare.add_argument("--iwae-samples", type=int, default=100,
                         help="k of the IWAE-k NLL, the same for every objective")
    compare.add_argument("--eval-examples", type=int, default=500,
                         help="held-out examples the NLL is estimated on")
    compare.add_argument("--variance-samples", type=int, default=100,
                         help="gradient estimates for the guide-gradient variance (0: skip)")
    compare.add_argument("--variance-warmup", type=int, default=0,
                         help="epochs of the first objective before measuring gradient variance "
                              "(default 0: at the initial weights)")
    compare.add_argument("--out", required=True, help="output folder")
    compare.add_argument("--data-dir", help="where data files are")
    compare.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    compare.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


COMMANDS = {"list": command_list, "train": command_train, "evaluate": command_evaluate,
            "sample": command_sample, "compare": command_compare}


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except PyroDGMError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint written is kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
