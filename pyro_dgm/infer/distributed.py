"""Data-parallel training on ``torch.distributed``: one process per rank, launched by ``torchrun``.

``torchrun --nproc-per-node N -m pyro_dgm train MODEL ...`` starts ``N`` copies of the command;
torchrun sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``, and
:func:`process_group` joins them into one process group (``gloo`` on CPU, ``nccl`` on CUDA).
Without those variables it does nothing and training stays in one process.

Inside the group the :class:`~pyro_dgm.infer.trainer.Trainer` trains every rank on a disjoint
shard of every global batch:

- every rank draws the same global batch order from the shared seed (the Trainer's batch
  generator), and rank ``r`` takes the rows ``r::world`` of each global batch;
- the zoo's losses are sums over the examples of the batch (``pyro.plate("data", n)`` over the
  local rows, no rescaling), so the gradients are **summed** over ranks (one ``all_reduce`` of
  all of them, after ``backward``): the result is the gradient of the loss of the whole global
  batch, as one process would compute it. The reported loss is summed the same way;
- Monte Carlo noise differs per rank (Pyro seeded with ``seed + rank``), while the parameters
  start equal (the shared seed, then a broadcast from rank 0) and stay equal (the same summed
  gradients and the same Adam step on every rank);
- rank 0 alone writes the run folder.

Every rank runs the same configuration: :meth:`DataParallel.check_same` gathers each rank's
and stops every rank with one sentence naming the keys that differ. A rank that dies (killed,
out of memory, an error of its own) breaks the next collective call on the others, which stop
with :class:`PeerLost`, one sentence of ours, instead of a backend traceback; the checkpoint
on disk is the last one written at an epoch's end.

**Sharded evaluation.** Inside :func:`sharded_evaluation` (the experiment layer opens it around
the held-out metrics on every rank) the estimators split their work by *evaluation batch*:
batch ``b`` of ``count`` is computed by rank ``b % world`` (:func:`my_batches`), and the
per-batch results are gathered on every rank in batch order (:func:`gather_batches`). Batches
are the same whatever the number of processes, and the Monte Carlo noise of batch ``b`` is
seeded by ``base + b``, ``base`` drawn once from rank 0's random state
(:func:`evaluation_seed`): an example gets the same noise, so the same estimate, under any
number of processes, and the gathered numbers equal one process's exactly. Outside
the block (one process, or rank 0 drawing figures alone) everything runs unsharded.

A loss is a sum over examples only when every latent site lies in ``plate("data")``: a model
with global latents (a mixture's component parameters, say) would count their prior once per
rank, so it is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

import pyro
from pyro.poutine import Trace
from pyro.poutine.util import site_is_subsample

from pyro_dgm.errors import PyroDGMError

# what torchrun sets for every process it starts
LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class PeerLost(PyroDGMError):
    """Another process of the group stopped: a collective call failed."""


@contextlib.contextmanager
def _collective():
    """Turn the backend's error of a collective call whose peer is gone into :class:`PeerLost`."""
    try:
        yield
    except RuntimeError as error:  # gloo and nccl raise DistBackendError, a RuntimeError
        raise PeerLost(f"another process of the group stopped (the {dist.get_backend()} "
                       f"backend lost it: {str(error).splitlines()[0][:120]})") from None


