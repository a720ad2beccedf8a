"""One Trainer for every objective: torch optimizer steps on a loss module, mini-batches from
one persistent batch stream, an epoch or a seconds budget, checkpoints, exact resume, NaN stop.

The Trainer knows nothing about particular models: it takes a model and a guide (any Pyro
programs, ``PyroModule`` or plain functions using ``pyro.param`` / ``pyro.module``), an
objective name from :mod:`pyro_dgm.infer.objectives` (or a ready
:class:`~pyro_dgm.infer.objectives.ObjectiveLoss`), and a data set. Every objective is a torch
``nn.Module`` loss, so one step is the plain PyTorch step

    optimizer.zero_grad(); loss(*batch).backward(); optimizer.step()

with ``torch.optim.Adam`` over the loss module's parameters (model, guide and the objective's
own networks) plus the param-store parameters of plain-function programs, found by one trace
of the programs before the first step.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

import pyro
import pyro.infer
import pyro.poutine as poutine
from pyro.poutine import Trace
from torch.distributions import biject_to

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import distributed
from pyro_dgm.infer.objectives import (
    ObjectiveLoss,
    build_objective,
    elbo_loss,
    get_objective,
    refuse_unless,
)

CHECKPOINT_VERSION = 2

# --precision: the dtype of the model's and guide's forward pass under autocast (None: as built)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


# a loss per example this many times the scale of the run's first losses counts as diverged
EXPLOSION = 1e6


class TrainingDiverged(PyroDGMError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


def resolve_device(device: str) -> torch.device:
    """``"cpu"`` or ``"cuda"`` as a torch device, with one sentence if CUDA is missing."""
    if device not in ("cpu", "cuda"):
        raise PyroDGMError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise PyroDGMError("--device cuda was asked for, but torch sees no CUDA device here")
    return torch.device(device)


def _modules(*programs) -> dict[str, torch.nn.Module]:
    return {name: p for name, p in zip(("model", "guide"), programs)
            if isinstance(p, torch.nn.Module)}


def save_atomically(state: dict, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A crash mid-write leaves the previous checkpoint intact, never a half-written one; a
    write that fails (a full disk, a folder made read-only) says so in one sentence.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as error:
        raise _not_written(path, error) from None
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise _not_written(path, error) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _not_written(path: Path, error: OSError) -> PyroDGMError:
    kept = "the previous one is kept" if path.exists() else "no earlier one exists"
    return PyroDGMError(f"could not write {path} ({error.strerror or error}); {kept}")


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint, or say in one sentence why it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise PyroDGMError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # torch raises many types for damaged files
        raise PyroDGMError(f"checkpoint {path} is corrupt or unreadable ({error.__class__.__name__})"
                           f"; retrain, or restore it from a copy") from None
    version = state.get("version") if isinstance(state, dict) else None
    if isinstance(version, int) and version < CHECKPOINT_VERSION:
        raise PyroDGMError(f"checkpoint {path} was written by an older pyro_dgm (checkpoint "
                           f"version {version}, this one reads {CHECKPOINT_VERSION}); retrain")
    if version != CHECKPOINT_VERSION:
        raise PyroDGMError(f"checkpoint {path} is not a pyro_dgm checkpoint of version "
                           f"{CHECKPOINT_VERSION}")
    return state


def _does_not_fit(error: Exception) -> PyroDGMError:
    return PyroDGMError(f"the checkpoint does not fit this model and guide "
                        f"({str(error).splitlines()[0]})")


def program_traces(model: Callable, guide: Callable, *args) -> tuple[Trace, Trace]:
    """``(guide_trace, model_trace)`` of one blocked run of the programs on ``args``, leaving
    Pyro's random state as it was (so a first pass does not shift a run's random numbers)."""
    rng_state = pyro.util.get_rng_state()
    try:
        with poutine.block():
            guide_trace = poutine.trace(guide).get_trace(*args)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args)
    finally:
        pyro.util.set_rng_state(rng_state)
    return guide_trace, model_trace


def store_parameters(*traces: Trace) -> list[torch.Tensor]:
    """The trainable tensors behind the ``param`` sites of ``traces``, in order, once each:
    the param store's unconstrained tensors (``pyro.param``, ``pyro.module``)."""
    found = {}
    for trace in traces:
        for site in trace.nodes.values():
            if site["type"] == "param":
                value = site["value"]
                unconstrained = getattr(value, "unconstrained", None)
                tensor = unconstrained() if unconstrained is not None else value
                if tensor.requires_grad and tensor.is_leaf:
                    found.setdefault(id(tensor), tensor)
    return list(found.values())


