"""Objectives, the Trainer, and estimators."""

from pyro_dgm.infer.estimators import (
    active_dims,
    encode_all,
    knn_error,
    log_importance_weights,
    log_likelihood_bounds,
)
from pyro_dgm.infer.evaluate import evaluate
from pyro_dgm.infer.objectives import (
    OBJECTIVES,
    Objective,
    build_objective,
    get_objective,
    register_objective,
)
from pyro_dgm.infer.trainer import Trainer, TrainingDiverged, load_checkpoint
from pyro_dgm.infer.gradients import gradient_statistics, gradient_variance
from pyro_dgm.infer import wake_sleep  # noqa: F401  (registers rws, wake-sleep, prior-is, nvil)
from pyro_dgm.infer import csis  # noqa: F401  (registers sleep, csis)
from pyro_dgm.infer import semi_supervised  # noqa: F401  (registers enum-elbo, ss-elbo)
from pyro_dgm.infer import stepwise  # noqa: F401  (registers tracegraph-steps)
from pyro_dgm.infer import count_enum  # noqa: F401  (registers count-enum)
from pyro_dgm.infer import adversarial  # noqa: F401  (registers adversarial)
from pyro_dgm.infer import pcd  # noqa: F401  (registers pcd, cd)

__all__ = [
    "OBJECTIVES", "Objective", "Trainer", "TrainingDiverged", "active_dims", "build_objective",
    "encode_all", "evaluate", "get_objective", "gradient_statistics", "gradient_variance",
    "knn_error", "load_checkpoint",
    "log_importance_weights", "log_likelihood_bounds", "register_objective",
]