@dataclass(frozen=True)
class DataParallel:
    """This process's place in the process group: ``rank`` of ``world`` processes."""

    rank: int
    world: int

    @property
    def writes(self) -> bool:
        """Whether this rank writes files (rank 0 only)."""
        return self.rank == 0

    def shard(self, args: tuple) -> tuple:
        """This rank's rows ``rank::world`` of every tensor in the global batch ``args``."""
        return tuple(a[self.rank::self.world] if isinstance(a, torch.Tensor) else a
                     for a in args)

    def check_batches(self, examples: int, batch_size: int) -> None:
        """Refuse a data set or batch size that would leave a rank without examples."""
        if examples < self.world:
            raise PyroDGMError(f"the data set has {examples} examples, fewer than the "
                               f"{self.world} processes; use fewer processes")
        last = examples % batch_size
        if 0 < last < self.world:
            raise PyroDGMError(f"with {examples} examples and batch size {batch_size} the last "
                               f"batch of every epoch has {last} example(s), fewer than the "
                               f"{self.world} processes; choose another batch size")

    def sum(self, value: float) -> float:
        """``value`` summed over the ranks."""
        total = torch.tensor([value], dtype=torch.float64, device=_device())
        with _collective():
            dist.all_reduce(total)
        return float(total.item())

    def gather(self, value) -> list:
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        values = [None] * self.world
        with _collective():
            dist.all_gather_object(values, value)
        return values

    def check_same(self, settings: dict, ignore: tuple = ()) -> None:
        """Stop every rank, in one sentence, unless all ranks run the same ``settings`` (a dict
        of JSON values, e.g. the run's configuration); keys in ``ignore`` may differ (where a
        node keeps its data files, say)."""
        kept = {key: value for key, value in settings.items() if key not in ignore}
        mine = json.dumps(kept, sort_keys=True, default=str)
        everyone = self.gather(mine)
        if len(set(everyone)) == 1:
            return
        first = json.loads(everyone[0])
        for rank, text in enumerate(everyone):
            other = json.loads(text)
            keys = sorted(k for k in {*first, *other} if first.get(k) != other.get(k))
            if keys:
                raise PyroDGMError(f"the processes were started with different configurations "
                                   f"(rank {rank} differs from rank 0 in {', '.join(keys)}); "
                                   f"start every process with the same command")

    def sum_gradients(self, params: list[torch.Tensor]) -> None:
        """Replace each parameter's gradient by its sum over the ranks, in one ``all_reduce``.

        A parameter with no gradient on any rank keeps none (so Adam leaves it alone, as one
        process would); one with a gradient on some rank gets the sum, zeros counting for the
        others.
        """
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        present = torch.tensor([float(p.grad is not None) for p in params],
                               dtype=grads[0].dtype, device=grads[0].device)
        flat = torch.cat([g.reshape(-1) for g in grads] + [present])
        with _collective():
            dist.all_reduce(flat)
        sums = flat[:-len(params)].split([p.numel() for p in params])
        for p, total, anywhere in zip(params, sums, flat[-len(params):].tolist()):
            p.grad = total.view_as(p).clone() if anywhere > 0 else None

    def broadcast_parameters(self, params: list[torch.Tensor]) -> None:
        """Copy rank 0's values of ``params`` into every rank's."""
        with torch.no_grad(), _collective():
            for p in params:
                dist.broadcast(p.data, src=0)

    def seed_noise(self, seed: int, steps: int) -> None:
        """Seed this rank's Monte Carlo noise: ``seed + rank`` at the start; a run resumed after
        ``steps`` steps takes ``seed + rank + world * steps`` (a stream no rank used before)."""
        pyro.set_rng_seed(seed + self.rank + self.world * steps)


def _device() -> torch.device:
    """Where the backend reduces tensors: the current CUDA device under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def current() -> DataParallel | None:
    """This process's place in the default process group, or None when there is none."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return DataParallel(dist.get_rank(), dist.get_world_size())


def writes_files() -> bool:
    """Whether this process writes run folders: always, except on ranks other than 0."""
    group = current()
    return group is None or group.writes


def launched() -> bool:
    """Whether torchrun (or another launcher setting ``WORLD_SIZE``) started this process."""
    return "WORLD_SIZE" in os.environ


