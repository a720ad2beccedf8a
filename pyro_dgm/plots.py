"""Figures: image grids, reconstructions, training curves, latent embeddings, stick usage.

Data that are not images (``image_shape=None``) are drawn as heat maps of vectors,
one example per row (:func:`vector_rows`).

Every function writes one PNG and returns its path. Figures are built as
``matplotlib.figure.Figure`` objects, not through pyplot, so the library never changes the
backend of the session it runs in (a notebook keeps its inline figures) and needs no display.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import torch
from matplotlib.figure import Figure

import pyro.poutine as poutine

from pyro_dgm.errors import PyroDGMError


def save_figure(fig, path) -> Path:
    """Write ``fig`` as ``path`` (its suffix picks the format), or say in one sentence why not."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as error:
        raise PyroDGMError(f"could not write {path} ({error.strerror or error})") from None
    return path


def _figure(figsize):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def grid_columns(n: int, most: int = 10) -> int:
    """Columns for a grid of ``n`` images with no empty cells where possible: the divisor of
    ``n`` nearest above its square root (at most ``most``), else ``most`` (16 -> 4x4, 100 ->
    10x10, 30 -> 6x5)."""
    root = math.isqrt(max(n - 1, 0)) + 1 if n > 1 else 1
    for columns in range(root, most + 1):
        if n % columns == 0:
            return columns
    return min(n, most)


def image_grid(images: torch.Tensor, image_shape: Sequence[int] | None, path,
               nrow: int | None = None, title: str | None = None) -> Path:
    """Flattened images ``(N, H*W)`` in [0, 1] as a grid of ``nrow`` per row (default
    :func:`grid_columns`), on grey padding (so that white pixels at an image's edge stay
    visible, as in the 4x4 bars); with ``image_shape=None`` the examples are vectors, drawn by
    :func:`vector_rows`."""
    if image_shape is None:
        return vector_rows({"": images}, path, title=title)
    nrow = nrow or grid_columns(len(images))
    pictures = images.detach().cpu().reshape(-1, 1, *image_shape).clamp(0, 1)
    from torchvision.utils import make_grid  # importing torchvision takes a second or more
    grid = make_grid(pictures, nrow=nrow, padding=1, pad_value=0.5)[0]
    fig, ax = _figure((0.6 * nrow, 0.6 * grid.shape[0] / grid.shape[1] * nrow + 0.3))
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def vector_rows(panels: dict[str, torch.Tensor], path, title: str | None = None) -> Path:
    """Vectors ``(N, D)`` as heat maps, one example per row and one value per column, side by
    side for each entry of ``panels`` (label -> vectors) on one colour scale, with a colour bar."""
    arrays = {label: vectors.detach().cpu().float() for label, vectors in panels.items()}
    low = min(a.min().item() for a in arrays.values())
    high = max(a.max().item() for a in arrays.values())
    rows = max(a.shape[0] for a in arrays.values())
    fig = Figure(figsize=(3.2 * len(arrays) + 1.2, min(8.0, 1.5 + 0.06 * rows)))
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    for ax, (label, array) in zip(axes, arrays.items()):
        image = ax.imshow(array.numpy(), aspect="auto", interpolation="nearest",
                          cmap="viridis", vmin=low, vmax=high)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("dimension")
    axes[0].set_ylabel("example")
    fig.colorbar(image, ax=list(axes), label="value")
    if title and len(axes) == 1:
        axes[0].set_title(title)
    elif title:
        fig.suptitle(title, fontsize=10, y=1.04)
    return save_figure(fig, path)


@torch.no_grad()
def reconstruct(model: Callable, guide: Callable, x: torch.Tensor) -> torch.Tensor:
    """``E[x | z]`` with ``z ~ q(z | x)``: the mean of the model's ``x`` site, guide replayed."""
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
    return model_trace.nodes["x"]["fn"].mean


def reconstructions(model: Callable, guide: Callable, x: torch.Tensor,
                    image_shape: Sequence[int] | None, path, n: int = 10) -> Path:
    """Data (top row) and reconstructions (bottom row); for vectors (``image_shape=None``),
    data (left) and reconstructions (right) as heat maps, one example per row."""
    x = x[:n]
    reconstructed = reconstruct(model, guide, x).cpu()
    if image_shape is None:
        return vector_rows({"data": x, "reconstruction": reconstructed}, path,
                           title="data and reconstructions")
    return image_grid(torch.cat([x.cpu(), reconstructed]), image_shape, path, nrow=x.shape[0],
                      title="data (top) and reconstructions (bottom)")


