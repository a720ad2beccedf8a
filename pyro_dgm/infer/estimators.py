r"""Estimators for trained models: bounds, marginal likelihoods and properties of the codes.

All likelihood estimates come from one quantity, the per-example importance log-weights with
the guide as proposal,

.. math::

    \log w_{n,s} = \log p_\theta(x_n, z_{n,s}) - \log q_\phi(z_{n,s} \mid x_n),
    \qquad z_{n,s} \sim q_\phi(z \mid x_n), \ s = 1, \dots, k,

from which

- the ELBO is :math:`\frac1k \sum_s \log w_{n,s}` (Monte Carlo KL, whatever the training objective);
- the IWAE-k bound (Burda et al., 2016) is :math:`\log \frac1k \sum_s w_{n,s} \le \log p(x_n)`,
  which tightens as k grows and is the marginal log-likelihood estimate reported as ``nll``;
- with the prior as proposal it is the importance-sampled density-network estimate of
  MacKay & Gibbs (1997) (seed ``000``), available by passing a prior guide.

Every latent site must lie inside the model's ``plate("data")`` so that weights are per example.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch

import pyro
import pyro.poutine as poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import site_is_subsample
from tqdm import tqdm

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import distributed

_SHOW_PROGRESS = [False]


@contextlib.contextmanager
def progress_bars(enabled: bool = True):
    """Within this block, :func:`log_likelihood_bounds` shows a progress bar on stderr (the CLI's
    ``evaluate`` turns it on; a model's own ``evaluate`` hook gets it without a new argument)."""
    previous, _SHOW_PROGRESS[0] = _SHOW_PROGRESS[0], enabled
    try:
        yield
    finally:
        _SHOW_PROGRESS[0] = previous


def progress_shown() -> bool:
    """Whether estimators show progress bars (inside :func:`progress_bars`)."""
    return _SHOW_PROGRESS[0]


DATA_PLATE = "data"


def sample_sites(trace) -> list[dict]:
    """The sample sites of ``trace``, latent and observed, in program order, without the
    plates' subsample sites (each site's name is ``site["name"]``)."""
    return [site for site in trace.nodes.values()
            if site["type"] == "sample" and not site_is_subsample(site)]


def plate_nesting(*traces) -> int:
    """The deepest nesting of vectorized plates over the sample sites of ``traces``."""
    dims = [-frame.dim for trace in traces for site in sample_sites(trace)
            for frame in site["cond_indep_stack"] if frame.vectorized]
    return max(dims, default=0)


def guess_max_plate_nesting(model, guide, x) -> int:
    """The number of nested plates in the guide and model programs run on ``x``."""
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
    return plate_nesting(guide_trace, model_trace)


def site_log_prob_per_example(site: dict, n_particle_dims: int) -> torch.Tensor:
    r"""One sample site's log-density per particle and example: :math:`\log p(v_{s,n})` summed
    over every dimension but the particle plate's (outermost) and ``plate("data")``'s.

    ``site`` is a node of a trace after ``trace.compute_log_prob()`` (its ``unscaled_log_prob``
    and ``mask`` are read, the plates' subsampling ``scale`` is not: each example counts once).
    The result has shape ``(k, N)``, where either may be 1 where the site does not vary along
    it (broadcast it against ``(k, N)``). ``n_particle_dims`` is the particle plate's depth,
    ``max_plate_nesting + 1``. A site outside ``plate("data")`` is refused in one sentence.
    Used by the importance weights here and by AIS (:mod:`pyro_dgm.infer.ais_hmc`).
    """
    log_prob = scale_and_mask(site["unscaled_log_prob"], mask=site["mask"])
    data_frames = [f for f in site["cond_indep_stack"] if f.name == DATA_PLATE]
    if not data_frames:
        raise PyroDGMError(
            f"site {site['name']!r} is not inside plate({DATA_PLATE!r}): per-example "
            f"importance weights need every site to be local to a data point"
        )
    data_dim = data_frames[0].dim
    log_prob = log_prob.reshape((1,) * (n_particle_dims - log_prob.dim()) + log_prob.shape)
    keep = {0, n_particle_dims + data_dim}
    summed = [d for d in range(log_prob.dim()) if d not in keep]
    log_prob = log_prob.sum(summed, keepdim=True) if summed else log_prob
    return log_prob.reshape(log_prob.shape[0], log_prob.shape[n_particle_dims + data_dim])


def importance_traces(model: Callable, guide: Callable, x: torch.Tensor, num_samples: int,
                      max_plate_nesting: int):
    """``(model_trace, guide_trace)`` for ``num_samples`` vectorized draws from the guide.

    The particles are an outer ``plate`` at dim ``-(max_plate_nesting + 1)`` (no Python loop).
    Nothing is blocked, so parameters stay visible to an enclosing SVI step: training
    objectives call this directly, estimators through :func:`log_importance_weights`.
    """
    particles = pyro.plate("_particles", num_samples, dim=-(max_plate_nesting + 1))
    guide_trace = poutine.trace(particles(guide)).get_trace(x)
    model_trace = poutine.trace(poutine.replay(particles(model), trace=guide_trace)).get_trace(x)
    return model_trace, guide_trace


def per_example_log_density(trace, max_plate_nesting: int, observed: bool | None = None):
    """``sum`` of a trace's site log-densities per particle and example, shape ``(k, N)``.

    ``observed=True`` keeps only observed sites, ``False`` only latent ones, ``None`` all.
    Deterministic sites are left out.
    """
    trace.compute_log_prob()
    total = 0.0
    for site in sample_sites(trace):
        if site["infer"].get("_deterministic") or observed not in (None, site["is_observed"]):
            continue
        total = total + site_log_prob_per_example(site, max_plate_nesting + 1)
    return total


def log_importance_weights(model: Callable, guide: Callable, x: torch.Tensor, num_samples: int,
                           max_plate_nesting: int | None = None) -> torch.Tensor:
    """``log p(x_n, z_s) - log q(z_s | x_n)`` for ``num_samples`` draws, shape ``(num_samples, N)``.

    Particles are vectorized with an outer ``plate`` (no Python loop over samples).
    """
    if max_plate_nesting is None:
        max_plate_nesting = guess_max_plate_nesting(model, guide, x)
    with poutine.block():
        model_trace, guide_trace = importance_traces(model, guide, x, num_samples,
                                                     max_plate_nesting)
    log_joint = per_example_log_density(model_trace, max_plate_nesting)
    log_proposal = per_example_log_density(guide_trace, max_plate_nesting, observed=False)
    log_weights = x.new_zeros(num_samples, x.shape[0]) + log_joint - log_proposal
    if torch.isnan(log_weights).any() or (log_weights == math.inf).any():
        site = _nonfinite_site(model_trace, guide_trace, max_plate_nesting,
                               lambda v: torch.isnan(v) | (v == math.inf))
        raise PyroDGMError(f"an importance log-weight is NaN or +inf: the log-density of site "
                           f"{site!r} is not finite on the evaluation data")
    return log_weights


def _nonfinite_site(model_trace, guide_trace, max_plate_nesting: int, bad: Callable) -> str:
    """The name of the first sample site (model, then guide) whose per-example log-density has
    a value that ``bad`` flags; ``"?"`` if none does."""
    for trace in (model_trace, guide_trace):
        for site in sample_sites(trace):
            if bad(site_log_prob_per_example(site, max_plate_nesting + 1)).any():
                return site["name"]
    return "?"


def _batches(x: torch.Tensor, batch_size: int):
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size]


