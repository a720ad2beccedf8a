"""The command line: ``pyro-dgm list | train | evaluate | sample | compare``.

Every run lives in one folder: ``config.json`` (how it was made), ``checkpoint.pt``,
``metrics.json`` (training), ``eval.json`` (``evaluate``) and PNG figures. Bad input prints one
sentence, ``error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


import pyro

from pyro_dgm import plots
from pyro_dgm.data import available_datasets, dataset_options, load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import (
    OBJECTIVES,
    Trainer,
    evaluate,
    get_objective,
    load_checkpoint,
)
from pyro_dgm.infer.trainer import resolve_device
from pyro_dgm.infer.estimators import encode_all, log_likelihood_bounds
from pyro_dgm.zoo import ZOO, get_entry

CONFIG, METRICS, EVAL, CHECKPOINT = "config.json", "metrics.json", "eval.json", "checkpoint.pt"


# -- set-up -------------------------------------------------------------------------------
def parse_settings(pairs: list[str]) -> dict:
    """``["z_dim=20", "binarize=dynamic"]`` -> ``{"z_dim": 20, "binarize": "dynamic"}`` (JSON values)."""
    settings = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise PyroDGMError(f"--set takes key=value, got {pair!r}")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def split_settings(model: str, dataset: str, objective: str | None, settings: dict) -> dict:
    """Route ``--set`` keys to the model's hyper-parameters, the objective, or the data set.

    With ``objective=None`` (``compare``: several objectives) no objective option is taken;
    those go in each objective's spec instead.
    """
    entry = get_entry(model)
    objective_keys = get_objective(objective).options if objective is not None else {}
    data_keys = {"binarize", *dataset_options(dataset)}
    routed = {"hyper": {}, "objective_options": {}, "data_options": {}}
    for key, value in settings.items():
        if key in entry.defaults:
            routed["hyper"][key] = value
        elif key in objective_keys:
            routed["objective_options"][key] = value
        elif key in data_keys:
            routed["data_options"][key] = value
        else:
            valid = sorted({*entry.defaults, *objective_keys, *data_keys})
            hint = ("" if objective is not None else
                    " (objective options go in the spec, e.g. iwae:particles=5)")
            raise PyroDGMError(f"unknown setting {key!r} for model {model!r}"
                               + (f", objective {objective!r}" if objective else "")
                               + f" and data set {dataset!r}; valid: {', '.join(valid)}{hint}")
    return routed


def load_data(config: dict):
    """The (train, test) data sets that ``config`` describes."""
    options = dict(config["data_options"])
    binarize = options.pop("binarize", None)
    return tuple(load_dataset(config["dataset"], split, data_dir=config["data_dir"],
                              binarize=binarize, seed=config["seed"], **options)
                 for split in ("train", "test"))


def build(config: dict, train):
    """The model and guide that ``config`` describes, for data like ``train``."""
    entry = get_entry(config["model"])
    device = resolve_device(config["device"])
    try:
        model, guide = entry.build(entry.hyper(config["hyper"]), train)
    except (ValueError, TypeError) as error:
        raise PyroDGMError(f"model {entry.name!r} cannot be built with {config['hyper']}: "
                           f"{error}") from None
    return model.to(device), guide.to(device)


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise PyroDGMError(f"{path} does not exist: is {path.parent} a pyro-dgm run folder?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PyroDGMError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None


def write_json(data: dict, path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def restore_run(run_dir: Path, device: str | None = None):
    """``(config, model, guide, train, test)`` of a trained run folder, parameters loaded."""
    config = read_json(run_dir / CONFIG)
    if device is not None:
        config["device"] = device
    resolve_device(config["device"])
    state = load_checkpoint(run_dir / CHECKPOINT, config["device"])
    train, test = load_data(config)
    model, guide = build(config, train)
    pyro.clear_param_store()
    try:
        model.load_state_dict(state["modules"]["model"])
        guide.load_state_dict(state["modules"]["guide"])
    except (KeyError, RuntimeError):
        raise PyroDGMError(f"the checkpoint in {run_dir} does not fit the model in its "
                           f"{CONFIG}") from None
    return config, model, guide, train, test


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


def make_config(args) -> dict:
    entry = get_entry(args.model)
    objective = args.objective or entry.objective
    get_objective(objective)
    if objective not in entry.objectives:
        raise PyroDGMError(f"objective {objective!r} does not apply to model {entry.name!r}; "
                           f"it takes {', '.join(entry.objectives)}")
    if args.dataset not in available_datasets():
        raise PyroDGMError(f"unknown data set {args.dataset!r}; expected one of "
                           f"{', '.join(available_datasets())}")
    if args.dataset not in entry.datasets:
        raise PyroDGMError(f"model {entry.name!r} is not set up for data set {args.dataset!r}; "
                           f"it takes {', '.join(entry.datasets)}")
    routed = split_settings(entry.name, args.dataset, objective, parse_settings(args.set))
    training = entry.training
    return {
        "model": entry.name, "dataset": args.dataset, "objective": objective,
        "epochs": _given(args.epochs, training["epochs"]),
        "batch_size": _given(args.batch_size, training["batch_size"]),
        "lr": _given(args.lr, training["lr"]), "seed": args.seed, "device": args.device,
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "hyper": entry.hyper(routed["hyper"]), **{k: routed[k] for k in
                                                  ("objective_options", "data_options")},
    }


def _given(value, default):
    return default if value is None else value


def command_train(args) -> None:
    out = Path(args.out or f"runs/{args.model}-{args.dataset}")
    if args.resume:
        config = read_json(out / CONFIG)
        if args.epochs is not None:
            config["epochs"] = args.epochs
    else:
        config = make_config(args)
    train, test = load_data(config)
    model, guide = build(config, train)
    out.mkdir(parents=True, exist_ok=True)
    write_json(config, out / CONFIG)
    trainer = Trainer(model, guide, config["objective"], lr=config["lr"],
                      batch_size=config["batch_size"], seed=config["seed"],
                      device=config["device"], objective_options=config["objective_options"],
                      checkpoint=out / CHECKPOINT, progress=not args.quiet)
    started = time.perf_counter()
    history = trainer.fit(train, config["epochs"], resume=args.resume)
    print(f"trained {config['model']} on {config['dataset']} for {len(history)} epochs "
          f"({time.perf_counter() - started:.1f} s); writing metrics and figures to {out}")
    metrics = training_metrics(config, history, model, guide, train, test, args.eval_samples)
    write_json(metrics, out / METRICS)
    (get_entry(config["model"]).figures or figures)(model, guide, train, test, history, out)
    if "test_elbo" in metrics:
        print(f"test ELBO {metrics['test_elbo']:.3f} nats per example")


def test_elbo(model, guide, test, num_samples: int) -> dict:
    """The default held-out numbers of ``metrics.json``: the mean test ELBO per example."""
    device = next(model.parameters()).device
    elbo, _ = log_likelihood_bounds(model, guide, test.observed(device=device),
                                    num_samples=num_samples)
    return {"test_elbo": elbo.mean().item(), "test_elbo_samples": num_samples}


def training_metrics(config, history, model, guide, train, test, eval_samples: int) -> dict:
    pyro.set_rng_seed(config["seed"])
    held_out = (get_entry(config["model"]).test_metrics or test_elbo)(model, guide, test,
                                                                      eval_samples)
    return {
        "model": config["model"], "dataset": config["dataset"], "objective": config["objective"],
        "epochs": len(history), "n_train": len(train), "n_test": len(test),
        "train_seconds": sum(h["seconds"] for h in history),
        "seconds_per_epoch": sum(h["seconds"] for h in history) / max(len(history), 1),
        "history": history, **held_out, "hyper": config["hyper"],
        "data": {k: v for k, v in train.info.items() if isinstance(v, (str, int, float))},
    }


def figures(model, guide, train, test, history, out: Path) -> None:
    device = next(model.parameters()).device
    x_test = test.x[:1000].to(device)
    plots.image_grid(model.sample(100), train.image_shape, out / "samples.png",
                     title="samples from the model")
    plots.reconstructions(model, guide, x_test, train.image_shape, out / "reconstructions.png")
    plots.training_curve(history, out / "training_curve.png")
    codes = encode_all(guide.encode, x_test)
    labels = test.y[:1000] if test.y is not None else None
    plots.embedding(codes, labels, out / "latent_embedding.png")
    plots.code_usage(codes, out / "code_usage.png")


def command_evaluate(args) -> None:
    run_dir = Path(args.run_dir)
    config, model, guide, train, test = restore_run(run_dir, args.device)
    knn = args.knn and test.y is not None
    metrics = (get_entry(config["model"]).evaluate or evaluate)(
        model, guide, test, train, iwae_samples=args.iwae_samples, knn=knn, seed=config["seed"])
    write_json(metrics, run_dir / EVAL)
    print(json.dumps(metrics, indent=2))


def command_sample(args) -> None:
    run_dir = Path(args.run_dir)
    config, model, guide, train, _ = restore_run(run_dir, args.device)
    if args.n < 1:
        raise PyroDGMError(f"-n must be a positive number of samples, got {args.n}")
    pyro.set_rng_seed(args.seed)
    path = plots.image_grid(model.sample(args.n), train.image_shape,
                            args.out or run_dir / "samples.png", title="samples from the model")
    print(f"wrote {path}")


def command_compare(args) -> None:
    """Train one model under several objectives with the same data, weights, budget and seeds."""
    from pyro_dgm.infer.compare import compare, parse_seeds, split_objective_list

    if args.epochs is not None and args.seconds is not None:
        raise PyroDGMError("give --epochs or --seconds, not both")
    entry = get_entry(args.model)
    if args.dataset not in available_datasets():
        raise PyroDGMError(f"unknown data set {args.dataset!r}; expected one of "
                           f"{', '.join(available_datasets())}")
    routed = split_settings(entry.name, args.dataset, None, parse_settings(args.set))
    hyper, data_options = routed["hyper"], routed["data_options"]
    results = compare(
        entry.name, split_objective_list(args.objectives), dataset=args.dataset,
        seeds=parse_seeds(args.seeds), epochs=args.epochs, seconds=args.seconds, lr=args.lr,
        batch_size=args.batch_size, hyper=hyper, data_options=data_options,
        data_dir=args.data_dir, iwae_samples=args.iwae_samples, eval_examples=args.eval_examples,
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
