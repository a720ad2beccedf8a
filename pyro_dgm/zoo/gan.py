r"""A generative adversarial network (Goodfellow et al. 2014), seed ``004``: ``gan``, the
generator :class:`pyro_dgm.models.gan.Generator` trained by the ``adversarial`` objective,
which owns the discriminator (:mod:`pyro_dgm.infer.adversarial`).

A GAN has no encoder and no tractable likelihood, so its guide is the
:class:`~pyro_dgm.guides.empty.EmptyGuide`, which samples nothing: the objective never runs
it, and wherever the model is run under it the latent ``z`` is drawn from the prior (Pyro
samples a site the guide lacks from the model). Its numbers measure **mode coverage**, as the
GAN literature does for the missing-modes failure (Metz et al. 2017; Srivastava et al. 2017):

- 2-D points (``toy2d``, made for ``shape=mixture``, the 8 Gaussians on a circle): each sample
  goes to the nearest mode, a mode being the mean of one class of the training data, with the
  classes' pooled standard deviation :math:`s`; ``high_quality_fraction`` is the share of
  samples within :math:`3 s` of their mode, and a mode is *covered* when at least a quarter of
  its fair share (:math:`1 / 4K` of the samples) lies there as high-quality samples;
- images (``mnist``, grey levels in [0, 1]): each sample gets the label of a 3-nearest-neighbour
  classifier on the training digits (raw pixels); a class is covered when it holds at least
  :math:`1 / 4K` of the samples.

**Likelihood by AIS.** ``pyro-dgm evaluate RUN --ais-steps T --ais-chains C`` adds the
held-out log-likelihood of the generator as Wu et al. (2017, "On the quantitative analysis of
decoder-based generative models") score GANs: the Gaussian observation model
:math:`p(x \mid z) = \mathcal N(G(z), \sigma^2 I)` of the model's site ``x``, annealed from the
prior to the posterior with HMC (:mod:`pyro_dgm.infer.ais_hmc`), with the VAE's keys
(``ais_nll``, ``ais_nll_stderr``, ``ais_steps``, ``ais_chains``, ``ais_leapfrog_steps``,
``ais_acceptance``) and ``ais_obs_scale``, the :math:`\sigma` used. :math:`\sigma` is the
run's setting ``obs_scale`` (default 0.1 for grey levels in [0, 1]; training never reads it).
Wu et al. treat :math:`\sigma` as a hyper-parameter of the evaluation and choose the value
that maximizes the log-likelihood of held-out validation data; ``benchmarks/gan_vs_vae_ais.py``
does that sweep, and its choice can be given to a run as ``--set obs_scale=...``.

The classes are those of the data the hook receives: ``metrics.json`` (``test_metrics``, which
is given only the held-out split) compares with the held-out data, ``eval.json`` and the
figures with the training data. Both report ``modes_covered`` out of ``modes``, the class
shares and their entropy
(``class_entropy``, nats; :math:`\log K` when uniform). The figures are the samples (an image
grid, or the samples over the modes), both players' training curves and the class histogram.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

import pyro

from pyro_dgm import plots
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.empty import EmptyGuide
from pyro_dgm.infer.ais_hmc import ais_metrics, check_ais_options
from pyro_dgm.infer.estimators import knn_classify
from pyro_dgm.models.gan import Generator
from pyro_dgm.zoo.core import ZooEntry, register

SAMPLES_2D, SAMPLES_IMAGES = 2000, 1000
KNN_K = 3
QUALITY_STDS = 3.0


def build_gan(hyper: dict, data) -> tuple:
    model = Generator(data.dim, hyper["z_dim"], [hyper["hidden"]] * hyper["depth"],
                      images=data.likelihood == "bernoulli", obs_scale=hyper["obs_scale"])
    return model, EmptyGuide()


# -- mode coverage --------------------------------------------------------------------------
def class_modes(train) -> tuple[torch.Tensor, float]:
    """``(means, std)``: each training class's mean point, and the classes' pooled standard
    deviation per coordinate."""
    if train.y is None:
        raise PyroDGMError("mode coverage needs labelled training data (the modes are its classes)")
    classes = int(train.y.max()) + 1
    means = torch.stack([train.x[train.y == c].mean(0) for c in range(classes)])
    residuals = train.x - means[train.y]
    return means, residuals.pow(2).mean().sqrt().item()


def shares_and_coverage(labels: torch.Tensor, classes: int) -> dict:
    """Class shares of the sample ``labels`` (-1: a sample counted in no class), their entropy,
    and the classes holding at least ``1 / (4 * classes)`` of the samples."""
    counted = labels[labels >= 0]
    shares = torch.bincount(counted, minlength=classes).double() / max(len(labels), 1)
    probs = shares / shares.sum() if shares.sum() > 0 else shares
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum().item() + 0.0  # no -0.0
    return {"modes": classes, "modes_covered": int((shares >= 1 / (4 * classes)).sum()),
            "class_shares": [round(s, 4) for s in shares.tolist()], "class_entropy": entropy}


@torch.no_grad()
def mode_coverage(samples: torch.Tensor, train) -> dict:
    """The mode-coverage numbers of ``samples`` against the training data's classes (see the
    module docstring): nearest mode for 2-D points, kNN on pixels for images."""
    samples = samples.cpu()
    if train.image_shape is None:
        means, std = class_modes(train)
        distances = torch.cdist(samples, means)
        nearest = distances.min(1)
        good = nearest.values <= QUALITY_STDS * std
        metrics = shares_and_coverage(torch.where(good, nearest.indices, -1), len(means))
        return {**metrics, "high_quality_fraction": good.double().mean().item()}
    if train.y is None:
        raise PyroDGMError("mode coverage needs labelled training data (the modes are its classes)")
    labels = knn_classify(train.x, train.y, samples, ks=(KNN_K,))[KNN_K]
    return shares_and_coverage(labels, int(train.y.max()) + 1)


def samples_for(model, train, seed: int | None = None) -> torch.Tensor:
    if seed is not None:
        pyro.set_rng_seed(seed)
    return model.sample(SAMPLES_2D if train.image_shape is None else SAMPLES_IMAGES)


# -- the hooks -----------------------------------------------------------------------------
def test_metrics(model, guide, test, num_samples) -> dict:
    """Mode coverage of the trained generator's samples against the held-out data's classes
    (``num_samples``, importance samples of an ELBO, does not apply and is ignored)."""
    return mode_coverage(samples_for(model, test), test)


def evaluate(model, guide, test, train, *, iwae_samples, knn, seed, ais_steps=None,
             ais_chains=None) -> dict:
    """``eval.json``: mode coverage of seeded samples against the training data's classes, and
    with ``ais_steps`` the held-out log-likelihood by AIS under the Gaussian observation model
    of scale ``obs_scale`` (see the module docstring).

    A GAN has no guide to make an IWAE bound with, so ``iwae_samples`` and ``knn`` are ignored
    and ``nll`` is None.
    """
    ais_steps, ais_chains = check_ais_options(ais_steps, ais_chains)
    metrics = {"nll": None, **mode_coverage(samples_for(model, train, seed), train)}
    if ais_steps is not None:
        pyro.set_rng_seed(seed)
        x_test = test.observed(device=next(model.parameters()).device)
        metrics.update(ais_metrics(model, x_test, ais_steps, ais_chains),
                       ais_obs_scale=model.obs_scale)
    return metrics


def figures(model, guide, train, test, history, out) -> None:
    """Samples (an image grid, or the 2-D samples over the modes' 3-std circles), both
    players' losses per epoch, and the class histogram of the samples."""
    out = Path(out)
    samples = samples_for(model, train)
    if train.image_shape is not None:
        plots.image_grid(samples[:100], train.image_shape, out / "samples.png",
                         title="samples from the generator")
    elif train.dim == 2 and train.y is not None:
        means, std = class_modes(train)
        plots.samples_over_modes(train.x[:SAMPLES_2D], samples, means, QUALITY_STDS * std,
                                 out / "samples.png", title="samples over the modes (3 std)")
    plots.curves(history, ["discriminator_loss", "generator_loss"],
                 out / "training_curve.png", title="the two players' losses")
    if train.y is not None:
        coverage = mode_coverage(samples, train)
        plots.class_histogram(coverage["class_shares"], out / "mode_coverage.png",
                              title=f"samples per class: {coverage['modes_covered']} of "
                                    f"{coverage['modes']} covered")


register(ZooEntry(
    name="gan",
    description="generative adversarial network: MLP generator, discriminator owned by the "
                "objective (Goodfellow et al. 2014)",
    model="pyro_dgm.models.gan.Generator", guide="pyro_dgm.guides.empty.EmptyGuide",
    build=build_gan,
    objective="adversarial", objectives=("adversarial",),
    defaults={"z_dim": 100, "hidden": 256, "depth": 2, "obs_scale": 0.1},
    # Adam lr 2e-4 as DCGAN (Radford et al. 2016); its beta1 = 0.5 is not a Trainer option
    training={"lr": 2e-4, "batch_size": 100, "epochs": 100},
    datasets=("toy2d", "mnist"),
    source="seed 004, 'implicit or likelihood-free generative model ... discriminator'",
    test_metrics=test_metrics,
    evaluate=evaluate,
    figures=figures,
))