def training_curve(history: list[dict], path, title: str = "training loss") -> Path:
    """Loss per example against epoch, on whole-epoch ticks; the y-range is set by the epochs
    after the first, so that a first epoch far above the rest does not flatten the curve (its
    value is written where it leaves the plot)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure((5, 3.2))
    epochs, losses = [h["epoch"] for h in history], [h["loss"] for h in history]
    ax.plot(epochs, losses, marker=".")
    later = [loss for loss in losses[1:] if math.isfinite(loss)]
    if len(later) >= 2 and math.isfinite(losses[0]):
        low, high = min(later), max(later)
        margin = 0.15 * (high - low) or 0.05 * abs(high) or 1.0
        if losses[0] > high + 3 * margin:
            ax.set_ylim(low - margin, high + 3 * margin)
            ax.annotate(f"epoch {epochs[0]}: {losses[0]:.4g}", xy=(epochs[0], high + 3 * margin),
                        xytext=(4, -12), textcoords="offset points", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per example (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def embedding(codes: torch.Tensor, labels: torch.Tensor | None, path,
              title: str = "latent codes (first two principal components)") -> Path:
    """A 2-D embedding of the codes, by PCA (exact for 2-D codes), coloured by label."""
    codes = codes.detach().cpu().double()
    centred = codes - codes.mean(0)
    if codes.shape[1] > 2:
        _, _, components = torch.linalg.svd(centred, full_matrices=False)
        points = centred @ components[:2].T
    else:
        points = centred
    fig, ax = _figure((5, 4.2))
    classes = labels.cpu().unique().tolist() if labels is not None else []
    if labels is None:
        ax.scatter(points[:, 0], points[:, -1], s=4, alpha=0.8)
    elif len(classes) <= 20 and not labels.is_floating_point():  # classes: one legend entry each
        colours = _colours(classes)
        for label in classes:
            chosen = (labels.cpu() == label).numpy()
            ax.scatter(points[chosen, 0], points[chosen, -1], s=4, alpha=0.8,
                       color=colours[label], label=str(label))
        ax.legend(title="label", fontsize=7, markerscale=3, loc="center left",
                  bbox_to_anchor=(1.0, 0.5), frameon=False)
    else:  # a continuous label (or very many classes): a colour bar
        scatter = ax.scatter(points[:, 0], points[:, -1], c=labels.cpu().numpy(), s=4,
                             cmap="viridis", alpha=0.8)
        fig.colorbar(scatter, ax=ax, label="label")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(fig, path)


def code_usage(codes: torch.Tensor, path, title: str = "mean code value per dimension") -> Path:
    """Bar chart of the mean of each code dimension (for stick weights: how much each stick gets)."""
    fig, ax = _figure((6, 3))
    mean = codes.detach().cpu().mean(0)
    ax.bar(range(1, mean.shape[0] + 1), mean.numpy())
    ax.set_xlabel("dimension")
    ax.set_ylabel("mean over data")
    ax.set_title(title)
    return save_figure(fig, path)


# -- comparing objectives (pyro-dgm compare) ----------------------------------------------
def _colours(labels: Sequence) -> dict:
    """One colour per label, in order (tab10, then tab20 for more than ten labels)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def nll_vs_time(runs: list[dict], path, k: int | None = None,
                title: str = "held-out NLL against training time") -> Path:
    """Held-out NLL against training wall-clock seconds: one colour per objective label.

    ``runs`` are :class:`pyro_dgm.infer.compare.Comparison` runs (``label``, ``seed``,
    ``curve``); each seed is a thin line, the mean over seeds (checkpoint by checkpoint) a
    thick one.
    """
    labels = list(dict.fromkeys(run["label"] for run in runs))
    colours = _colours(labels)
    fig, ax = _figure((6, 4))
    for label in labels:
        curves = [run["curve"] for run in runs if run["label"] == label]
        for curve in curves:
            ax.plot([p["seconds"] for p in curve], [p["nll"] for p in curve],
                    color=colours[label], lw=0.7, alpha=0.45)
        length = min(len(curve) for curve in curves)
        mean_time = [sum(c[i]["seconds"] for c in curves) / len(curves) for i in range(length)]
        mean_nll = [sum(c[i]["nll"] for c in curves) / len(curves) for i in range(length)]
        ax.plot(mean_time, mean_nll, color=colours[label], lw=2, marker=".",
                label=f"{label} ({len(curves)} seeds)" if len(curves) > 1 else label)
    trained = [p["nll"] for run in runs for p in run["curve"][1:] if math.isfinite(p["nll"])]
    if trained:  # the untrained starting point would squash the curves: let it run off the top
        low, high = min(trained), max(trained)
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.15 * (high - low + 1e-9))
    ax.set_xlabel("training wall-clock (s, evaluation excluded)")
    ax.set_ylabel(f"held-out NLL, IWAE-{k} (nats)" if k else "held-out NLL (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _summary_bars(summary: list[dict], metric: str, path, ylabel: str, title: str,
                  log: bool = False, ax=None) -> Path | None:
    """Bars of ``summary[i][metric]["mean"]`` with one-std error bars, one colour per label
    (for NLLs, points with their values: an NLL axis cannot honestly start at zero, and bars on
    a cut axis exaggerate differences); draws on ``ax`` (and returns None) when given one, else
    saves a new figure to ``path``."""
    labels = [row["label"] for row in summary]
    colours = _colours(labels)
    means = [row[metric]["mean"] for row in summary]
    errors = [row[metric]["std"] for row in summary]
    fig = None
    if ax is None:
        fig, ax = _figure((max(4, 1.1 * len(labels) + 1.5), 3.6))
    finite = [m for m in means if math.isfinite(m) and (m > 0 or not log)]
    if log and finite:  # bars start from the decade below the smallest, not from 0
        bottom = 10 ** math.floor(math.log10(min(finite)))
        ax.bar(range(len(labels)), [m - bottom for m in means], bottom=bottom, yerr=errors,
               capsize=4, color=[colours[label] for label in labels])
        ax.set_yscale("log")
    elif metric.endswith("nll"):  # NLLs differ by little: points with their values, no bars
        for i, (label, mean, error) in enumerate(zip(labels, means, errors)):  # (whose length
            ax.errorbar(i, mean, yerr=error, fmt="o", capsize=4, color=colours[label])  # would
            if math.isfinite(mean):  # exaggerate differences on an axis that cannot start at 0)
                ax.annotate(f"{mean:.1f}", (i, mean), xytext=(6, 0), textcoords="offset points",
                            va="center", fontsize=8)
        ax.set_xlim(-0.6, len(labels) - 0.4)
    else:
        ax.bar(range(len(labels)), means, yerr=errors, capsize=4,
               color=[colours[label] for label in labels])
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path) if fig is not None else None


