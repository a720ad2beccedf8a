"""Counting objects: AIR's count accuracy and confusion matrix of inferred against true counts.

Seed ``004`` ("inference: counting and locating"); Eslami et al. (2016) report the **count
accuracy**, the fraction of held-out canvases whose inferred number of objects equals the true
one. The inferred count is that of the guide's most probable scene
(:meth:`pyro_dgm.guides.air.AIRGuide.scene`: each step present while its presence probability
exceeds 1/2), so the number is deterministic for a trained guide. The ``air`` zoo entry's hooks
and figures are in :mod:`pyro_dgm.zoo.air`.
"""

from __future__ import annotations

import torch

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import distributed
from pyro_dgm.infer.evaluate import device_of


@torch.no_grad()
def infer_counts(guide, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The guide's inferred counts (N,) for canvases ``x`` (N, D), in batches (shared out over
    the processes under :func:`~pyro_dgm.infer.distributed.sharded_evaluation`)."""
    starts = range(0, x.shape[0], batch_size)
    counts = {b: guide.count(x[starts[b]:starts[b] + batch_size])
              for b in distributed.my_batches(len(starts))}
    return torch.cat(distributed.gather_batches(counts, len(starts)))


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
    inferred = infer_counts(guide, x.to(device_of(guide))).cpu()
    size = max(int(y.max()), guide.steps) + 1
    confusion = confusion_matrix(y, inferred, size)
    per_count = {str(k): (confusion[k, k] / confusion[k].sum()).item()
                 for k in range(size) if confusion[k].sum() > 0}
    return {"count_accuracy": (inferred == y).float().mean().item(),
            "confusion": confusion.tolist(), "count_accuracy_per_count": per_count,
            "n_counted": int(y.shape[0])}
