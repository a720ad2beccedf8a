"""Benchmark: training throughput (examples per second) of data-parallel training on the CPU.

The zoo's Gaussian VAE under ``Trace_ELBO`` on MNIST-shaped random binary data (784 pixels,
encoder 784-HIDDEN-50, decoder 50-HIDDEN-784, global batch ``--batch-size``) is trained in
three set-ups on the same global batches:

- ``1 process, 1 thread``: the plain Trainer (the baseline);
- ``1 process, T threads``: the plain Trainer with as many torch threads as processes below,
  the fair comparison for the same cores;
- ``N processes, 1 thread each``: :mod:`pyro_dgm.infer.distributed` over ``gloo`` on the
  loopback (what ``torchrun --nproc-per-node N`` runs), each rank on a shard of each batch.

Each set-up first trains ``--warmup`` steps, then ``--steps`` timed steps; the rate is the
global examples of the timed steps over the time spent in them (rank 0's clock, gradient
all-reduce included). Efficiency is ``rate(N processes) / (N * rate(1 process, 1 thread))``.

    python benchmarks/scaling.py [--processes 2] [--steps 50] [--out scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.multiprocessing

import pyro

from pyro_dgm.data import Dataset
from pyro_dgm.infer import Trainer, distributed
from pyro_dgm.zoo import get_entry

X_DIM = 784


def random_images(examples: int) -> Dataset:
    """MNIST-shaped random binary images (the rate does not depend on what they show)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((examples, X_DIM), 0.3), generator=generator)
    return Dataset.from_tensors(x, name="random-binary")


def examples_per_second(options: dict) -> float:
    """Train the VAE in this process (inside a process group, if one is open); its rate."""
    data = random_images(options["examples"])
    entry = get_entry("vae")
    pyro.set_rng_seed(0)
    model, guide = entry.build(entry.hyper({"hidden": options["hidden"]}), data)
    trainer = Trainer(model, guide, "elbo", batch_size=options["batch_size"], seed=0,
                      progress=False)
    batches = iter(data.batches(options["batch_size"], generator=trainer.generator))
    for _ in range(options["warmup"]):
        trainer.step(next(batches))
    examples, seconds = trainer.examples, trainer.train_seconds
    for _ in range(options["steps"]):
        trainer.step(next(batches))
    return (trainer.examples - examples) / (trainer.train_seconds - seconds)


def rank_worker(rank: int, world: int, port: int, options: dict, result: str) -> None:
    """One rank of the data-parallel set-up; rank 0 writes its rate to ``result``."""
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with distributed.process_group("cpu"):
        rate = examples_per_second(options)
    if rank == 0:
        Path(result).write_text(json.dumps(rate))


def data_parallel_rate(world: int, options: dict) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        result = str(Path(folder) / "rate.json")
        torch.multiprocessing.spawn(rank_worker, args=(world, port, options, result),
                                    nprocs=world)
        return json.loads(Path(result).read_text())


def single_process_rate(threads: int, options: dict) -> float:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return examples_per_second(options)
    finally:
        torch.set_num_threads(before)


def run(processes: int, options: dict) -> dict:
    steps_needed = (options["warmup"] + options["steps"]) * options["batch_size"]
    options = {**options, "examples": max(options["examples"], steps_needed)}
    baseline = single_process_rate(1, options)
    threaded = single_process_rate(processes, options)
    parallel = data_parallel_rate(processes, options)
    return {
        "processes": processes, "cpu_count": os.cpu_count(), **options,
        "examples_per_second": {"1 process, 1 thread": baseline,
                                f"1 process, {processes} threads": threaded,
                                f"{processes} processes, 1 thread each": parallel},
        "speedup": parallel / baseline,
        "efficiency": parallel / (processes * baseline),
        "speedup_over_threads": parallel / threaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100, help="the global batch")
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--out", default="scaling.json")
    args = parser.parse_args()
    options = {"batch_size": args.batch_size, "hidden": args.hidden, "warmup": args.warmup,
               "steps": args.steps, "examples": args.examples}
    result = run(args.processes, options)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for setup, rate in result["examples_per_second"].items():
        print(f"{setup:<28}{rate:10.0f} examples/s")
    print(f"speedup {result['speedup']:.2f}x, efficiency {result['efficiency']:.0%} "
          f"(on {result['cpu_count']} cores); over {args.processes} threads in one process: "
          f"{result['speedup_over_threads']:.2f}x")


if __name__ == "__main__":
    main()