@torch.no_grad()
def log_likelihood_bounds(model, guide, x: torch.Tensor, num_samples: int = 1000,
                          batch_size: int = 100, max_elements: int = 2 ** 24):
    """Per-example ``(elbo, iwae)`` estimates, each of shape ``(N,)``, in nats.

    ``elbo`` averages the ``num_samples`` log-weights, ``iwae`` is their log-mean-exp. A
    log-weight of -inf is a weight of zero (the ELBO of that example is then -inf, its IWAE
    bound stays finite); a NaN or +inf log-weight, or an example whose every weight is zero,
    is refused in one sentence that names the site whose log-density was not finite. Samples
    are drawn in chunks of at most ``max_elements / (batch * dim)`` so that memory stays bounded
    for k in the thousands.

    The noise of batch ``b`` (examples ``b * batch_size`` onwards) is seeded by ``base + b``, with
    ``base`` drawn from the random state on entry, which is left at ``base + batches``: under
    :func:`~pyro_dgm.infer.distributed.sharded_evaluation` the batches are shared out over the
    processes and each example's estimate is the one a single process computes.
    """
    if num_samples < 1:
        raise PyroDGMError(f"the number of importance samples must be positive, got {num_samples}")
    max_plate_nesting = guess_max_plate_nesting(model, guide, x[:2])
    chunk = max(1, min(num_samples, max_elements // max(1, batch_size * x.shape[-1])))
    batches = list(_batches(x, batch_size))
    base = distributed.evaluation_seed()
    bounds, error = {}, None
    bar = tqdm(total=x.shape[0], desc=f"IWAE-{num_samples}", unit="example",
               disable=not _SHOW_PROGRESS[0], leave=False)
    try:
        for b in distributed.my_batches(len(batches)):
            pyro.set_rng_seed(base + b)
            bounds[b] = _bounds(model, guide, batches[b], num_samples, chunk, max_plate_nesting)
            bar.update(batches[b].shape[0])
    except PyroDGMError as refusal:  # said on every process, none left waiting for this one
        error = str(refusal)
    bar.close()
    bounds = distributed.gather_batches(bounds, len(batches), error)
    pyro.set_rng_seed(base + len(batches))
    return torch.cat([elbo for elbo, _ in bounds]), torch.cat([iwae for _, iwae in bounds])


def _bounds(model, guide, x: torch.Tensor, num_samples: int, chunk: int,
            max_plate_nesting: int) -> torch.Tensor:
    """``(elbo, iwae)`` per example of one batch ``x`` (:func:`log_likelihood_bounds`)."""
    log_weights = torch.cat([
        log_importance_weights(model, guide, x, min(chunk, num_samples - start),
                               max_plate_nesting)
        for start in range(0, num_samples, chunk)
    ])
    impossible = (log_weights == -math.inf).all(0)
    if impossible.any():
        _refuse_impossible(model, guide, x[impossible], num_samples, max_plate_nesting)
    return log_weights.mean(0), torch.logsumexp(log_weights, 0) - math.log(num_samples)


def _refuse_impossible(model, guide, x: torch.Tensor, num_samples: int,
                       max_plate_nesting: int) -> None:
    """One sentence for examples on which every importance weight is zero, naming the site."""
    with poutine.block():
        model_trace, guide_trace = importance_traces(model, guide, x, num_samples,
                                                     max_plate_nesting)
    model_trace.compute_log_prob()
    guide_trace.compute_log_prob()
    site = _nonfinite_site(model_trace, guide_trace, max_plate_nesting,
                           lambda v: (v == -math.inf).all(0))
    raise PyroDGMError(f"every importance weight of {x.shape[0]} evaluation example(s) is zero: "
                       f"the log-density of site {site!r} is -inf for all {num_samples} samples")


@torch.no_grad()
def encode_all(encode: Callable, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``encode`` applied to ``x`` in batches."""
    return torch.cat([encode(x_batch) for x_batch in _batches(x, batch_size)])


@torch.no_grad()
def knn_classify(train_codes: torch.Tensor, train_labels: torch.Tensor, codes: torch.Tensor,
                 ks=(5,), batch_size: int = 500) -> dict[int, torch.Tensor]:
    """The labels a k-nearest-neighbour classifier on ``(train_codes, train_labels)``
    (Euclidean, majority vote, ties to the smallest label) gives ``codes``, for each k of ``ks``."""
    if train_codes.shape[0] < max(ks):
        raise PyroDGMError(f"kNN with k = {max(ks)} needs at least {max(ks)} training codes, "
                           f"got {train_codes.shape[0]}")
    n_classes = int(train_labels.max()) + 1
    predictions = {k: [] for k in ks}
    for start in range(0, codes.shape[0], batch_size):
        distances = torch.cdist(codes[start:start + batch_size], train_codes)
        nearest = distances.topk(max(ks), dim=1, largest=False).indices
        neighbour_labels = train_labels[nearest]
        for k in ks:
            votes = torch.nn.functional.one_hot(neighbour_labels[:, :k], n_classes).sum(1)
            predictions[k].append(votes.argmax(1))
    return {k: torch.cat(predictions[k]) for k in ks}



def knn_error(train_codes: torch.Tensor, train_labels: torch.Tensor, test_codes: torch.Tensor,
              test_labels: torch.Tensor, ks=(3, 5, 10), batch_size: int = 500) -> dict[str, float]:
    """Test error of a k-nearest-neighbour classifier on the codes (Euclidean, majority vote).

    As in seed ``000``'s table "MNIST: kNN classifier on latent space". Ties in the vote go to
    the smallest label. Under data parallelism the test batches are shared out over processes.
    """
    if train_codes.shape[0] < max(ks):
        raise PyroDGMError(f"kNN with k = {max(ks)} needs at least {max(ks)} training codes, "
                           f"got {train_codes.shape[0]}")
    starts = range(0, test_codes.shape[0], batch_size)
    errors = {}  # by batch: the number of errors for each k (batches shared out over processes)
    for b in distributed.my_batches(len(starts)):
        rows = slice(starts[b], starts[b] + batch_size)
        predictions = knn_classify(train_codes, train_labels, test_codes[rows], ks, batch_size)
        errors[b] = [int((predictions[k] != test_labels[rows]).sum()) for k in ks]
    totals = [sum(counts) for counts in zip(*distributed.gather_batches(errors, len(starts)))]
    return {str(k): total / test_codes.shape[0] for k, total in zip(ks, totals)}


def active_dims(codes: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of code dimensions whose variance across data points exceeds ``threshold``.

    Burda et al. (2016)'s active units, ``Cov_x(E_q[z | x]) > 0.01``, applied to ``encode(x)``.
    """
    return int((codes.var(0) > threshold).sum())
