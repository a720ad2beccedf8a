"""Objectives, the Trainer, and estimators."""

from pyro_dgm.infer.estimators import (
    active_dims,
    encode_all,
    knn_error,
    log_importance_weights,
    log_likelihood_bounds,
)
from pyro_dgm.infer.evaluate import evaluate, observed_data
from pyro_dgm.infer.objectives import (
    OBJECTIVES,
    Objective,
    build_objective,
    get_objective,
    register_objective,
)
from pyro_dgm.infer.trainer import Trainer, TrainingDiverged, load_checkpoint

__all__ = [
    "OBJECTIVES", "Objective", "Trainer", "TrainingDiverged", "active_dims", "build_objective",
    "encode_all", "evaluate", "get_objective", "knn_error", "load_checkpoint",
    "log_importance_weights", "log_likelihood_bounds", "observed_data", "register_objective",
]
