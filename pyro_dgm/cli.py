"""The command line: ``pyro-dgm list | train | runs | evaluate | sample | compare | reproduce``.

Every run lives in one folder: ``config.json`` (how it was made), ``checkpoint.pt``,
``metrics.json`` (training), ``eval.json`` (``evaluate``) and PNG figures. Bad input prints one
sentence, ``error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import torch

from pyro_dgm import plots
from pyro_dgm.data import available_datasets, dataset_description, dataset_options, model_takes
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import (
    EVAL,
    Experiment,
    RUN_COLUMNS,
    check_resume,
    check_writable,
    config_from_file,
    make_config,
    parse_settings,
    read_config_file,
    run_table,
    split_settings,
)
from pyro_dgm.infer import OBJECTIVES, distributed
from pyro_dgm.zoo import ZOO, get_entry

# what an interruption leaves behind, set by the command that runs (a one-element holder)
_interrupted_note = [lambda: "nothing was written"]


# -- commands -----------------------------------------------------------------------------
def command_list(args) -> None:
    width = max(len(name) for name in [*ZOO, *OBJECTIVES, *available_datasets()]) + 2
    print("models:")
    for entry in ZOO.values():
        print(f"  {entry.name:<{width}}{entry.description}")
        print(f"  {'':<{width}}guide {entry.guide.split('.')[-1]}; objectives "
              f"{', '.join(entry.objectives)} (default {entry.objective}); data "
              f"{', '.join(n for n in available_datasets() if model_takes(entry.datasets, n))}")
        hyper = ", ".join(f"{key}={json.dumps(value)}" for key, value in entry.defaults.items())
        print(f"  {'':<{width}}hyper-parameters: {hyper}")
    print("objectives:")
    for spec in OBJECTIVES.values():
        options = ", ".join(f"{k}={v}" for k, v in spec.options.items())
        print(f"  {spec.name:<{width}}{spec.description}" + (f" [{options}]" if options else ""))
    print("data sets:")
    for name in available_datasets():
        print(f"  {name:<{width}}{dataset_description(name)}")
        print(f"  {'':<{width}}options: {', '.join(['binarize', *dataset_options(name)])}")


def command_train(args) -> None:
    if args.resume and args.overwrite:
        raise PyroDGMError("give --resume or --overwrite, not both")
    if args.resume and args.config:
        raise PyroDGMError("--resume continues a run from its own config.json; --config starts "
                           "a new one")
    if args.config:
        config = config_from_file(
            read_config_file(args.config), parse_settings(args.set), model=args.model,
            dataset=args.dataset, objective=args.objective, epochs=args.epochs,
            seconds=args.seconds, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
            device=args.device, data_dir=args.data_dir, precision=args.precision)
        args.model, args.dataset = config["model"], config["dataset"]
    elif args.model is None:
        raise PyroDGMError("name a model (pyro-dgm train MODEL; pyro-dgm list shows them) or "
                           "give --config FILE")
    dataset = args.dataset or "bars"
    out = Path(args.out or f"runs/{args.model}-{dataset.partition(':')[0]}")
    trackers = [name for value in args.log for name in value.split(",") if name]
    if args.resume:
        experiment = Experiment.from_run(out, trackers=trackers)
        given = {"model": args.model, "dataset": args.dataset, "objective": args.objective,
                 "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                 "epochs": args.epochs, "seconds": args.seconds, "device": args.device,
                 "precision": args.precision}
        if args.set:
            entry = experiment.entry
            given.update(split_settings(entry, experiment.config["dataset"],
                                        experiment.config["objective"], parse_settings(args.set)))
        experiment.config = check_resume(experiment.config, given, out)
    elif not args.config:
        config = make_config(args.model, dataset=dataset, objective=args.objective,
                             epochs=args.epochs, seconds=args.seconds,
                             batch_size=args.batch_size, lr=args.lr,
                             seed=0 if args.seed is None else args.seed,
                             device=args.device or "cpu", data_dir=args.data_dir,
                             settings=parse_settings(args.set),
                             precision=args.precision or "fp32")
    if not args.resume:
        experiment = Experiment(config, out=out, trackers=trackers)
    _interrupted_note[0] = lambda: _kept(experiment)
    with distributed.process_group(experiment.config["device"]) as group:  # under torchrun
        lead = group is None or group.writes  # the one process that reports
        metrics = experiment.run(resume=args.resume, overwrite=args.overwrite,
                                 eval_samples=args.eval_samples,
                                 progress=lead and not args.quiet, log=print if lead else None)
    if "test_elbo" in metrics:
        print(f"test ELBO {metrics['test_elbo']:.3f} nats per example")
    print_warnings(metrics)


def print_warnings(metrics: dict) -> None:
    """The sentences of ``metrics["warnings"]`` (a number the run could not vouch for), on
    standard error."""
    for warning in metrics.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)


def command_runs(args) -> None:
    """One table of the run folders under the given folders, sorted, optionally as CSV."""
    rows = run_table(args.folders)
    if not rows:
        raise PyroDGMError(f"no run folders (with a config.json) under {', '.join(args.folders)}")
    if args.sort not in RUN_COLUMNS:
        raise PyroDGMError(f"cannot sort by {args.sort!r}; columns are: {', '.join(RUN_COLUMNS)}")
    known = [row for row in rows if row[args.sort] is not None]
    rows = (sorted(known, key=lambda row: row[args.sort], reverse=args.descending)
            + [row for row in rows if row[args.sort] is None])  # runs without the value last
    if args.csv:
        import csv

        target = Path(args.csv)
        check_writable(target.parent)
        with open(target, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=RUN_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    cells = [[_cell(row[column]) for column in RUN_COLUMNS] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells))
              for i, column in enumerate(RUN_COLUMNS)]
    print("  ".join(column.ljust(width) for column, width in zip(RUN_COLUMNS, widths)))
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)))
    if args.csv:
        print(f"wrote {args.csv}")


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def command_reproduce(args) -> None:
    """Run a reproduction study (``--list`` names them)."""
    from pyro_dgm.compare import parse_seeds
    from pyro_dgm.studies import STUDIES, get_study, reproduce

    if args.list or args.study is None:
        if args.study is None and not args.list:
            raise PyroDGMError("name a study (pyro-dgm reproduce --list shows them)")
        width = max(len(name) for name in STUDIES) + 2
        for study in STUDIES.values():
            print(f"{study.name:<{width}}{study.title} ({len(study.runs)} runs)")
        return
    study = get_study(args.study)
    if args.resume and args.overwrite:
        raise PyroDGMError("give --resume or --overwrite, not both")
    out = Path(args.out or f"runs/reproduce-{study.name}-{args.budget}")
    _interrupted_note[0] = lambda: (f"the finished runs are kept in {out}; continue with "
                                    f"pyro-dgm reproduce {study.name} --out {out} --resume")
    result = reproduce(study.name, args.budget, parse_seeds(args.seeds), out=out,
                       data_dir=args.data_dir, device=args.device, resume=args.resume,
                       overwrite=args.overwrite, progress=not args.quiet,
                       log=None if args.quiet else print)
    from pyro_dgm.studies import to_markdown

    print(to_markdown(result))
    print(f"wrote study.md, study.csv, study.json and study.png to {out}")


def _kept(experiment: Experiment) -> str:
    """What an interrupted training left on disk, in words."""
    trainer = experiment.trainer
    if trainer is None or trainer.saved_epochs is None:
        return "no checkpoint was written, nothing was kept"
    epochs = trainer.saved_epochs
    return (f"the checkpoint of epoch {epochs} is kept in {experiment.out}; continue with "
            f"pyro-dgm train {experiment.config['model']} --out {experiment.out} --resume")


def whole_number(flag: str, text: str | None) -> int | None:
    """``text`` as a whole number (None stays None; the sign is checked by the caller); one
    sentence otherwise."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise PyroDGMError(f"{flag} must be a positive whole number, got {text!r}") from None