def final_nll(summary: list[dict], path, k: int | None = None,
              title: str = "final held-out NLL (mean ± std over seeds)") -> Path:
    """Bars of the final NLL per objective label, with error bars of one std over seeds."""
    return _summary_bars(summary, "final_nll", path,
                         f"NLL, IWAE-{k} (nats)" if k else "NLL (nats)", title)


def grad_variance(summary: list[dict], path,
                  title: str = "guide gradient at a fixed point (mean ± std over seeds)") -> Path:
    """Two panels per objective label: the total variance (trace of the covariance, log scale)
    of the guide-gradient estimator, and its signal-to-noise ratio ``|mean| / sqrt(tr Cov)``."""
    fig = Figure(figsize=(max(7, 2.2 * len(summary) + 3), 3.6))
    left, right = fig.subplots(1, 2)
    _summary_bars(summary, "grad_total_variance", None, "tr Cov (per-example gradient)",
                  "total variance", log=True, ax=left)
    _summary_bars(summary, "grad_snr", None, "|mean| / sqrt(tr Cov)", "signal-to-noise ratio",
                  ax=right)
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def mixture_fit(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                scales: torch.Tensor, path, truth: dict | None = None, threshold: float = 0.01,
                title: str = "fitted mixture") -> Path:
    """A fitted Gaussian mixture on its data (first two coordinates; 1-D data drawn on a line):
    the points, a 2-sigma ellipse per component with weight above ``threshold`` (bolder for more
    weight), the generating means when ``truth`` is given; beside it, every component's weight."""
    from matplotlib.patches import Ellipse

    def first_two(t, fill=0.0):
        t = t.detach().cpu().float()
        return t[..., :2] if t.shape[-1] > 1 else torch.cat([t, torch.full_like(t, fill)], -1)

    points, centres, spreads = first_two(x), first_two(means), first_two(scales, fill=0.02)
    weights = weights.detach().cpu()
    fig = Figure(figsize=(10, 4.2))
    ax, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    ax.scatter(points[:, 0], points[:, 1], s=2, c="0.6", alpha=0.5, rasterized=True)
    for k in torch.nonzero(weights > threshold).flatten().tolist():
        centre = centres[k].tolist()
        ax.add_patch(Ellipse(centre, 4 * spreads[k, 0].item(), 4 * spreads[k, 1].item(),
                             fill=False, lw=2, color="C3",
                             alpha=float(0.35 + 0.65 * weights[k] / weights.max())))
        ax.annotate(str(k + 1), centre, color="C3", fontsize=8, ha="center", va="center")
    if truth is not None:
        true_means = first_two(truth["means"])
        ax.scatter(true_means[:, 0], true_means[:, 1], marker="x", c="k", s=40,
                   label="generating means")
        ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{title}: {int((weights > threshold).sum())} components with weight > {threshold:g}",
                 fontsize=10)
    bars.bar(range(1, len(weights) + 1), weights.numpy(), color="C0")
    bars.axhline(threshold, color="k", lw=0.8, ls="--")
    bars.set_xlabel("component k (stick order)")
    bars.set_ylabel("posterior mean weight E[pi_k]")
    return save_figure(fig, path)


