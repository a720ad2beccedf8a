"""Benchmark: cost of the accurate KL(Kumaraswamy(a, b) || Beta(1, beta)) against the
paper's 10-term Taylor series, per element, forward + backward, on the same tensors.

Both KLs are evaluated on one batch of concentrations (default 100 x 50, the SB-VAE's
batch x truncation, float32, a and b log-uniform in [0.01, 100], Beta(1, 5)), summed and
differentiated with respect to a and b. Timings alternate between the two in blocks so
that machine noise hits both alike; the reported number is the ratio of medians,
accurate / Taylor, in the same run.

    python benchmarks/kl_kumaraswamy.py [--batch 100 --truncation 50] [--repeats 50]
        [--blocks 7] [--threads 1] [--dtype float32] [--out kl_kumaraswamy.json]

``--batch 4 --truncation 5 --repeats 2 --blocks 2`` runs in well under a second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.distributions import Beta

from pyro_dgm.distributions import Kumaraswamy, kl_kumaraswamy_beta


def time_kl(a, b, p, taylor_terms, repeats: int) -> float:
    """Seconds per forward + backward of ``kl_kumaraswamy_beta(...).sum()``."""
    started = time.perf_counter()
    for _ in range(repeats):
        a.grad = b.grad = None
        kl = kl_kumaraswamy_beta(Kumaraswamy(a, b), p, taylor_terms=taylor_terms)
        kl.sum().backward()
    return (time.perf_counter() - started) / repeats


def run(batch: int = 100, truncation: int = 50, repeats: int = 50, blocks: int = 7,
        dtype: str = "float32") -> dict:
    torch.manual_seed(0)
    dtype_ = getattr(torch, dtype)
    shape = (batch, truncation)
    a = (10 ** (4 * torch.rand(shape, dtype=dtype_) - 2)).requires_grad_()
    b = (10 ** (4 * torch.rand(shape, dtype=dtype_) - 2)).requires_grad_()
    p = Beta(torch.ones((), dtype=dtype_), torch.full((), 5.0, dtype=dtype_))
    methods = {"accurate": None, "taylor10": 10}
    for terms in methods.values():  # warm-up: allocations, quadrature cache
        time_kl(a, b, p, terms, max(1, repeats // 5))
    times = {name: [] for name in methods}
    for _ in range(blocks):
        for name, terms in methods.items():
            times[name].append(time_kl(a, b, p, terms, repeats))
    elements = batch * truncation
    us = {name: statistics.median(t) * 1e6 for name, t in times.items()}
    return {"accurate_us_per_call": us["accurate"], "taylor10_us_per_call": us["taylor10"],
            "accurate_ns_per_element": us["accurate"] * 1e3 / elements,
            "taylor10_ns_per_element": us["taylor10"] * 1e3 / elements,
            "ratio": us["accurate"] / us["taylor10"], "shape": list(shape), "dtype": dtype,
            "repeats_per_block": repeats, "blocks": blocks, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--truncation", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = run(args.batch, args.truncation, args.repeats, args.blocks, args.dtype)
    print(f"{r['shape'][0]}x{r['shape'][1]} {r['dtype']}, forward+backward: accurate "
          f"{r['accurate_us_per_call']:.0f} us ({r['accurate_ns_per_element']:.1f} ns/element), "
          f"taylor10 {r['taylor10_us_per_call']:.0f} us ({r['taylor10_ns_per_element']:.1f} "
          f"ns/element), ratio {r['ratio']:.2f}x ({r['threads']} thread(s))")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
