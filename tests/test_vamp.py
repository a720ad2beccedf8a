"""The VampPrior (pyro_dgm.models.vamp) and the HVAE guide (pyro_dgm.guides.hvae)."""

from __future__ import annotations

import math

import pytest
import torch

import pyro
import pyro.distributions as dist

from pyro_dgm.guides.gaussian import GaussianEncoder
from pyro_dgm.guides.hvae import HVAEGuide
from pyro_dgm.infer.estimators import log_importance_weights, log_likelihood_bounds
from pyro_dgm.models.vamp import DiagonalNormalMixture, VampHVAE, VampPrior, VampVAE


def test_mixture_log_density_is_logsumexp_over_components():
    torch.manual_seed(0)
    loc, scale = torch.randn(5, 3), 0.1 + torch.rand(5, 3)
    z = 2 * torch.randn(7, 4, 3)                        # particles x data x event
    mixture = DiagonalNormalMixture(loc, scale).expand([4])
    components = dist.Normal(loc, scale).to_event(1).log_prob(z.unsqueeze(-2))   # (7, 4, 5)
    expected = torch.logsumexp(components, -1) - math.log(5)
    assert mixture.log_prob(z).shape == (7, 4)
    assert torch.allclose(mixture.log_prob(z), expected, atol=1e-5)


def test_mixture_density_integrates_to_one():
    torch.manual_seed(1)
    mixture = DiagonalNormalMixture(torch.randn(4, 1), 0.2 + torch.rand(4, 1))
    grid = torch.linspace(-8, 8, 20001).unsqueeze(-1)
    mass = torch.trapezoid(mixture.log_prob(grid).exp(), grid.squeeze(-1))
    assert abs(mass.item() - 1.0) < 1e-4


def test_mixture_samples_match_its_mean():
    torch.manual_seed(2)
    loc = torch.tensor([[-3.0, 0.0], [3.0, 1.0]])
    samples = DiagonalNormalMixture(loc, torch.full((2, 2), 0.5)).sample([20000])
    assert torch.allclose(samples.mean(0), loc.mean(0), atol=0.06)


def test_vamp_prior_is_mean_of_encoder_posteriors_at_pseudo_inputs():
    torch.manual_seed(3)
    encoder = GaussianEncoder(6, 2, 8)
    vamp = VampPrior(encoder, 6, n_pseudo=10)
    z = torch.randn(3, 2)
    u = vamp.pseudo_inputs()
    assert ((u > 0) & (u < 1)).all()
    per_component = torch.stack([encoder.posterior(u[k]).log_prob(z) for k in range(10)], -1)
    expected = torch.logsumexp(per_component, -1) - math.log(10)
    assert torch.allclose(vamp().log_prob(z), expected, atol=1e-5)


def test_prior_gradient_reaches_pseudo_inputs_and_shared_encoder():
    torch.manual_seed(4)
    pyro.clear_param_store()
    encoder = GaussianEncoder(6, 2, 8)
    model = VampVAE(6, encoder, z_dim=2, hidden=8, n_pseudo=5)
    assert "vamp.pseudo_logits" in dict(model.named_parameters())
    assert not any(name.startswith("vamp.encoder") for name, _ in model.named_parameters())
    x = torch.rand(4, 6).round()
    loss = pyro.infer.Trace_ELBO().differentiable_loss(model, encoder, x)
    loss.backward()
    assert model.vamp.pseudo_logits.grad.abs().sum() > 0
    assert encoder.loc_head.weight.grad.abs().sum() > 0


def _hvae(seed: int = 5):
    torch.manual_seed(seed)
    guide = HVAEGuide(6, z1_dim=2, z2_dim=3, hidden=8)
    model = VampHVAE(6, guide.z2_encoder, z1_dim=2, z2_dim=3, hidden=8, n_pseudo=4)
    return model, guide


def test_hvae_weights_are_per_example_and_bounds_ordered():
    model, guide = _hvae()
    x = torch.rand(5, 6).round()
    log_w = log_importance_weights(model, guide, x, num_samples=11)
    assert log_w.shape == (11, 5) and torch.isfinite(log_w).all()
    elbo, iwae = log_likelihood_bounds(model, guide, x, num_samples=50)
    assert (elbo <= iwae + 1e-5).all()
    assert guide.encode(x).shape == (5, 5)
    assert model.sample(3).shape == (3, 6)


def test_hvae_log_weight_is_joint_minus_guide_by_hand():
    model, guide = _hvae(6)
    x = torch.rand(2, 6).round()
    pyro.set_rng_seed(7)
    log_w = log_importance_weights(model, guide, x, num_samples=1, max_plate_nesting=1)[0]
    pyro.set_rng_seed(7)
    with torch.no_grad():
        q2 = guide.z2_encoder.posterior(x)
        z2 = q2.rsample()
        q1 = guide.z1_posterior(x, z2)
        z1 = q1.rsample()
        log_p = (model.vamp().log_prob(z2) + model.z1_given_z2(z2).log_prob(z1)
                 + model.decoder(torch.cat([z1, z2], -1)).log_prob(x))
        expected = log_p - q2.log_prob(z2) - q1.log_prob(z1)
    assert torch.allclose(log_w, expected, atol=1e-4)


@pytest.mark.parametrize("name", ["vamp-vae", "vamp-hvae"])
def test_trained_vamp_models_beat_their_start(name):
    """A short fit on the bars data lowers the held-out -ELBO well below its initial value."""
    from pyro_dgm.data import load_dataset
    from pyro_dgm.infer import Trainer
    from pyro_dgm.zoo import get_entry
    train = load_dataset("bars", "train", n_train=1000)
    test = load_dataset("bars", "test")
    entry = get_entry(name)
    small = ({"z_dim": 2} if name == "vamp-vae" else {"z1_dim": 2, "z2_dim": 2})
    model, guide = entry.build(entry.hyper({**small, "hidden": 32, "pseudo_inputs": 10}), train)
    before, _ = log_likelihood_bounds(model, guide, test.x[:200], num_samples=5)
    Trainer(model, guide, "elbo", lr=1e-2, batch_size=100, progress=False).fit(train, 5)
    after, _ = log_likelihood_bounds(model, guide, test.x[:200], num_samples=5)
    assert after.mean() > before.mean() + 2.0
