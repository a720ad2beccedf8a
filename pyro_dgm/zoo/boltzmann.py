r"""Boltzmann machines with binary units, seed ``002`` ("undirected models"): ``rbm``
(Smolensky 1986; Hinton 2002) and ``dbm`` (Salakhutdinov & Hinton 2009), trained by
stochastic approximation (``pcd``, Tieleman 2008; ``cd`` for the RBM) and scored by AIS with
Gibbs kernels (:mod:`pyro_dgm.infer.ais_gibbs`).

Their ``metrics.json`` and ``eval.json`` carry ``test_nll`` / ``nll`` with
``nll_method: "ais"``: for the RBM :math:`-\frac1N\sum_n (-F(x_n) - \log \hat Z)`, for the DBM
the negative mean-field bound :math:`-\frac1N\sum_n (\mathbb E_Q[-E] + H(Q) - \log \hat Z)`,
with :math:`\log \hat Z` (``ais_log_z``, ``ais_log_z_stderr``, ``ais_ess``) from ``ais_steps``
Gibbs sweeps of ``ais_chains`` chains, started from a base model with the training pixels'
means and the test digits' mean hidden activity (:func:`ais_base`). On binary data the AIS
estimate is checked against its certified floor from the test digits (``ais_log_z_floor``);
below it, ``ais_valid`` is false and ``warnings`` says why. After training the AIS is short (1,000 x 16: a check,
not a result); ``pyro-dgm evaluate`` runs the published size (10,000 x 100 by default).
``test_elbo`` is the negative of that NLL (for the RBM a log-likelihood, for the DBM a bound).
On grey levels (mnist without ``binarize=dynamic``) the number is a cross-entropy and
``nll_method`` says ``"ais-cross-entropy"``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pyro_dgm import plots
from pyro_dgm.guides.boltzmann import MeanFieldDBM
from pyro_dgm.guides.empty import EmptyGuide
from pyro_dgm.infer.ais_gibbs import (
    data_base_biases,
    dbm_log_likelihood,
    dbm_log_partition,
    log_partition_floor,
    pixel_logits,
    rbm_log_likelihood,
)
from pyro_dgm.infer.estimators import active_dims, encode_all, knn_error
from pyro_dgm.infer.evaluate import device_of
from pyro_dgm.infer.pcd import pretrain_greedy
from pyro_dgm.models.boltzmann import DBM, RBM
from pyro_dgm.zoo.core import ZooEntry, register

TRAIN_AIS = {"steps": 1000, "chains": 16}
# Adam lr 3e-4: at 1e-3 the parameters outpace the persistent chains' mixing (README,
# "Boltzmann machines and AIS": PCD RBM -149.4 at 1e-3, -112.3 at 3e-4)
TRAINING = {"lr": 3e-4, "batch_size": 100, "epochs": 50}
EVAL_AIS = {"steps": 10000, "chains": 100}


def build_rbm(hyper: dict, data) -> tuple:
    return RBM(data.dim, hyper["hidden"], visible_logits=pixel_logits(data.x)), EmptyGuide()


def build_dbm(hyper: dict, data) -> tuple:
    """The DBM and its mean-field guide; with ``pretrain_epochs`` set (null, the default, is off) the weights start from a
    greedily pretrained RBM stack (:func:`pyro_dgm.infer.pcd.pretrain_greedy`, CD-1 with SGD at
    ``pretrain_lr``). The pretraining runs in the build, so restoring a run repeats it (seeded,
    then overwritten by the checkpoint)."""
    dbm = DBM(data.dim, hyper["layers"], visible_logits=pixel_logits(data.x))
    if hyper["pretrain_epochs"] is not None:
        pretrain_greedy(dbm, data, hyper["pretrain_epochs"], lr=hyper["pretrain_lr"])
    return dbm, MeanFieldDBM(dbm, hyper["mean_field_iterations"])


def encoder(model, guide):
    """The hidden means used for kNN: :math:`p(h \\mid v)` (RBM) or :math:`\\mu^1` (DBM)."""
    return guide.encode if isinstance(guide, MeanFieldDBM) else model.hidden_probs


@torch.no_grad()
def ais_base(model, guide, x: torch.Tensor) -> list[torch.Tensor]:
    """The AIS base model's biases from the digits ``x``: the pixel logits of the training
    digits and the logits of the mean hidden activity of ``x``, :math:`p(h \\mid v)` (RBM) or
    the mean-field means (DBM); see :func:`pyro_dgm.infer.ais_gibbs.data_base_biases`."""
    hidden_means = (guide.mean_field(x)[1:] if isinstance(guide, MeanFieldDBM)
                    else [model.hidden_probs(x)])
    return data_base_biases(model, hidden_means)


@torch.no_grad()
def ais_metrics(model, guide, test, *, steps: int, chains: int, seed: int = 0) -> dict:
    """``test_elbo``, ``nll``, ``nll_method: "ais"`` and the AIS run's ``ais_*`` numbers."""
    torch.manual_seed(seed)
    x = test.observed(device=device_of(model))
    log_z = dbm_log_partition(model, steps, chains, ais_base(model, guide, x))
    if isinstance(guide, MeanFieldDBM):  # log P*(v) >= the mean-field bound
        log_unnormalized = dbm_log_likelihood(model, guide, x, 0.0)
    else:
        log_unnormalized = rbm_log_likelihood(model, x, 0.0)
    nll = -(log_unnormalized.mean().item() - log_z.log_z)
    binary = bool(((x == 0) | (x == 1)).all())  # grey levels give a cross-entropy
    metrics = {"test_elbo": -nll, "nll": {"k": chains, "value": nll},
               "nll_method": "ais" if binary else "ais-cross-entropy",
               "ais_log_z": log_z.log_z, "ais_log_z_stderr": log_z.stderr, "ais_ess": log_z.ess,
               "ais_steps": steps, "ais_chains": chains}
    if binary:
        floor = log_partition_floor(x, log_unnormalized)
        metrics.update(ais_log_z_floor=floor, ais_valid=log_z.log_z >= floor)
        if not metrics["ais_valid"]:
            metrics["warnings"] = [
                f"AIS's log Z ({log_z.log_z:.2f}) is below {floor:.2f}, a certified lower bound "
                f"from the test digits themselves: its chains missed modes of the model, so "
                f"the log-likelihood ({-nll:.2f}) is too high; more AIS steps, or a model whose "
                f"Gibbs chains mix, is needed"]
    return metrics


