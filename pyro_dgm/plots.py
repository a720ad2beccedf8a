"""Figures: image grids, reconstructions, training curves, latent embeddings, stick usage.

Every function writes one PNG and returns its path. Figures are built as
``matplotlib.figure.Figure`` objects, not through pyplot, so the library never changes the
backend of the session it runs in (a notebook keeps its inline figures) and needs no display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

import pyro.poutine as poutine


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _figure(figsize):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def image_grid(images: torch.Tensor, image_shape: Sequence[int], path, nrow: int = 10,
               title: str | None = None) -> Path:
    """Flattened images ``(N, H*W)`` in [0, 1] as a grid of ``nrow`` per row, on grey padding
    (so that white pixels at an image's edge stay visible, as in the 4x4 bars)."""
    pictures = images.detach().cpu().reshape(-1, 1, *image_shape).clamp(0, 1)
    grid = make_grid(pictures, nrow=nrow, padding=1, pad_value=0.5)[0]
    fig, ax = _figure((0.6 * nrow, 0.6 * grid.shape[0] / grid.shape[1] * nrow + 0.3))
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return _save(fig, path)


@torch.no_grad()
def reconstruct(model: Callable, guide: Callable, x: torch.Tensor) -> torch.Tensor:
    """``E[x | z]`` with ``z ~ q(z | x)``: the mean of the model's ``x`` site, guide replayed."""
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
    return model_trace.nodes["x"]["fn"].mean


def reconstructions(model: Callable, guide: Callable, x: torch.Tensor,
                    image_shape: Sequence[int], path, n: int = 10) -> Path:
    """Data (top row) and reconstructions (bottom row)."""
    x = x[:n]
    pairs = torch.cat([x.cpu(), reconstruct(model, guide, x).cpu()])
    return image_grid(pairs, image_shape, path, nrow=x.shape[0],
                      title="data (top) and reconstructions (bottom)")


def training_curve(history: list[dict], path, title: str = "training loss") -> Path:
    """Loss per example against epoch."""
    fig, ax = _figure((5, 3.2))
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per example (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


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
    colour = labels.cpu().numpy() if labels is not None else None
    scatter = ax.scatter(points[:, 0], points[:, -1], c=colour, s=4, cmap="tab10", alpha=0.8)
    if labels is not None:
        fig.colorbar(scatter, ax=ax, label="label")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def code_usage(codes: torch.Tensor, path, title: str = "mean code value per dimension") -> Path:
    """Bar chart of the mean of each code dimension (for stick weights: how much each stick gets)."""
    fig, ax = _figure((6, 3))
    mean = codes.detach().cpu().mean(0)
    ax.bar(range(1, mean.shape[0] + 1), mean.numpy())
    ax.set_xlabel("dimension")
    ax.set_ylabel("mean over data")
    ax.set_title(title)
    return _save(fig, path)