def _batch_size(batch) -> int:
    return (batch[0] if isinstance(batch, tuple) else batch).shape[0]


class Trainer:
    """Fit ``model``/``guide`` with ``objective`` by stochastic gradient steps on mini-batches.

    >>> trainer = Trainer(model, guide, objective="elbo", lr=1e-3, batch_size=100)
    >>> history = trainer.fit(train_data, epochs=10)   # [{"epoch", "loss", "seconds"}, ...]
    >>> trainer.fit(train_data, seconds=60)            # or: until 60 s of training in total

    ``loss`` in the history is the objective's loss per example (for ELBO-type objectives, the
    negative ELBO in nats), averaged over the epoch; ``seconds`` is the epoch's time in training
    steps. ``trainer.loss`` is the objective's :class:`ObjectiveLoss`; ``trainer.steps``,
    ``trainer.examples`` and ``trainer.train_seconds`` count the steps, the examples seen and
    the time spent in steps. The optimizer is ``torch.optim.Adam``; ``clip_norm`` clips the
    norm of the whole gradient (``torch.nn.utils.clip_grad_norm_``) before each step.

    With ``checkpoint=PATH`` the state is written atomically after every epoch and at the end
    of every ``fit``; ``fit(..., resume=True)`` continues from it exactly, mid-epoch included.
    A NaN or infinite loss (not applied), or one that explodes to more than ``EXPLOSION``
    (10^6) times the scale of the run's first losses, stops training with
    :class:`TrainingDiverged`, leaving the last good checkpoint on disk.

    ``trainer.on_step`` and ``trainer.on_epoch`` are lists of callbacks that ``fit`` calls as
    ``hook(trainer, loss)`` after every step (its finite loss per example) and as
    ``hook(trainer, entry)`` after every completed epoch (its history entry, checkpoint saved),
    e.g. to mirror the run to an experiment tracker.

    Creating a Trainer clears Pyro's global param store and seeds Pyro's random state, so that
    each run starts from its own parameters and ``seed`` alone.

    Inside a ``torch.distributed`` process group (:mod:`pyro_dgm.infer.distributed`) the Trainer
    is data-parallel: ``batch_size`` is the global batch, each rank steps on its shard of it,
    gradients and losses are summed over the ranks, and only rank 0 writes checkpoints. Only
    registered objectives that declare themselves data-parallel safe train there
    (:func:`~pyro_dgm.infer.objectives.refuse_unless`).

    ``precision="bf16"`` runs the objective's forward pass (model, guide, the loss) under
    ``torch.autocast`` to bfloat16, on the CPU or CUDA: matrix products run in bfloat16,
    reductions and log-densities where autocast keeps them in float32; parameters, gradients
    and the optimizer's state stay float32. Only objectives that declare ``bf16`` take it.
    """

    def __init__(self, model: Callable, guide: Callable, objective: str | ObjectiveLoss | Any = "elbo",
                 *, lr: float = 1e-3, batch_size: int = 100, seed: int = 0, device: str = "cpu",
                 clip_norm: float | None = None, objective_options: dict | None = None,
                 checkpoint: str | Path | None = None, progress: bool = True,
                 precision: str = "fp32"):
        if batch_size < 1:
            raise PyroDGMError(f"batch size must be a positive whole number, got {batch_size}")
        if not lr > 0:
            raise PyroDGMError(f"learning rate must be positive, got {lr}")
        if clip_norm is not None and not clip_norm > 0:
            raise PyroDGMError(f"clip_norm must be positive, got {clip_norm}")
        self.group = distributed.current()  # None: one process
        if self.group is not None and batch_size % self.group.world:
            raise PyroDGMError(f"the batch size {batch_size} does not divide among "
                               f"{self.group.world} processes; choose a multiple of "
                               f"{self.group.world}")
        self.model, self.guide = model, guide
        self.device = resolve_device(device)
        if isinstance(objective, pyro.infer.ELBO):  # one of Pyro's own, e.g. Trace_ELBO()
            objective = elbo_loss(model, guide, objective)
        if isinstance(objective, ObjectiveLoss):
            self.objective_name, self.loss, self._check = type(objective).__name__, objective, None
        elif isinstance(objective, str):
            self.objective_name = objective
            self.loss = build_objective(objective, model, guide, **(objective_options or {}))
            self._check = get_objective(objective).check
        else:
            raise PyroDGMError(f"objective must be a registered name, an ObjectiveLoss or a Pyro "
                               f"ELBO, got "
                               f"{type(objective).__name__}")
        if precision not in PRECISIONS:
            raise PyroDGMError(f"unknown precision {precision!r}; expected one of "
                               f"{', '.join(PRECISIONS)}")
        self.precision = precision
        for what, wanted in (("data_parallel", self.group is not None),
                             ("bf16", precision == "bf16")):
            if wanted:
                self._refuse_unless_declared(objective, what)
        self.loss.to(self.device)
        self.lr, self.clip_norm = lr, clip_norm
        self.batch_size, self.seed, self.progress = batch_size, seed, progress
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.history: list[dict] = []
        self.on_step: list[Callable[[Trainer, float], None]] = []
        self.on_epoch: list[Callable[[Trainer, dict], None]] = []
        self.steps, self.examples, self.train_seconds = 0, 0, 0.0
        self.optimizer: torch.optim.Optimizer | None = None  # built by the first step
        self._prepared = False
        self._params: list[torch.Tensor] = []
        self._pending_state: dict | None = None
        self._epoch: dict | None = None      # the epoch in progress: its start and sums so far
        self._stream = None                  # its batches still to come
        self._next_batch = None
        self._resumed_epoch: dict | None = None  # a checkpoint's epoch in progress
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self._first_loss: float | None = None
        self.saved_epochs: int | None = None  # completed epochs in the checkpoint on disk

    # -- one step -------------------------------------------------------------------------
    def step(self, batch: torch.Tensor | tuple) -> float:
        """One optimizer step on ``batch``; returns the loss per example.

        ``batch`` is the programs' argument, or a tuple of their arguments (e.g. ``(x, y)``
        for a model of partly labelled data); the first argument's leading dimension counts
        the examples. A NaN or infinite loss is returned without changing any parameter.
        """
        started = time.perf_counter()
        args = tuple(a.to(self.device) if isinstance(a, torch.Tensor) else a
                     for a in (batch if isinstance(batch, tuple) else (batch,)))
        size = args[0].shape[0]
        if self.group is not None:
            args = self.group.shard(args)
        if not self._prepared:
            self._prepare(*args)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.loss(*args)
        value = loss.item() if self.group is None else self.group.sum(loss.item())
        if math.isfinite(value) and loss.requires_grad:
            loss.backward()
            if self.group is not None:
                self.group.sum_gradients(self._params)
            if self.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self._params, self.clip_norm)
            self.optimizer.step()
        self.steps, self.examples = self.steps + 1, self.examples + size
        self.train_seconds += time.perf_counter() - started
        return value / size

    def _autocast(self):
        """``torch.autocast`` to the run's precision on its device (off for fp32)."""
        dtype = PRECISIONS[self.precision]
        return torch.autocast(self.device.type, dtype=dtype or torch.float32,
                              enabled=dtype is not None)

    @staticmethod
    def _refuse_unless_declared(objective, what: str) -> None:
        """A registered objective must declare ``what`` (data parallelism, bf16); a ready-made
        loss module declares nothing, so it is refused both."""
        if isinstance(objective, str):
            refuse_unless(objective, what)
            return
        doing = {"data_parallel": "data-parallel training", "bf16": "--precision bf16"}[what]
        raise PyroDGMError(f"{doing} needs a registered objective name (whose registration "
                           f"declares it safe), not a ready-made {type(objective).__name__}")

    def _prepare(self, *args: torch.Tensor) -> None:
        """Run the programs once, leaving the random state as it was, and build the optimizer.

        The pass registers every ``pyro.param`` / ``pyro.module`` parameter of plain-function
        programs in Pyro's param store (found again from the traces' ``param`` sites), runs the
        objective's check on the guide trace and lets the objective set itself up (plate
        nesting, its own networks), without drawing random numbers that would make a resumed
        run differ from an uninterrupted one. A restored checkpoint is copied in here.
        """
        guide_trace, model_trace = program_traces(self.model, self.guide, *args)
        if self._check is not None:
            self._check(guide_trace)
        if self.group is not None:
            distributed.check_sums_over_examples(guide_trace, model_trace)
        rng_state = pyro.util.get_rng_state()  # e.g. the objective's networks' initial weights
        self.loss.prepare(args, guide_trace, model_trace)
        pyro.util.set_rng_state(rng_state)
        self.loss.to(self.device)
        module_params = list(self.loss.parameters())
        known = {id(p) for p in module_params}
        self._params = module_params + [p for p in store_parameters(guide_trace, model_trace)
                                        if id(p) not in known]
        # programs without parameters (a fixed model, say) still step: with nothing to update
        self.optimizer = torch.optim.Adam(self._params or [torch.zeros(0, requires_grad=True)],
                                          lr=self.lr)
        self._prepared = True
        if self._pending_state is not None:
            self._load_pending_state()
        if self.group is not None:  # equal parameters, per-rank noise
            self.group.broadcast_parameters(self._params)
            self.group.seed_noise(self.seed, self.steps)

    def _step_or_nan(self, batch) -> float:
        """``step(batch)``, or NaN where a distribution refused NaN parameters."""
        try:
            return self.step(batch)
        except ValueError as error:  # a distribution refused non-finite arguments
            if "invalid values" not in str(error) and self._parameters_finite():
                raise
            return math.nan

    def _parameters_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self._params)

    # -- the training loop ----------------------------------------------------------------
    def fit(self, data, epochs: int | None = None, *, seconds: float | None = None,
            resume: bool = False) -> list[dict]:
        """Train until ``epochs`` epochs in total are done, or until ``trainer.train_seconds``
        reaches ``seconds`` (with both, whichever comes first); returns the history.

        Batches come from one persistent stream: a budget that ends mid-epoch leaves the rest
        of the epoch for the next ``fit``, so ``fit(data, seconds=10)`` then
        ``fit(data, seconds=20)`` trains on the same batches as one ``fit(data, seconds=20)``.
        The history has one entry per completed epoch.
        """
        if epochs is None and seconds is None:
            raise PyroDGMError("fit needs a budget: epochs, seconds, or both")
        if epochs is not None and not epochs >= 0:
            raise PyroDGMError(f"epochs must be zero or more, got {epochs}")
        if seconds is not None and not seconds >= 0:
            raise PyroDGMError(f"seconds must be zero or more, got {seconds}")
        if self.group is not None:
            self.group.check_batches(len(data), self.batch_size)
        if resume:
            self.restore()

        def done() -> bool:
            return ((epochs is not None and len(self.history) >= epochs)
                    or (seconds is not None and self.train_seconds >= seconds))

        bar = tqdm(desc="train", unit="epoch", disable=not self.progress,
                   initial=len(self.history), total=epochs)
        while not done():
            batch = self._take_batch(data)
            try:
                loss = self._step_or_nan(batch)
            except distributed.PeerLost as error:  # another rank died: say so, keep the file
                raise PyroDGMError(f"{error} in epoch {len(self.history) + 1}; "
                                   f"{self._kept()}") from None
            if not math.isfinite(loss) or self._exploded(loss):
                self._diverged(len(self.history) + 1, loss)
            size = _batch_size(batch)
            self._add_step_metrics()
            self._epoch["loss"] += loss * size
            self._epoch["examples"] += size
            self._epoch["seconds"] = self.train_seconds - self._epoch["started_at"]
            for hook in self.on_step:
                hook(self, loss)
            if self._next_batch is None:
                self._end_epoch()
                for hook in self.on_epoch:
                    hook(self, self.history[-1])
                bar.update(1)
                bar.set_postfix(loss=f"{self.history[-1]['loss']:.3f}")
        bar.close()
        if self.checkpoint is not None:
            self.save(self.checkpoint)  # where this budget stopped, mid-epoch or not
        return self.history

    def _add_step_metrics(self) -> None:
        """Add the objective's ``step_metrics`` of the last step (sums over its batch, summed
        over ranks under data parallelism) to the epoch's sums."""
        sums = self._epoch.setdefault("metrics", {})
        for name, total in self.loss.step_metrics.items():
            total = total if self.group is None else self.group.sum(total)
            sums[name] = sums.get(name, 0.0) + total

    def _take_batch(self, data):
        """The next batch of the stream, starting a new epoch when none is in progress; the
        batch after it is drawn too, so that an epoch's end is known at its last step."""
        if self._epoch is None:
            self._start_epoch(data)
        batch, self._next_batch = self._next_batch, next(self._stream, None)
        self._epoch["batches"] += 1
        return batch

    def _start_epoch(self, data) -> None:
        """Open the next epoch's stream; a checkpoint's epoch in progress is replayed to where
        it stopped (the same draws, so the same generator state)."""
        resumed, self._resumed_epoch = self._resumed_epoch, None
        if resumed is not None:
            self.generator.set_state(resumed["rng"])
        self._epoch = {"rng": self.generator.get_state(), "batches": 0, "loss": 0.0,
                       "examples": 0, "seconds": 0.0, "started_at": self.train_seconds}
        self._stream = iter(data.batches(self.batch_size, generator=self.generator))
        self._next_batch = next(self._stream, None)
        if self._next_batch is None:
            raise PyroDGMError("the data set yields no batches")
        if resumed is not None:
            for _ in range(resumed["batches"]):
                self._take_batch(data)
            self._epoch.update(loss=resumed["loss"], examples=resumed["examples"],
                               metrics=dict(resumed.get("metrics", {})),
                               seconds=resumed["seconds"],
                               started_at=self.train_seconds - resumed["seconds"])

    def _end_epoch(self) -> None:
        epoch = self._epoch
        examples = max(epoch["examples"], 1)
        self.history.append({"epoch": len(self.history) + 1,
                             "loss": epoch["loss"] / examples,
                             "seconds": epoch["seconds"],
                             **{name: total / examples
                                for name, total in epoch.get("metrics", {}).items()}})
        self._epoch, self._stream = None, None
        if self.checkpoint is not None:
            self.save(self.checkpoint)

    def _exploded(self, loss: float) -> bool:
        """Whether ``loss`` (per example) is more than ``EXPLOSION`` times the scale of the run's
        first losses (the first epoch's mean, or before it ends the first step's; at least 1)."""
        if self.history:
            reference = self.history[0]["loss"]
        else:
            if self._first_loss is None:
                self._first_loss = loss
            reference = self._first_loss
        return abs(loss) > EXPLOSION * max(1.0, abs(reference))

    def _kept(self) -> str:
        return (f"the last good checkpoint (epoch {self.saved_epochs}) is kept at {self.checkpoint}"
                if self.saved_epochs is not None else "no checkpoint was written")

    def _diverged(self, epoch: int, loss: float) -> None:
        kept = self._kept()
        what = (f"became {loss}" if not math.isfinite(loss) else
                f"exploded to {loss:.3g} per example (over {EXPLOSION:.0e} times its first values)")
        raise TrainingDiverged(f"the loss {what} in epoch {epoch}; {kept}; try a lower "
                               f"learning rate or gradient clipping (clip_norm)")

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: parameters (modules, the objective's own,
        the param store's), the optimizer, history, counters, the epoch in progress, RNG states."""
        if self._pending_state is not None:  # restored but not yet stepped: still that state
            return self._pending_state
        epoch = (None if self._epoch is None else
                 {k: v for k, v in self._epoch.items() if k != "started_at"})
        return {
            "version": CHECKPOINT_VERSION,
            "history": list(self.history),
            "modules": {name: m.state_dict() for name, m in _modules(self.model, self.guide).items()},
            "objective": self.loss.own_state_dict(),
            "param_store": pyro.get_param_store().get_state(),
            "optim": self.optimizer.state_dict() if self._prepared else None,
            "counters": {"steps": self.steps, "examples": self.examples,
                         "train_seconds": self.train_seconds},
            "epoch": epoch,
            "rng": {"pyro": pyro.util.get_rng_state(), "batches": self.generator.get_state()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``.

        Module parameters are loaded now; the objective's own networks, the param store's
        values and the optimizer's state once the first step has built them (now, if it
        already has). Param-store values are copied into the live tensors in place, which keeps
        ``PyroModule`` parameters, ``pyro.module``-registered networks and ``pyro.param`` sites
        all pointing at the tensors that the optimizer updates. An epoch in progress continues
        at its next batch.
        """
        try:
            for name, module in _modules(self.model, self.guide).items():
                module.load_state_dict(state["modules"][name])
        except (KeyError, RuntimeError) as error:
            raise _does_not_fit(error) from None
        self.history = list(state["history"])
        counters = state["counters"]
        self.steps, self.examples = counters["steps"], counters["examples"]
        self.train_seconds = counters["train_seconds"]
        pyro.util.set_rng_state(state["rng"]["pyro"])
        self._resumed_epoch = state["epoch"]
        self._epoch, self._stream, self._next_batch = None, None, None
        self.generator.set_state(state["rng"]["batches"])
        self._pending_state = state
        if self._prepared:
            self._load_pending_state()

    def _load_pending_state(self) -> None:
        state, self._pending_state = self._pending_state, None
        try:
            self.loss.load_state_dict({**self.loss.state_dict(), **state["objective"]})
            self._copy_params(state["param_store"])
            if state["optim"] is not None:
                self.optimizer.load_state_dict(state["optim"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise _does_not_fit(error) from None

    @staticmethod
    def _copy_params(saved: dict) -> None:
        store = pyro.get_param_store()
        for name, value in saved["params"].items():
            if name in store:
                with torch.no_grad():
                    store.get_param(name).unconstrained().copy_(value)
            else:  # a parameter the programs create later
                constraint = saved["constraints"][name]
                store.setdefault(name, biject_to(constraint)(value), constraint)

    def save(self, path: str | Path) -> None:
        """Write the state to ``path`` atomically (under data parallelism: rank 0 only)."""
        state = self.state_dict()
        if self.group is None or self.group.writes:
            save_atomically(state, Path(path))
        self.saved_epochs = len(state["history"])

    def restore(self, path: str | Path | None = None) -> None:
        """Load the checkpoint at ``path`` (default: this Trainer's checkpoint)."""
        path = Path(path) if path is not None else self.checkpoint
        if path is None:
            raise PyroDGMError("resume needs a checkpoint path")
        state = load_checkpoint(path, self.device)
        self.load_state_dict(state)
        self.saved_epochs = len(state["history"])