def command_evaluate(args) -> None:
    experiment = Experiment.from_run(args.run_dir, args.device)
    _interrupted_note[0] = lambda: f"{Path(args.run_dir) / EVAL} was not written"
    with distributed.process_group(experiment.config["device"]) as group:  # under torchrun
        lead = group is None or group.writes  # the one process that reports and writes
        if group is not None:
            group.check_same({"run": str(Path(args.run_dir).resolve()),
                              "iwae_samples": args.iwae_samples, "knn": args.knn})
        metrics = experiment.evaluate(iwae_samples=args.iwae_samples, knn=args.knn,
                                      progress=lead and not args.quiet,
                                      ais_steps=whole_number("--ais-steps", args.ais_steps),
                                      ais_chains=whole_number("--ais-chains", args.ais_chains))
    if lead:
        print(json.dumps(metrics, indent=2))
        print_warnings(metrics)


def _compare_kept(out: Path) -> str:
    saved = out / "compare.json"
    runs = json.loads(saved.read_text())["runs"] if saved.exists() else []
    if not runs:
        return "no run had finished, nothing was kept"
    return (f"the {len(runs)} finished run{'s' if len(runs) != 1 else ''} are kept in {saved}; "
            f"continue with the same command and --resume")


IMAGE_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def command_sample(args) -> None:
    target = Path(args.out) if args.out else Path(args.run_dir) / "samples.png"
    if not target.suffix:
        target = target.with_suffix(".png")
    if target.suffix.lower() not in IMAGE_FORMATS:
        raise PyroDGMError(f"--out {args.out} names a {target.suffix} file; samples are written "
                           f"as {', '.join(IMAGE_FORMATS)}")
    check_writable(target.parent)
    experiment = Experiment.from_run(args.run_dir, args.device)
    samples = experiment.sample(args.n, seed=args.seed)
    train, _ = experiment.data
    path = plots.image_grid(samples, train.image_shape, target, title="samples from the model")
    print(f"wrote {path}")


