"""Tests of the DP-VAE (DLGMM / DLDPM): the mixture prior, the two marginalizations, the zoo entries."""

import math
import warnings

import pytest
import torch

import pyro
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.dpvae import MixtureEncoder
from pyro_dgm.infer import Trainer, log_likelihood_bounds
from pyro_dgm.models.dpvae import DPVAE
from pyro_dgm.zoo import get_entry

X_DIM = 16


def make_pair(prior="gmm", marginalize="enumerate", z_dim=2, components=3, seed=0):
    torch.manual_seed(seed)
    model = DPVAE(X_DIM, z_dim, components, prior, alpha0=1.5, hidden=8, marginalize=marginalize)
    guide = MixtureEncoder(X_DIM, z_dim, components, prior, hidden=8, marginalize=marginalize)
    with torch.no_grad():  # spread the components so that the mixture is not one Gaussian
        model.component_locs.copy_(3 * torch.randn(components, z_dim))
        model.component_scale_logits.copy_(torch.randn(components, z_dim))
    return model, guide


def binary_data(n=6, seed=1):
    return torch.bernoulli(torch.full((n, X_DIM), 0.3), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- the mixture prior


@pytest.mark.parametrize("prior", ["gmm", "dp"])
def test_mixture_log_density_is_a_logsumexp_over_components(prior):
    model, _ = make_pair(prior, z_dim=3, components=4)
    weights = (torch.softmax(torch.randn(5, 4), -1) if prior == "dp"
               else torch.softmax(model.weight_logits, -1).expand(5, 4))
    z = torch.randn(5, 3)
    locs, scales = model.component_locs, model.component_scales()
    by_hand = torch.stack([
        weights[:, k].log() + sum(
            -0.5 * ((z[:, d] - locs[k, d]) / scales[k, d]) ** 2 - scales[k, d].log()
            - 0.5 * math.log(2 * math.pi) for d in range(3))
        for k in range(4)], -1).logsumexp(-1)
    assert torch.allclose(model.mixture(weights).log_prob(z), by_hand, atol=1e-5)


def test_mixture_density_integrates_to_one_in_1d_and_2d():
    model, _ = make_pair("gmm", z_dim=1, components=3)
    grid = torch.linspace(-25, 25, 20001, dtype=torch.float64).unsqueeze(-1)
    weights = torch.softmax(model.weight_logits, -1).double()
    model.double()
    density = model.mixture(weights).log_prob(grid).exp()
    assert torch.trapezoid(density, grid.squeeze(-1)).item() == pytest.approx(1.0, abs=1e-6)

    model, _ = make_pair("dp", z_dim=2, components=3)
    model.double()
    axis = torch.linspace(-20, 20, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    density = model.mixture(weights.expand(401, 401, 3)).log_prob(grid).exp()
    mass = torch.trapezoid(torch.trapezoid(density, axis, dim=-1), axis).item()
    assert mass == pytest.approx(1.0, abs=1e-4)


def test_dldpm_expected_weights_match_the_truncated_gem_mean():
    model, _ = make_pair("dp", components=5)
    draws = model.stick_breaking(model.stick_prior().sample([200000]))
    assert torch.allclose(draws.mean(0), model.expected_weights(), atol=3e-3)
    assert model.expected_weights().sum().item() == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------- the two ELBOs


@pytest.mark.parametrize("prior", ["gmm", "dp"])
def test_density_marginalization_equals_pyro_enumeration_exactly(prior):
    """``marginalize="enumerate"`` (mixture density) == ``TraceEnum_ELBO`` over a model site ``c``."""
    model, guide = make_pair(prior, "enumerate")
    x = binary_data()
    pyro.set_rng_seed(3)
    in_density = Trace_ELBO().loss(model, guide, x)
    pyro.set_rng_seed(3)
    enumerated = TraceEnum_ELBO(max_plate_nesting=1).loss(model.enumerated_program, guide, x)
    assert in_density == pytest.approx(enumerated, rel=1e-5)


@pytest.mark.parametrize("prior", ["gmm", "dp"])
def test_summed_elbo_is_the_expectation_of_the_sampled_one(prior):
    """The seed's sum over components == the ELBO with the component sampled, in expectation."""
    model, guide = make_pair(prior, "sum")
    x = binary_data(n=2)
    pyro.set_rng_seed(0)
    particles = 4000
    summed = TraceEnum_ELBO(max_plate_nesting=1, num_particles=particles,
                            vectorize_particles=True).loss(model, guide, x)
    sampled_elbo = Trace_ELBO(max_plate_nesting=1, num_particles=400, vectorize_particles=True)
    with warnings.catch_warnings():  # Trace_ELBO notes that it samples the enumerable site c
        warnings.simplefilter("ignore", UserWarning)
        per_particle = torch.tensor([sampled_elbo.loss(model, guide, x) for _ in range(40)])
    sampled, error = per_particle.mean().item(), per_particle.std().item() / math.sqrt(40)
    assert summed == pytest.approx(sampled, abs=4 * error + 0.05)


def test_summed_variant_decodes_once_per_component_and_the_cheap_one_once():
    x = binary_data(n=5)
    rows = {}
    for marginalize in ("sum", "enumerate"):
        model, guide = make_pair("gmm", marginalize, components=4)
        seen = []
        model.decoder.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape))
        TraceEnum_ELBO(max_plate_nesting=1, strict_enumeration_warning=False).loss(model, guide, x)
        rows[marginalize] = seen[-1][:-1].numel()
    assert rows == {"sum": 4 * 5, "enumerate": 5}


@pytest.mark.parametrize("marginalize", ["sum", "enumerate"])
def test_bounds_are_ordered_and_finite(marginalize):
    model, guide = make_pair("dp", marginalize)
    x = binary_data()
    pyro.set_rng_seed(0)
    elbo, iwae = log_likelihood_bounds(model, guide, x, num_samples=200)
    assert torch.isfinite(iwae).all() and (elbo <= iwae + 1e-4).all()


# --------------------------------------------------------------------------- training, zoo, errors


def test_zoo_entries_train_on_bars_and_sample_per_component():
    train = load_dataset("bars", "train", n_train=300)
    for name, marginalize in (("dlgmm", "sum"), ("dldpm", "enumerate")):
        entry = get_entry(name)
        hyper = entry.hyper({"z_dim": 2, "hidden": 16, "components": 3,
                             "marginalize": marginalize})
        model, guide = entry.build(hyper, train)
        trainer = Trainer(model, guide, entry.objective, lr=1e-2, batch_size=50, progress=False)
        history = trainer.fit(train, epochs=4)
        assert history[-1]["loss"] < history[0]["loss"]
        assert model.sample_component(2, 7).shape == (7, 16)
        assert model.sample(5).shape == (5, 16)
        assert torch.allclose(model.responsibilities(guide.encode(train.x[:9])).sum(-1),
                              torch.ones(9))


def test_bad_options_raise_one_sentence():
    with pytest.raises(PyroDGMError, match="mixture prior"):
        DPVAE(X_DIM, prior="dirichlet")
    with pytest.raises(PyroDGMError, match="marginalize"):
        MixtureEncoder(X_DIM, marginalize="sample")
    with pytest.raises(PyroDGMError, match="at least 2 components"):
        DPVAE(X_DIM, components=1)
    with pytest.raises(PyroDGMError, match="component must be"):
        DPVAE(X_DIM, components=3).sample_component(3, 4)