# -- reproduction studies (pyro-dgm reproduce) ---------------------------------------------
def measured_vs_published(summary: list[dict], metrics: list[dict], path,
                          title: str = "measured vs published") -> Path:
    """One panel per metric: each run's measured value (mean ± std over seeds, filled) beside
    the published one (hollow diamond, where the source gives one).

    ``summary`` rows hold ``label``, ``{metric key: {"mean", "std", "n"}}`` and ``published``
    (``{metric key: value}``); ``metrics`` are dicts with ``key`` and ``title``.
    """
    labels = [row["label"] for row in summary]
    fig = Figure(figsize=(max(5.0, 0.55 * len(labels) + 2.5) * min(len(metrics), 3),
                          3.8 * math.ceil(len(metrics) / 3)))
    axes = fig.subplots(math.ceil(len(metrics) / 3), min(len(metrics), 3), squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for i, row in enumerate(summary):
            stat = row[metric["key"]]
            if stat["n"]:
                ax.errorbar(i, stat["mean"], yerr=stat["std"], fmt="o", color="tab:blue",
                            capsize=3, label="measured" if i == 0 else None)
            published = row["published"].get(metric["key"])
            if published is not None:
                ax.plot(i, published, "D", mfc="none", color="tab:red",
                        label="published" if not ax.get_legend_handles_labels()[1].count(
                            "published") else None)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric["title"], fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.set_xlim(-0.6, len(labels) - 0.4)
    for ax in axes[len(metrics):]:
        ax.axis("off")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def density_2d(log_density: Callable, data: torch.Tensor, samples: torch.Tensor, path,
               title: str = "learned density", grid_size: int = 200) -> Path:
    """Three panels on the same square: the 2-D ``data``, the density
    ``exp(log_density(points))`` on a ``grid_size`` x ``grid_size`` grid, and ``samples``."""
    data, samples = data.detach().cpu(), samples.detach().cpu()
    low, high = data.min(0).values - 0.5, data.max(0).values + 0.5
    xs, ys = (torch.linspace(low[i].item(), high[i].item(), grid_size) for i in range(2))
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    density = log_density(grid).detach().cpu().exp().reshape(grid_size, grid_size)
    fig = Figure(figsize=(11, 3.8))
    panels = fig.subplots(1, 3, sharex=True, sharey=True)
    extent = (low[0].item(), high[0].item(), low[1].item(), high[1].item())
    for ax, points, label in ((panels[0], data, "data"), (panels[2], samples, "samples")):
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, rasterized=True)
        ax.set_title(label, fontsize=10)
    panels[1].imshow(density.numpy(), origin="lower", extent=extent, cmap="viridis", aspect="auto")
    panels[1].set_title(title, fontsize=10)
    for ax in panels:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    return save_figure(fig, path)


def curves(history: list[dict], keys: Sequence[str], path, title: str = "training curves",
           ylabel: str = "loss per example (nats)") -> Path:
    """Several per-epoch numbers of a history (e.g. each player's loss of a GAN) against epoch,
    one line each; a key missing from the history is skipped."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure((5, 3.2))
    epochs = [h["epoch"] for h in history]
    for key in keys:
        if history and key in history[0]:
            ax.plot(epochs, [h[key] for h in history], marker=".", label=key.replace("_", " "))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def class_histogram(shares: Sequence[float], path, title: str = "samples per class",
                    xlabel: str = "class") -> Path:
    """The share of samples in each class as bars, with the uniform share as a dashed line."""
    fig, ax = _figure((5, 3.2))
    ax.bar(range(len(shares)), list(shares), color="tab:blue")
    if len(shares):
        ax.axhline(1 / len(shares), color="grey", linestyle="--", label="uniform")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(shares)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of samples")
    ax.set_title(title)
    return save_figure(fig, path)


def samples_over_modes(data: torch.Tensor, samples: torch.Tensor, means: torch.Tensor,
                       radius: float, path, title: str = "samples over the modes") -> Path:
    """2-D ``data`` and ``samples`` side by side, each mode drawn as a circle of ``radius``
    around its mean (e.g. 3 standard deviations)."""
    from matplotlib.patches import Circle

    data, samples, means = (t.detach().cpu() for t in (data, samples, means))
    fig = Figure(figsize=(8, 4))
    panels = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, points, label in ((panels[0], data, "data"), (panels[1], samples, "samples")):
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, rasterized=True)
        for mean in means:
            ax.add_patch(Circle((mean[0].item(), mean[1].item()), radius, fill=False,
                                color="tab:red", linewidth=0.8))
        ax.set_title(label, fontsize=10)
        ax.set_aspect("equal")
    fig.suptitle(title)
    return save_figure(fig, path)
