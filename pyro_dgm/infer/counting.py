"""Counting and locating objects: AIR's metrics and figures (the zoo hooks of ``air``).

Seed ``004`` ("inference: counting and locating"); Eslami et al. (2016) report the **count
accuracy**, the fraction of held-out canvases whose inferred number of objects equals the true
one. The inferred count is that of the guide's most probable scene
(:meth:`pyro_dgm.guides.air.AIRGuide.scene`: each step present while its presence probability
exceeds 1/2), so the number is deterministic for a trained guide.
"""

from __future__ import annotations

from pathlib import Path

import numpy
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from pyro_dgm import plots
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer.estimators import log_likelihood_bounds
from pyro_dgm.infer.evaluate import _device_of
from pyro_dgm.nn.spatial import box_from_where

STEP_COLOURS = ("tab:red", "tab:green", "tab:blue", "tab:orange", "tab:purple", "tab:cyan")


@torch.no_grad()
def infer_counts(guide, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The guide's inferred counts (N,) for canvases ``x`` (N, D), in batches."""
    return torch.cat([guide.count(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def confusion_matrix(true_counts: torch.Tensor, inferred: torch.Tensor, size: int) -> torch.Tensor:
    """``C[i, j]`` = number of canvases with ``i`` true and ``j`` inferred objects (size x size)."""
    if true_counts.shape != inferred.shape:
        raise PyroDGMError(f"true and inferred counts differ in shape: {tuple(true_counts.shape)} "
                           f"and {tuple(inferred.shape)}")
    index = true_counts.long().cpu() * size + inferred.long().cpu().clamp(max=size - 1)
    return torch.bincount(index, minlength=size * size).reshape(size, size)


def count_metrics(guide, data, limit: int | None = None) -> dict:
    """``count_accuracy``, the ``confusion`` matrix (rows true, columns inferred) and the accuracy per true count."""
    if data.y is None:
        raise PyroDGMError(f"data set {data.name!r} has no true counts to compare with")
    x, y = data.x[:limit], data.y[:limit]
    inferred = infer_counts(guide, x.to(_device_of(guide))).cpu()
    size = max(int(y.max()), guide.steps) + 1
    confusion = confusion_matrix(y, inferred, size)
    per_count = {str(k): (confusion[k, k] / confusion[k].sum()).item()
                 for k in range(size) if confusion[k].sum() > 0}
    return {"count_accuracy": (inferred == y).float().mean().item(),
            "confusion": confusion.tolist(), "count_accuracy_per_count": per_count,
            "n_counted": int(y.shape[0])}


def test_metrics(model, guide, test, num_samples: int) -> dict:
    """The held-out numbers of ``metrics.json``: count accuracy, confusion matrix, test ELBO."""
    metrics = count_metrics(guide, test)
    x = test.x[:500].to(_device_of(model))
    elbo, _ = log_likelihood_bounds(model, guide, x, num_samples=min(num_samples, 10))
    return {**metrics, "test_elbo": elbo.mean().item(), "test_elbo_samples": min(num_samples, 10),
            "test_elbo_n": int(x.shape[0])}


def evaluate(model, guide, test, train=None, *, iwae_samples: int = 1000, knn: bool = True,
             seed: int = 0) -> dict:
    """What ``pyro-dgm evaluate`` writes for AIR: count metrics on all held-out canvases, and
    the ELBO and IWAE bound on the first 200 (``iwae_samples`` capped at 100: each particle
    runs the recurrent guide)."""
    import pyro

    pyro.set_rng_seed(seed)
    metrics = count_metrics(guide, test)
    k = min(iwae_samples, 100)
    x = test.x[:200].to(_device_of(model))
    elbo, iwae = log_likelihood_bounds(model, guide, x, num_samples=k, batch_size=20)
    return {**metrics, "test_elbo": elbo.mean().item(), "nll": {"k": k, "value": -iwae.mean().item()},
            "n_bounds": int(x.shape[0])}


# --------------------------------------------------------------------------- figures


def boxes(guide, x: torch.Tensor, image_shape, path, true_counts=None, title=None) -> Path:
    """Canvases with the inferred glimpse boxes, coloured by step (red, green, blue, ...)."""
    scene = guide.scene(x.to(_device_of(guide)))
    n = x.shape[0]
    columns = min(n, 8)
    rows = (n + columns - 1) // columns
    fig = Figure(figsize=(1.5 * columns, 1.6 * rows + 0.3))
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(x[i].cpu().reshape(image_shape).numpy(), cmap="gray", vmin=0, vmax=1)
        for t in range(scene["z_pres"].shape[1]):
            if scene["z_pres"][i, t] > 0:
                left, top, width, height = box_from_where(scene["z_where"][i, t].cpu(),
                                                          image_shape[0]).tolist()
                ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False,
                                       edgecolor=STEP_COLOURS[t % len(STEP_COLOURS)], linewidth=1.5))
        inferred = int(scene["z_pres"][i].sum())
        label = f"{inferred}" if true_counts is None else f"{inferred} (true {int(true_counts[i])})"
        ax.set_title(label, fontsize=8)
    fig.suptitle(title or "inferred boxes, coloured by step (red, green, blue)", fontsize=9)
    return plots._save(fig, path)


def confusion_figure(confusion, path, title: str = "true vs inferred counts") -> Path:
    """The confusion matrix as a heat map with the counts written in."""
    confusion = torch.as_tensor(confusion)
    fig, ax = plots._figure((3.4, 3.0))
    ax.imshow(confusion.numpy(), cmap="Blues")
    dark = confusion.max().item() / 2
    for (i, j), value in numpy.ndenumerate(confusion.numpy()):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                color="white" if value > dark else "black")
    ax.set_xticks(range(confusion.shape[1]))
    ax.set_yticks(range(confusion.shape[0]))
    ax.set_xlabel("inferred count")
    ax.set_ylabel("true count")
    ax.set_title(title, fontsize=9)
    return plots._save(fig, path)


def accuracy_curve(curve: list[dict], path, title: str = "held-out count accuracy") -> Path:
    """Count accuracy against training steps (entries with ``step`` and ``count_accuracy``)."""
    fig, ax = plots._figure((5, 3.2))
    ax.plot([c["step"] for c in curve], [c["count_accuracy"] for c in curve], marker=".")
    ax.set_xlabel("training step")
    ax.set_ylabel("count accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return plots._save(fig, path)


def figures(model, guide, train, test, history, out) -> None:
    """The PNG figures of an AIR run: boxes, reconstructions, samples, training and accuracy curves,
    confusion matrix."""
    out = Path(out)
    x = test.x[:16]
    boxes(guide, x, test.image_shape, out / "boxes.png", true_counts=test.y[:16])
    plots.reconstructions(model, guide, x[:10].to(_device_of(model)), test.image_shape,
                          out / "reconstructions.png")
    plots.image_grid(model.sample(30), test.image_shape, out / "samples.png", nrow=10,
                     title="scenes drawn from the model")
    if history:
        plots.training_curve(history, out / "training_curve.png")
        curve = [h for h in history if "count_accuracy" in h]
        if curve:
            accuracy_curve([{"step": h.get("step", h["epoch"]), **h} for h in curve],
                           out / "count_accuracy.png")
    confusion_figure(count_metrics(guide, test)["confusion"], out / "confusion.png")