def backend_for(device: str) -> str:
    """``nccl`` for CUDA, ``gloo`` for the CPU."""
    return "nccl" if device == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(device: str = "cpu"):
    """Join the process group that torchrun set up, for the duration of the block.

    Yields the :class:`DataParallel` place of this process, or None (and does nothing) when the
    process was not launched by torchrun. A launch that lacks one of torchrun's variables is
    refused in one sentence. A block that ends normally waits for every rank before leaving
    the group (rank 0 may still be evaluating and writing).
    """
    if not launched():
        yield None
        return
    missing = [name for name in LAUNCH_VARIABLES if name not in os.environ]
    if missing:
        raise PyroDGMError(f"WORLD_SIZE is set but {', '.join(missing)} is not: launch "
                           f"data-parallel training with torchrun")
    if device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend_for(device))
    try:
        yield current()
        with _collective():
            dist.barrier()  # every rank leaves together, once rank 0 has written the run folder
    finally:
        dist.destroy_process_group()


def check_sums_over_examples(*traces: Trace) -> None:
    """Refuse programs with a sample site outside ``plate("data")``: their loss is not a sum
    over examples, so shards of a batch cannot be summed into the global batch's loss. Refuse
    also a site with a decaying-average baseline (``TraceGraph_ELBO``'s
    ``use_decaying_avg_baseline``): the average is state outside the parameters, which each
    rank would update from its own shard."""
    for trace in traces:
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):  # a plate's own site
                continue
            if site["infer"].get("baseline", {}).get("use_decaying_avg_baseline", False):
                raise PyroDGMError(f"site {name!r} uses a decaying-average baseline, state that "
                                   f"each process would update from its own shard; use an "
                                   f"nn_baseline, or train this model in one process")
            if not any(frame.name == "data" for frame in site["cond_indep_stack"]):
                raise PyroDGMError(f"site {name!r} lies outside plate('data'), so the loss is "
                                   f"not a sum over examples and cannot be split over "
                                   f"processes; train this model in one process")


# -- sharded evaluation ---------------------------------------------------------------------
_SHARDING = [False]


@contextlib.contextmanager
def sharded_evaluation():
    """Within this block, on every rank of a process group, the estimators share out their
    evaluation batches and gather the results (module docstring). Every rank must run the same
    evaluation inside it; with no process group it changes nothing."""
    previous, _SHARDING[0] = _SHARDING[0], True
    try:
        yield
    finally:
        _SHARDING[0] = previous


def evaluation_group() -> DataParallel | None:
    """The group that shares the evaluation in progress, or None (one process computes all)."""
    return current() if _SHARDING[0] else None


def my_batches(count: int) -> range:
    """The indices, among ``count`` evaluation batches, that this process computes."""
    group = evaluation_group()
    return range(count) if group is None else range(group.rank, count, group.world)


def gather_batches(results: dict, count: int, error: str | None = None) -> list:
    """The results of all ``count`` batches in order, from ``results`` (this process's, by
    batch index: tensors or numbers). ``error`` is this process's sentence if it failed; if any
    process failed, every process raises the first such sentence (none is left waiting)."""
    group = evaluation_group()
    if group is None:
        if error is not None:
            raise PyroDGMError(error)
        return [results[b] for b in range(count)]
    device = next((r.device for r in results.values() if isinstance(r, torch.Tensor)), None)
    moved = {b: r.cpu() if isinstance(r, torch.Tensor) else r for b, r in results.items()}
    merged, errors = {}, []
    for theirs, their_error in group.gather((moved, error)):
        merged.update(theirs)
        errors += [their_error] if their_error is not None else []
    if errors:
        raise PyroDGMError(errors[0])
    return [merged[b].to(device) if device is not None and isinstance(merged[b], torch.Tensor)
            else merged[b] for b in range(count)]


def evaluation_seed() -> int:
    """A base seed for per-batch evaluation noise: drawn from this process's random state, and
    rank 0's under sharded evaluation (so every rank seeds batch ``b`` alike)."""
    base = int(torch.randint(2 ** 31, ()).item())
    group = evaluation_group()
    return base if group is None else group.gather(base)[0]
