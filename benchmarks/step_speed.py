"""Benchmark: one training step of the zoo's Gaussian VAE under ``Trace_ELBO`` against a
hand-written pure-PyTorch VAE of identical architecture, estimator, optimizer and batch.

Both steps compute the same single-sample Monte Carlo ELBO,
``log p(x|z) + log p(z) - log q(z|x)`` with ``z = mu + sigma * eps``, on the same MNIST-shaped
batch (100 x 784, encoder 784-500-50, decoder 50-500-784, Adam). Timings alternate between the
two in blocks so that machine noise hits both alike; the reported number is the ratio of
medians, Pyro / PyTorch, in the same run.

    python benchmarks/step_speed.py [--steps 200] [--threads 1] [--out step_speed.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import pyro

from pyro_dgm.infer import Trainer
from pyro_dgm.zoo import get_entry

X_DIM, Z_DIM, HIDDEN, BATCH = 784, 50, 500, 100


class TorchVAE(nn.Module):
    """The same networks as ``VAE`` + ``GaussianEncoder``, as one plain module."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(X_DIM, HIDDEN)
        self.loc_head, self.scale_head = nn.Linear(HIDDEN, Z_DIM), nn.Linear(HIDDEN, Z_DIM)
        self.decoder = nn.Sequential(nn.Linear(Z_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, X_DIM))

    def negative_elbo(self, x):
        h = F.relu(self.body(x))
        loc, scale = self.loc_head(h), 1e-4 + F.softplus(self.scale_head(h))
        q = torch.distributions.Normal(loc, scale)
        z = q.rsample()
        log_likelihood = -F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none")
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z)
        return -(log_likelihood.sum() + log_prior.sum() - q.log_prob(z).sum())


def time_steps(step, x, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step(x)
    return (time.perf_counter() - started) / steps


def run(steps: int = 200, blocks: int = 7, validation: bool = True,
        local_params: bool = False) -> dict:
    torch.manual_seed(0)
    x = torch.rand(BATCH, X_DIM)

    torch_vae = TorchVAE()
    optimizer = torch.optim.Adam(torch_vae.parameters(), lr=1e-3)

    def torch_step(batch):
        optimizer.zero_grad()
        loss = torch_vae.negative_elbo(batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    class Shape:  # what the zoo's builder reads from a data set
        dim, likelihood = X_DIM, "bernoulli"

    entry = get_entry("vae")
    with pyro.settings.context(module_local_params=local_params):  # read when modules are built
        model, guide = entry.build(entry.hyper({"z_dim": Z_DIM, "hidden": HIDDEN}), Shape)
    pyro.enable_validation(validation)
    trainer = Trainer(model, guide, "elbo", lr=1e-3, batch_size=BATCH, progress=False)

    for step in (torch_step, trainer.step):  # warm-up: allocations, optimizer state
        time_steps(step, x, 20)
    pyro_times, torch_times = [], []
    for _ in range(blocks):
        pyro_times.append(time_steps(trainer.step, x, steps))
        torch_times.append(time_steps(torch_step, x, steps))
    pyro.enable_validation(True)
    pyro_ms, torch_ms = statistics.median(pyro_times) * 1e3, statistics.median(torch_times) * 1e3
    return {"pyro_ms_per_step": pyro_ms, "torch_ms_per_step": torch_ms,
            "ratio": pyro_ms / torch_ms, "validation": validation,
            "module_local_params": local_params,
            "threads": torch.get_num_threads(), "steps_per_block": steps, "blocks": blocks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--local-params", action="store_true",
                        help="build the modules under pyro.settings module_local_params=True")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = [run(args.steps, args.blocks, validation, args.local_params)
               for validation in (True, False)]
    for r in results:
        print(f"validation={r['validation']!s:5}  local params={r['module_local_params']!s:5}  "
              f"pyro {r['pyro_ms_per_step']:.2f} ms/step  "
              f"torch {r['torch_ms_per_step']:.2f} ms/step  ratio {r['ratio']:.3f}x  "
              f"({r['threads']} thread(s))")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