def test_metrics(model, guide, test, num_samples: int) -> dict:
    """The ``metrics.json`` hook: a short AIS run (``TRAIN_AIS``), ``test_nll``."""
    metrics = ais_metrics(model, guide, test, **TRAIN_AIS)
    return {**metrics, "test_nll": metrics.pop("nll")["value"], "test_elbo_samples": 1}


def evaluate(model, guide, test, train=None, *, iwae_samples: int = 1, knn: bool = False,
             seed: int = 0, ais_steps: int | None = None, ais_chains: int | None = None) -> dict:
    """The ``eval.json`` hook: the full AIS run (``EVAL_AIS`` unless ``ais_steps`` /
    ``ais_chains`` are given), with ``active_dims`` and ``knn_error`` on the first hidden
    layer's means (``iwae_samples`` does not apply)."""
    metrics = ais_metrics(model, guide, test, seed=seed,
                          steps=ais_steps if ais_steps is not None else EVAL_AIS["steps"],
                          chains=ais_chains if ais_chains is not None else EVAL_AIS["chains"])
    device = device_of(model)
    encode = encoder(model, guide)
    test_codes = encode_all(encode, test.observed(device=device))
    metrics.update(active_dims=active_dims(test_codes), knn_error=None)
    if knn:
        train_codes = encode_all(encode, train.observed(device=device))
        metrics["knn_error"] = knn_error(train_codes, train.y.to(device), test_codes,
                                         test.y.to(device))
    return metrics


def figures(model, guide, train, test, history, out) -> None:
    """Samples: the persistent chains' visible means :math:`p(v \\mid h^1)` at the end of
    training (or, with no chains, ``model.sample``), and the training curve (the reconstruction
    cross-entropy that ``pcd`` reports)."""
    out = Path(out)
    chains = getattr(model, "persistent_chains", None)
    if chains is not None:
        images, title = model.visible_means(chains)[:100], "persistent chains, p(v | h)"
    else:
        images, title = model.sample(100), f"samples after {model.sample_steps} Gibbs sweeps"
    plots.image_grid(images, train.image_shape, out / "samples.png", title=title)
    plots.training_curve(history, out / "training_curve.png",
                         title="reconstruction cross-entropy (nats)")


HOOKS = {"test_metrics": test_metrics, "evaluate": evaluate, "figures": figures}

register(ZooEntry(
    name="rbm",
    description="restricted Boltzmann machine, binary units, PCD/CD, AIS log-likelihood "
                "(Salakhutdinov & Murray 2008)",
    model="pyro_dgm.models.boltzmann.RBM", guide="pyro_dgm.guides.empty.EmptyGuide",
    build=build_rbm,
    objective="pcd", objectives=("pcd", "cd"),
    defaults={"hidden": 500},
    training=TRAINING,
    datasets=("bars", "mnist"),
    source="seed 002, 'undirected models', 'stochastic approximation' (Tieleman 2008; "
           "Salakhutdinov & Murray 2008)",
    **HOOKS,
))
register(ZooEntry(
    name="dbm",
    description="deep Boltzmann machine, binary units, PCD with a mean-field guide, AIS "
                "bound (Salakhutdinov & Hinton 2009)",
    model="pyro_dgm.models.boltzmann.DBM", guide="pyro_dgm.guides.boltzmann.MeanFieldDBM",
    build=build_dbm,
    objective="pcd", objectives=("pcd",),
    defaults={"layers": [500, 1000], "mean_field_iterations": 10, "pretrain_epochs": None,
              "pretrain_lr": 0.05},
    training=TRAINING,
    datasets=("bars", "mnist"),
    source="seed 002, 'undirected models', 'mean-field' (Salakhutdinov & Hinton 2009)",
    **HOOKS,
))