def command_compare(args) -> None:
    """Train one model under several objectives with the same data, weights, budget and seeds."""
    from pyro_dgm.compare import compare, parse_seeds

    if args.epochs is not None and args.seconds is not None:
        raise PyroDGMError("give --epochs or --seconds, not both")
    out = Path(args.out)
    routed = split_settings(get_entry(args.model), args.dataset, None, parse_settings(args.set))
    _interrupted_note[0] = lambda: _compare_kept(out)
    results = compare(
        args.model, args.objectives, dataset=args.dataset, seeds=parse_seeds(args.seeds),
        epochs=args.epochs, seconds=args.seconds, lr=args.lr, batch_size=args.batch_size,
        hyper=routed["hyper"], data_options=routed["data_options"], data_dir=args.data_dir,
        iwae_samples=args.iwae_samples, eval_examples=args.eval_examples,
        variance_samples=args.variance_samples, variance_warmup=args.variance_warmup,
        device=args.device, progress=not args.quiet, out=out, resume=args.resume,
        overwrite=args.overwrite)
    print(results.to_markdown())
    print(f"wrote compare.csv, compare.md, compare.json and figures to {out}")


# -- parser -------------------------------------------------------------------------------
class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``error:`` sentence (no usage block)."""

    def error(self, message: str):
        raise PyroDGMError(f"{message} (see pyro-dgm {self.prog.split()[-1]} --help)"
                           if " " in self.prog else f"{message} (see pyro-dgm --help)")


def default_threads() -> int:
    """Torch threads for one run: ``$OMP_NUM_THREADS`` if set, else half the cores (at least
    one), so that two runs side by side do not oversubscribe the machine."""
    from_environment = os.environ.get("OMP_NUM_THREADS", "")
    if from_environment.isdigit() and int(from_environment) > 0:
        return int(from_environment)
    return max(1, (os.cpu_count() or 2) // 2)


def make_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="pyro-dgm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="models, objectives and data sets")

    train = commands.add_parser("train", help="train a zoo model; writes a run folder")
    train.add_argument("model", nargs="?", help="a zoo model (or the config file's)")
    train.add_argument("--config", metavar="FILE",
                       help="a .json/.toml/.yaml run description with the keys of config.json "
                            "(a run folder's config.json is one); flags override it")
    train.add_argument("--dataset", help="default: bars")
    train.add_argument("--objective", help="default: the model's default objective")
    train.add_argument("--epochs", type=int, help="total epochs (default: the model's)")
    train.add_argument("--seconds", type=float,
                       help="a budget of training seconds instead of epochs")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int, help="default: 0")
    train.add_argument("--out", help="run folder (default: runs/MODEL-DATASET)")
    train.add_argument("--data-dir", help="where data files are (default: $PYRO_DGM_DATA, "
                                          "then ~/.cache/pyro_dgm)")
    train.add_argument("--device", choices=["cpu", "cuda"], help="default: cpu")
    train.add_argument("--precision", choices=["fp32", "bf16"],
                       help="default: fp32; bf16 autocasts the forward pass to bfloat16 "
                            "(parameters and optimizer stay fp32) where the objective allows it")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a hyper-parameter, objective option or data option")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint (only --epochs, "
                            "--seconds, --device and --precision may change)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out instead of refusing")
    train.add_argument("--eval-samples", type=int, default=100,
                       help="importance samples for the test ELBO in metrics.json")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--log", action="append", default=[], metavar="TRACKER",
                       help="also log the run to tensorboard and/or mlflow (repeatable or "
                            "comma-separated; may change on --resume)")

    reproduce = commands.add_parser("reproduce", help="run a published comparison as data; "
                                                      "writes DIR/study.{md,csv,json,png}")
    reproduce.add_argument("study", nargs="?")
    reproduce.add_argument("--list", action="store_true", help="name the studies")
    reproduce.add_argument("--budget", default="cpu", choices=["smoke", "cpu", "paper"],
                           help="smoke: seconds; cpu: the README's protocol (default); paper: "
                                "the papers' training length")
    reproduce.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    reproduce.add_argument("--out", help="default: runs/reproduce-STUDY-BUDGET")
    reproduce.add_argument("--data-dir", help="where data files are")
    reproduce.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    reproduce.add_argument("--resume", action="store_true",
                           help="keep the finished runs in --out, train the missing ones")
    reproduce.add_argument("--overwrite", action="store_true")
    reproduce.add_argument("--quiet", action="store_true", help="no progress lines")

    runs = commands.add_parser("runs", help="one table of the run folders under DIR...")
    runs.add_argument("folders", nargs="+", metavar="DIR")
    runs.add_argument("--sort", default="run", help="column to sort by (default: run)")
    runs.add_argument("--descending", action="store_true")
    runs.add_argument("--csv", metavar="FILE", help="also write the table as CSV")

    evaluate_ = commands.add_parser("evaluate", help="held-out metrics; writes DIR/eval.json")
    evaluate_.add_argument("run_dir")
    evaluate_.add_argument("--iwae-samples", type=int, default=1000)
    evaluate_.add_argument("--knn", action="store_true", help="kNN error on the codes")
    evaluate_.add_argument("--ais-steps", metavar="T",
                           help="also estimate log p(x) by AIS with HMC in latent space, T "
                                "annealing steps (models with one continuous latent)")
    evaluate_.add_argument("--ais-chains", metavar="C",
                           help="AIS chains per test example (default 16, with --ais-steps)")
    evaluate_.add_argument("--device", choices=["cpu", "cuda"])
    evaluate_.add_argument("--quiet", action="store_true", help="no progress bar")

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
    compare.add_argument("--resume", action="store_true",
                         help="continue the comparison in --out; finished runs are kept")
    compare.add_argument("--overwrite", action="store_true",
                         help="replace the comparison in --out instead of refusing")
    compare.add_argument("--data-dir", help="where data files are")
    compare.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    compare.add_argument("--quiet", action="store_true", help="no progress lines")
    for command in (train, evaluate_, sample, compare, reproduce):
        command.add_argument("--threads", type=int, default=None,
                             help="torch threads (default: $OMP_NUM_THREADS, else half the cores)")
    return parser


COMMANDS = {"list": command_list, "train": command_train, "runs": command_runs,
            "reproduce": command_reproduce, "evaluate": command_evaluate,
            "sample": command_sample, "compare": command_compare}


# commands that would write the same files from every process under torchrun
DATA_PARALLEL_REFUSED = ("sample", "compare", "reproduce")


def main(argv: list[str] | None = None) -> int:
    _interrupted_note[0] = lambda: "nothing was written"
    # a NaN loss ends the run with one sentence of ours; Pyro's own warning would be a second
    warnings.filterwarnings("ignore", message="Encountered NaN")
    try:
        args = make_parser().parse_args(argv)
        if distributed.launched() and args.command in DATA_PARALLEL_REFUSED:
            raise PyroDGMError(f"only pyro-dgm train runs data-parallel under torchrun; run "
                               f"pyro-dgm {args.command} in one process")
        threads = getattr(args, "threads", None)
        if threads is not None and threads < 1:
            raise PyroDGMError(f"--threads must be a positive whole number, got {threads}")
        if args.command not in ("list", "runs"):
            torch.set_num_threads(threads or default_threads())
        COMMANDS[args.command](args)
    except PyroDGMError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"interrupted; {_interrupted_note[0]()}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
