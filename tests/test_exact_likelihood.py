"""Exact-likelihood models (issue 15): NADE and the normalizing-flow density model.

Each density is checked against an independent computation: flows integrate to one on a grid
and their log-density equals the base density plus an autograd Jacobian; NADE sums to one over
all binary images and its sampler reproduces its probabilities; the dequantized density of
grey levels bounds the discrete log-probability from below.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import pyro
from pyro.distributions.transforms import BatchNorm, ComposeTransform

from pyro_dgm.data import load_dataset
from pyro_dgm.distributions.nade import NADE as NADEDistribution
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import Experiment, make_config
from pyro_dgm.guides.empty import EmptyGuide
from pyro_dgm.infer import Trainer, build_objective
from pyro_dgm.infer.exact import exact_evaluate
from pyro_dgm.models.flow_density import FLOW_LAYERS, FlowDensity
from pyro_dgm.models.nade import NADE

FLOWS = sorted(FLOW_LAYERS)


def random_flow(flow: str, dim: int = 2, levels=None, layers: int = 2,
                perturb: float = 0.1) -> FlowDensity:
    """A flow in evaluation mode with random weights (its random initialization moved by
    ``perturb`` standard deviations) and random batch-norm statistics."""
    torch.manual_seed(0)
    model = FlowDensity(dim, flow, flow_length=layers, hidden=16, batchnorm=True, levels=levels)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(perturb * torch.randn_like(parameter))
        for norm in model.norms:
            norm.moving_mean.normal_(0, 0.3)
            norm.moving_variance.uniform_(0.5, 2.0)
            norm.gamma.uniform_(0.5, 2.0)
    return model.eval()


def all_binary(dim: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=dim)))


# -- flows ------------------------------------------------------------------------------------
@pytest.mark.parametrize("flow", FLOWS)
def test_every_flow_integrates_to_one_on_a_grid(flow):
    """A midpoint rule with step 0.005 on [-5.5, 5.5]^2 (a spline's density bends sharply at its
    knots, so the grid is fine; one spline layer at its initialization keeps it to seconds)."""
    spline = flow == "spline"
    model = random_flow(flow, layers=1 if spline else 2, perturb=0.0 if spline else 0.1)
    step = 0.005
    side = torch.arange(-5.5 + step / 2, 5.5, step)
    grid = torch.stack(torch.meshgrid(side, side, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = sum(model.log_prob(chunk).exp().sum().item() for chunk in grid.split(2 ** 20))
    mass *= step ** 2
    assert mass == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("levels", [None, 256])
@pytest.mark.parametrize("flow", FLOWS)
def test_every_flow_log_density_matches_an_autograd_jacobian(flow, levels):
    """log p(x) = log N(f^{-1}(x)) + log|det d f^{-1}/dx|, the determinant from autograd."""
    dim = 4
    model = random_flow(flow, dim, levels)
    inverse = ComposeTransform(model.transforms()).inv
    base = torch.distributions.Normal(0.0, 1.0)
    points = torch.randn(3, dim) if levels is None else 256 * torch.rand(3, dim)
    for point in points:
        jacobian = torch.autograd.functional.jacobian(inverse, point)
        reference = (base.log_prob(inverse(point)).sum()
                     + torch.linalg.slogdet(jacobian.double()).logabsdet)
        log_p = model.distribution().log_prob(point)
        assert log_p.item() == pytest.approx(reference.item(), abs=1e-3)


def test_a_dequantized_density_bounds_the_discrete_probability():
    """Grey levels k in {0, .., 3}^2: P(k) is the density's mass on the bin k + [0, 1)^2 (a
    midpoint rule), the masses sum to at most one, and E_v log p(k + v) <= log P(k)."""
    levels = 4
    model = random_flow("realnvp", dim=2, levels=levels)
    bins = torch.tensor(list(itertools.product(range(levels), repeat=2)), dtype=torch.float)
    offsets = (torch.arange(40) + 0.5) / 40
    inside = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2)
    density = model.distribution()
    with torch.no_grad():
        masses = torch.stack([density.log_prob(k + inside).exp().mean() for k in bins])
        pyro.set_rng_seed(0)
        grey = (bins / (levels - 1)).repeat(2000, 1)
        bound = model.log_prob(grey).reshape(2000, -1).mean(0)
    assert masses.sum().item() <= 1 + 1e-3
    assert (bound <= masses.log() + 0.02).all(), (bound, masses.log())


def test_a_flow_learns_two_moons_better_than_a_gaussian():
    train, test = (load_dataset("toy2d", split, n_train=1000, n_test=500) for split in
                   ("train", "test"))
    model = FlowDensity(2, "realnvp", flow_length=4, hidden=32)
    trainer = Trainer(model, EmptyGuide(), "elbo", lr=5e-3, batch_size=100, progress=False)
    trainer.fit(train, epochs=15)
    nll = exact_evaluate(model, None, test)["nll"]["value"]
    gaussian = torch.distributions.MultivariateNormal(train.x.mean(0), torch.cov(train.x.T))
    assert nll < -gaussian.log_prob(test.x).mean().item() - 0.3


def test_an_unknown_flow_is_refused_in_one_sentence():
    config = make_config("flow", dataset="toy2d", settings={"flow": "glow"})
    with pytest.raises(PyroDGMError, match="unknown flow 'glow'"):
        Experiment(config).build()


# -- NADE -------------------------------------------------------------------------------------
def random_nade(dim: int, hidden: int = 5, seed: int = 0) -> NADEDistribution:
    torch.manual_seed(seed)
    return NADEDistribution(torch.randn(hidden, dim), torch.randn(hidden),
                            torch.randn(dim, hidden), torch.randn(dim))


def test_nade_sums_to_one_over_all_binary_images():
    log_probs = random_nade(dim=10, hidden=7).log_prob(all_binary(10))
    assert torch.logsumexp(log_probs, 0).item() == pytest.approx(0.0, abs=1e-5)


def test_nade_conditionals_match_a_pixel_by_pixel_computation():
    nade = random_nade(dim=40, hidden=7)  # several blocks of pixels
    x = torch.bernoulli(torch.full((50, 40), 0.5))
    activation, reference = nade.c.expand(50, -1), []
    for d in range(40):
        reference.append(nade.b[d] + torch.sigmoid(activation) @ nade.V[d])
        activation = activation + x[:, d:d + 1] * nade.W[:, d]
    assert torch.allclose(nade.conditional_logits(x), torch.stack(reference, -1), atol=1e-5)


def test_nade_samples_reproduce_its_probabilities():
    """Frequencies of all 2^4 images and of x_4 = 1 after each prefix, within 5 sigma."""
    nade, n = random_nade(dim=4), 40000
    torch.manual_seed(1)
    samples = nade.sample((n,))
    images = all_binary(4)
    probabilities = nade.log_prob(images).exp()
    counts = (samples[:, None, :] == images).all(-1).sum(0).float()
    sigma = (probabilities * (1 - probabilities) / n).sqrt()
    assert ((counts / n - probabilities).abs() <= 5 * sigma + 1e-4).all()
    last = torch.sigmoid(nade.conditional_logits(images))[:, -1]
    for prefix, probability in zip(images[::2, :3], last[::2]):
        given = (samples[:, :3] == prefix).all(-1)
        frequency = samples[given, 3].mean().item()
        tolerance = 5 * math.sqrt(probability * (1 - probability) / given.sum()) + 1e-3
        assert abs(frequency - probability.item()) <= tolerance


def test_nade_validates_its_arguments_and_values():
    with pytest.raises(ValueError, match="NADE needs"):
        NADEDistribution(torch.zeros(3, 4), torch.zeros(3), torch.zeros(3, 4), torch.zeros(4))
    nade = random_nade(dim=4)
    with pytest.raises(ValueError):
        NADEDistribution(nade.W, nade.c, nade.V, nade.b, validate_args=True).log_prob(
            torch.full((4,), 0.5))
    expanded = nade.expand([6])
    assert expanded.batch_shape == (6,) and expanded.sample().shape == (6, 4)
    assert expanded.log_prob(all_binary(4)[:6]).shape == (6,)


def test_the_elbo_of_the_empty_guide_is_the_exact_log_likelihood():
    model, x = NADE(12, hidden=6), all_binary(12)[::97]
    loss = build_objective("elbo", model, EmptyGuide())
    assert loss(x).item() == pytest.approx(-model.log_prob(x).sum().item(), rel=1e-6)


def test_a_trained_nade_beats_independent_pixels_on_bars():
    train, test = (load_dataset("bars", split, n_train=500, n_test=200) for split in
                   ("train", "test"))
    model = NADE(train.dim, hidden=32)
    trainer = Trainer(model, EmptyGuide(), "elbo", lr=1e-2, batch_size=50, progress=False)
    trainer.fit(train, epochs=10)
    evaluation = exact_evaluate(model, None, test)
    mean = train.x.mean(0).clamp(1e-3, 1 - 1e-3)
    independent = -torch.distributions.Bernoulli(mean).log_prob(test.x).sum(-1).mean().item()
    assert evaluation["nll_method"] == "exact"
    assert evaluation["nll"]["value"] < independent - 1.0


# -- the toy data -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["moons", "rings", "mixture"])
def test_toy2d_shapes_are_reproducible_2d_points(shape):
    a = load_dataset("toy2d", "train", seed=3, shape=shape, n_train=100)
    b = load_dataset("toy2d", "train", seed=3, shape=shape, n_train=100)
    test = load_dataset("toy2d", "test", seed=3, shape=shape, n_test=50)
    assert a.x.shape == (100, 2) and test.x.shape == (50, 2) and torch.equal(a.x, b.x)
    assert a.x.abs().max() < 4.5 and not torch.equal(a.x[:50], test.x)


def test_toy2d_refuses_bad_options_in_one_sentence():
    with pytest.raises(PyroDGMError, match="toy2d shape"):
        load_dataset("toy2d", "train", shape="spiral")
    with pytest.raises(PyroDGMError, match="cannot be binarized"):
        load_dataset("toy2d", "train", binarize="static")
