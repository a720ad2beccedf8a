"""One Trainer for every objective: SVI steps over mini-batches, checkpoints, resume, NaN stop.

The Trainer knows nothing about particular models: it takes a model and a guide (any Pyro
programs, ``PyroModule`` or plain functions using ``pyro.param``), an objective name from
:mod:`pyro_dgm.infer.objectives` (or a ready Pyro loss object), and a data set, and drives
``pyro.infer.SVI``. Objectives with separate model and guide updates fit the same loop because
SVI only needs their ``loss_and_grads``.
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
import pyro.poutine as poutine
from pyro.infer import SVI
from pyro.optim import Adam, ClippedAdam
from torch.distributions import biject_to

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.estimators import plate_nesting
from pyro_dgm.infer.objectives import build_objective, get_objective

CHECKPOINT_VERSION = 1


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

    A crash mid-write leaves the previous checkpoint intact, never a half-written one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise PyroDGMError(f"checkpoint {path} is not a pyro_dgm checkpoint of version "
                           f"{CHECKPOINT_VERSION}")
    return state


def _does_not_fit(error: Exception) -> PyroDGMError:
    return PyroDGMError(f"the checkpoint does not fit this model and guide "
                        f"({str(error).splitlines()[0]})")


def program_traces(model: Callable, guide: Callable, *args):
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


def set_plate_nesting(loss, guide_trace, model_trace) -> None:
    """Fix ``max_plate_nesting`` of a loss that would otherwise guess it on its first call
    (drawing random numbers); as in ``pyro.infer.ELBO.__init__``, the count includes a
    vectorized particle plate."""
    if getattr(loss, "max_plate_nesting", None) == float("inf"):
        particle_plate = int(getattr(loss, "vectorize_particles", False))
        loss.max_plate_nesting = plate_nesting(guide_trace, model_trace) + particle_plate


class Trainer:
    """Fit ``model``/``guide`` with ``objective`` by stochastic gradient steps on mini-batches.

    >>> trainer = Trainer(model, guide, objective="elbo", lr=1e-3, batch_size=100)
    >>> history = trainer.fit(train_data, epochs=10)   # [{"epoch", "loss", "seconds"}, ...]

    ``loss`` is the objective's loss per example (for ELBO-type objectives, the negative ELBO in
    nats), averaged over the epoch. With ``checkpoint=PATH`` the state is written atomically
    after every epoch and ``fit(..., resume=True)`` continues from it. A NaN or infinite loss
    stops training with :class:`TrainingDiverged`, leaving the last good checkpoint on disk.

    Creating a Trainer clears Pyro's global param store and seeds Pyro's random state, so that
    each run starts from its own parameters and ``seed`` alone.
    """

    def __init__(self, model: Callable, guide: Callable, objective: str | Any = "elbo", *,
                 lr: float = 1e-3, batch_size: int = 100, seed: int = 0, device: str = "cpu",
                 clip_norm: float | None = None, objective_options: dict | None = None,
                 checkpoint: str | Path | None = None, progress: bool = True):
        if batch_size < 1:
            raise PyroDGMError(f"batch size must be a positive whole number, got {batch_size}")
        if not lr > 0:
            raise PyroDGMError(f"learning rate must be positive, got {lr}")
        self.model, self.guide = model, guide
        self.device = resolve_device(device)
        for module in _modules(model, guide).values():
            module.to(self.device)
        if isinstance(objective, str):
            self.objective_name = objective
            self.loss = build_objective(objective, **(objective_options or {}))
            self._check = get_objective(objective).check
        else:
            self.objective_name, self.loss, self._check = type(objective).__name__, objective, None
        optim_args = {"lr": lr} if clip_norm is None else {"lr": lr, "clip_norm": clip_norm}
        self.optim = (Adam if clip_norm is None else ClippedAdam)(optim_args)
        self.batch_size, self.seed, self.progress = batch_size, seed, progress
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.history: list[dict] = []
        self._prepared = False
        self._pending_params = None
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.svi = SVI(model, guide, self.optim, self.loss)

    # -- one step -------------------------------------------------------------------------
    def step(self, batch: torch.Tensor | tuple) -> float:
        """One SVI step on ``batch``; returns the loss per example.

        ``batch`` is the programs' argument, or a tuple of their arguments (e.g. ``(x, y)``
        for a model of partly labelled data); the first argument's leading dimension counts
        the examples.
        """
        args = tuple(a.to(self.device) for a in (batch if isinstance(batch, tuple) else (batch,)))
        if not self._prepared:
            self._prepare(*args)
        loss = self.svi.step(*args)
        loss = loss[0] if isinstance(loss, tuple) else loss  # e.g. (wake_theta, phi) losses
        return loss / args[0].shape[0]

    def _prepare(self, *args: torch.Tensor) -> None:
        """Run the programs once, leaving the random state as it was.

        The pass registers every parameter in Pyro's param store (then a restored checkpoint
        is copied into those live tensors), runs the objective's check on the guide trace, and fixes
        ``max_plate_nesting`` for losses that would otherwise guess it (drawing random numbers
        on their first call, which would make a resumed run differ from an uninterrupted one).
        """
        guide_trace, model_trace = program_traces(self.model, self.guide, *args)
        if self._check is not None:
            self._check(guide_trace)
        set_plate_nesting(self.loss, guide_trace, model_trace)
        self._prepared = True
        if self._pending_params is not None:
            self._copy_pending_params()

    # -- epochs ---------------------------------------------------------------------------
    def fit(self, data, epochs: int, resume: bool = False) -> list[dict]:
        """Train until ``epochs`` epochs in total are done; returns the history."""
        if epochs < 0:
            raise PyroDGMError(f"epochs must be zero or more, got {epochs}")
        if resume:
            self.restore()
        epochs_done = len(self.history)
        bar = tqdm(range(epochs_done, epochs), desc="train", unit="epoch",
                   disable=not self.progress, initial=epochs_done, total=epochs)
        for epoch in bar:
            started = time.perf_counter()
            total, count = 0.0, 0
            for batch in data.batches(self.batch_size, generator=self.generator):
                try:
                    loss = self.step(batch)
                except ValueError as error:  # a distribution refused non-finite arguments
                    if "invalid values" not in str(error) and self._parameters_finite():
                        raise
                    loss = math.nan
                if not math.isfinite(loss):
                    self._diverged(epoch + 1, loss)
                size = (batch[0] if isinstance(batch, tuple) else batch).shape[0]
                total, count = total + loss * size, count + size
            entry = {"epoch": epoch + 1, "loss": total / max(count, 1),
                     "seconds": time.perf_counter() - started}
            self.history.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.3f}")
            if self.checkpoint is not None:
                self.save(self.checkpoint)
        if self.checkpoint is not None and not self.checkpoint.exists():
            self.save(self.checkpoint)  # e.g. epochs=0: the run folder still gets its checkpoint
        return self.history

    @staticmethod
    def _parameters_finite() -> bool:
        return all(bool(torch.isfinite(value).all())
                   for value in pyro.get_param_store().values())

    def _diverged(self, epoch: int, loss: float) -> None:
        kept = (f"the last good checkpoint (epoch {len(self.history)}) is kept at {self.checkpoint}"
                if self.checkpoint is not None and self.checkpoint.exists()
                else "no checkpoint was written")
        raise TrainingDiverged(f"the loss became {loss} in epoch {epoch}; {kept}; try a lower "
                               f"learning rate or gradient clipping (clip_norm)")

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: parameters, optimizer, history, RNG states."""
        return {
            "version": CHECKPOINT_VERSION,
            "history": list(self.history),
            "modules": {name: m.state_dict() for name, m in _modules(self.model, self.guide).items()},
            "param_store": pyro.get_param_store().get_state(),
            "optim": self.optim.get_state(),
            "rng": {"pyro": pyro.util.get_rng_state(), "batches": self.generator.get_state()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``.

        Parameter values are copied into the live parameter tensors in place, once the first
        step has registered them (now, if it already has). Copying in place, rather than
        replacing the param store's tensors, keeps ``PyroModule`` parameters,
        ``pyro.module``-registered networks and ``pyro.param`` sites all pointing at the tensors
        that the optimizer updates.
        """
        try:
            for name, module in _modules(self.model, self.guide).items():
                module.load_state_dict(state["modules"][name])
        except (KeyError, RuntimeError) as error:
            raise _does_not_fit(error) from None
        self._pending_params = state["param_store"]
        if self._prepared:
            self._copy_pending_params()
        self.optim.set_state(state["optim"])  # PyroOptim applies it when each parameter appears
        self.history = list(state["history"])
        pyro.util.set_rng_state(state["rng"]["pyro"])
        self.generator.set_state(state["rng"]["batches"])

    def _copy_pending_params(self) -> None:
        store, saved = pyro.get_param_store(), self._pending_params
        self._pending_params = None
        try:
            for name, value in saved["params"].items():
                if name in store:
                    with torch.no_grad():
                        store.get_param(name).unconstrained().copy_(value)
                else:  # a parameter the programs create later
                    constraint = saved["constraints"][name]
                    store.setdefault(name, biject_to(constraint)(value), constraint)
        except RuntimeError as error:
            raise _does_not_fit(error) from None

    def save(self, path: str | Path) -> None:
        save_atomically(self.state_dict(), Path(path))

    def restore(self, path: str | Path | None = None) -> None:
        """Load the checkpoint at ``path`` (default: this Trainer's checkpoint)."""
        path = Path(path) if path is not None else self.checkpoint
        if path is None:
            raise PyroDGMError("resume needs a checkpoint path")
        self.load_state_dict(load_checkpoint(path, self.device))
