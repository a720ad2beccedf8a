"""Tests of the objective registry: names and options, the IWAE objective, and the mean-field KL.

The IWAE checks use a conjugate linear-Gaussian model (plain Pyro functions) whose marginal
likelihood and posterior are known exactly; the mean-field check rebuilds the SB-VAE loss by
hand from the Kumaraswamy-to-Beta KL.
"""

import math

import pytest
import torch

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine

from pyro_dgm.data import load_dataset
from pyro_dgm.distributions import kl_kumaraswamy_beta
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.infer import (
    OBJECTIVES,
    Trainer,
    build_objective,
    get_objective,
    log_importance_weights,
)
from pyro_dgm.infer.objectives import ObjectiveLoss
from pyro_dgm.zoo import get_entry

DTYPE = torch.float64
BUILT_IN = ("elbo", "meanfield", "tracegraph", "iwae")


# --------------------------------------------------------------------------- a conjugate model


class LinearGaussian:
    """``z ~ N(0, I)``, ``x | z ~ N(W z, sigma^2 I)``, every site inside ``plate("data")``."""

    def __init__(self, z_dim=2, x_dim=3, sigma=0.5, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.W = torch.randn(x_dim, z_dim, generator=generator, dtype=DTYPE)
        self.sigma, self.z_dim, self.x_dim = sigma, z_dim, x_dim
        covariance = self.W @ self.W.T + sigma ** 2 * torch.eye(x_dim, dtype=DTYPE)
        self.marginal = dist.MultivariateNormal(torch.zeros(x_dim, dtype=DTYPE), covariance)
        noise = torch.randn(x_dim, 40, generator=generator, dtype=DTYPE)
        self.x = (torch.linalg.cholesky(covariance) @ noise).T.contiguous()

    def model(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.z_dim), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.W.T, self.sigma).to_event(1), obs=x)

    def posterior(self, x):
        precision = torch.eye(self.z_dim, dtype=DTYPE) + self.W.T @ self.W / self.sigma ** 2
        covariance = torch.linalg.inv(precision)
        covariance = (covariance + covariance.T) / 2
        return dist.MultivariateNormal((x @ self.W / self.sigma ** 2) @ covariance, covariance)

    def exact_guide(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.posterior(x))

    def wrong_guide(self, x):
        exact = self.posterior(x)
        sd = exact.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(exact.mean + 0.7 * sd, 1.6 * sd).to_event(1))


@pytest.fixture
def conjugate():
    return LinearGaussian()


# --------------------------------------------------------------------------- the registry


def test_built_in_objectives_are_registered():
    assert set(BUILT_IN) <= set(OBJECTIVES)
    for name in BUILT_IN:
        assert get_objective(name).name == name
        assert get_objective(name).options == {"particles": 5 if name == "iwae" else 1}


def test_unknown_objective_lists_the_valid_ones():
    with pytest.raises(PyroDGMError) as raised:
        get_objective("wake-sleeep")
    message = str(raised.value)
    assert "wake-sleeep" in message
    for name in OBJECTIVES:
        assert name in message
    with pytest.raises(PyroDGMError, match="unknown objective"):
        build_objective("nope", None, None)


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(PyroDGMError) as raised:
        build_objective("elbo", None, None, particles=2, alpha=0.5)
    message = str(raised.value)
    assert "alpha" in message and "particles" in message


@pytest.mark.parametrize("particles", [0, -3, 2.5, "5"])
@pytest.mark.parametrize("name", BUILT_IN)
def test_bad_particle_counts_are_refused(name, particles):
    with pytest.raises(PyroDGMError, match="particles"):
        build_objective(name, None, None, particles=particles)


def test_particles_option_reaches_the_pyro_loss():
    loss = build_objective("iwae", None, None, particles=7)
    assert isinstance(loss, ObjectiveLoss) and isinstance(loss.elbo, pyro.infer.RenyiELBO)
    assert loss.elbo.alpha == 0 and loss.num_particles == 7 and loss.elbo.vectorize_particles
    assert build_objective("iwae", None, None).num_particles == 5
    assert isinstance(build_objective("elbo", None, None).elbo, pyro.infer.Trace_ELBO)
    assert isinstance(build_objective("meanfield", None, None).elbo, pyro.infer.TraceMeanField_ELBO)
    assert isinstance(build_objective("tracegraph", None, None).elbo, pyro.infer.TraceGraph_ELBO)
    trainer = Trainer(lambda x: None, lambda x: None, "iwae", objective_options={"particles": 3},
                      progress=False)
    assert trainer.loss.num_particles == 3
    with pytest.raises(PyroDGMError, match="particles"):
        Trainer(lambda x: None, lambda x: None, "elbo", objective_options={"particles": 0},
                progress=False)


# --------------------------------------------------------------------------- IWAE


def test_iwae_loss_with_the_exact_posterior_is_minus_the_log_marginal(conjugate):
    loss = build_objective("iwae", conjugate.model, conjugate.exact_guide, particles=10)
    log_px = conjugate.marginal.log_prob(conjugate.x)
    value = loss.value(conjugate.x)
    assert value == pytest.approx(-log_px.sum().item(), abs=1e-6)


def test_iwae_loss_is_the_per_example_bound_summed_over_the_batch(conjugate):
    """Same seed, same draws: the loss is -sum_n log (1/k) sum_s w_{n,s}, not a joint bound."""
    k, x = 10, conjugate.x
    loss = build_objective("iwae", conjugate.model, conjugate.wrong_guide, particles=k)
    loss.value(x)  # first call guesses the plate nesting
    pyro.set_rng_seed(7)
    value = loss.value(x)
    pyro.set_rng_seed(7)
    log_weights = log_importance_weights(conjugate.model, conjugate.wrong_guide, x, k,
                                         max_plate_nesting=1)
    per_example = torch.logsumexp(log_weights, 0) - math.log(k)
    joint = torch.logsumexp(log_weights.sum(1), 0) - math.log(k)
    assert value == pytest.approx(-per_example.sum().item(), rel=1e-9)
    # the joint bound over the whole batch is far looser: the test can tell them apart
    assert -joint.item() > value + 1.0


def test_iwae_loss_in_expectation_matches_the_per_example_bound(conjugate):
    """Over many seeds, the k=5 loss averages to -sum_n IWAE_5(x_n), below -sum log p(x)."""
    x, k = conjugate.x, 5
    loss = build_objective("iwae", conjugate.model, conjugate.wrong_guide, particles=k)
    pyro.set_rng_seed(0)
    losses = torch.tensor([loss.value(x)
                           for _ in range(200)], dtype=DTYPE)
    log_weights = log_importance_weights(conjugate.model, conjugate.wrong_guide, x, 20000,
                                         max_plate_nesting=1)
    iwae_k = (torch.logsumexp(log_weights.reshape(-1, k, x.shape[0]), 1) - math.log(k)).mean(0)
    standard_error = losses.std() / math.sqrt(len(losses))
    assert abs(losses.mean() + iwae_k.sum()) < 4 * standard_error + 0.05
    assert losses.mean() > -conjugate.marginal.log_prob(x).sum()


def test_trainer_reports_the_loss_per_example(conjugate):
    """With the exact posterior every objective's loss per example is -mean log p(x)."""
    expected = -conjugate.marginal.log_prob(conjugate.x).mean().item()
    for name in ("elbo", "iwae", "tracegraph"):
        trainer = Trainer(conjugate.model, conjugate.exact_guide, name, progress=False)
        assert trainer.step(conjugate.x) == pytest.approx(expected, abs=1e-6)


def _bernoulli_latent_pair():
    def model(x):
        with pyro.plate("data", x.shape[0]):
            c = pyro.sample("c", dist.Bernoulli(0.5 * torch.ones(1)).to_event(1))
            pyro.sample("x", dist.Normal(c.expand(*c.shape[:-1], x.shape[-1]), 1.0).to_event(1),
                        obs=x)

    def guide(x):
        p = pyro.param("p", torch.full((1,), 0.3), constraint=dist.constraints.unit_interval)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("c", dist.Bernoulli(p).to_event(1))

    return model, guide


def test_iwae_refuses_a_guide_with_a_bernoulli_site():
    model, guide = _bernoulli_latent_pair()
    data = load_dataset("bars", "train", n_train=20)
    trainer = Trainer(model, guide, "iwae", batch_size=10, progress=False)
    with pytest.raises(PyroDGMError) as raised:
        trainer.fit(data, epochs=1)
    message = str(raised.value)
    assert "'c'" in message and "iwae" in message and "tracegraph" in message
    assert trainer.history == []
    # nothing was updated: the refusal comes before the first gradient step
    assert pyro.param("p").item() == pytest.approx(0.3)


def test_tracegraph_trains_the_same_bernoulli_guide():
    model, guide = _bernoulli_latent_pair()
    data = load_dataset("bars", "train", n_train=20)
    history = Trainer(model, guide, "tracegraph", lr=0.05, batch_size=10,
                      progress=False).fit(data, epochs=2)
    assert len(history) == 2 and all(math.isfinite(h["loss"]) for h in history)
    assert pyro.param("p").item() != pytest.approx(0.3)


@pytest.mark.parametrize("model_name", ["vae", "sbvae"])
def test_iwae_accepts_reparameterized_zoo_guides(model_name):
    data = load_dataset("bars", "train", n_train=40)
    entry = get_entry(model_name)
    hyper = {"hidden": 8, **({"z_dim": 2} if model_name == "vae" else {"truncation": 4})}
    torch.manual_seed(0)
    model, guide = entry.build(entry.hyper(hyper), data)
    history = Trainer(model, guide, "iwae", lr=1e-2, batch_size=20,
                      objective_options={"particles": 3}, progress=False).fit(data, epochs=2)
    assert len(history) == 2 and all(math.isfinite(h["loss"]) for h in history)


# --------------------------------------------------------------------------- mean field on the SB-VAE


def _tiny_sbvae(kl_terms):
    data = load_dataset("bars", "train", n_train=30)
    entry = get_entry("sbvae")
    torch.manual_seed(0)
    model, guide = entry.build(entry.hyper({"truncation": 6, "hidden": 16, "kl_terms": kl_terms}),
                               data)
    return model, guide, data.x


def _loss_by_hand(model, guide, x, seed, analytic_kl: bool):
    """-(log p(x | v) - KL) with v ~ q, the KL analytic (Taylor) or a one-sample estimate."""
    pyro.set_rng_seed(seed)
    with poutine.block():
        guide_trace = poutine.trace(guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
    log_likelihood = model_trace.nodes["x"]["fn"].log_prob(x).sum()
    q = guide.posterior(x)
    prior = dist.Beta(torch.tensor(1.0), torch.tensor(model.alpha0))
    v = guide_trace.nodes["v"]["value"]
    if analytic_kl:
        kl = kl_kumaraswamy_beta(q, prior).sum()
    else:
        kl = (q.log_prob(v) - prior.log_prob(v)).sum()
    return -(log_likelihood - kl).item()


@torch.no_grad()
def test_meanfield_uses_the_taylor_kl_for_the_sbvae():
    model, guide, x = _tiny_sbvae(kl_terms=10)
    meanfield = build_objective("meanfield", model, guide)
    pyro.set_rng_seed(3)
    loss = meanfield.value(x)
    expected = _loss_by_hand(model, guide, x, seed=3, analytic_kl=True)
    assert loss == pytest.approx(expected, rel=1e-5)
    # the Monte Carlo ELBO with the same draws differs: meanfield did not fall back to sampling
    monte_carlo = _loss_by_hand(model, guide, x, seed=3, analytic_kl=False)
    pyro.set_rng_seed(3)
    assert build_objective("elbo", model, guide).value(x) == pytest.approx(monte_carlo, rel=1e-5)
    assert abs(loss - monte_carlo) > 1e-2


@torch.no_grad()
def test_meanfield_follows_the_guides_taylor_terms_and_truncation_bias():
    """Fewer terms drop positive terms of the series: the KL, hence the loss, is smaller."""
    losses = {}
    for terms in (1, 10, 200):
        model, guide, x = _tiny_sbvae(kl_terms=terms)
        pyro.set_rng_seed(4)
        losses[terms] = build_objective("meanfield", model, guide).value(x)
        assert losses[terms] == pytest.approx(
            _loss_by_hand(model, guide, x, seed=4, analytic_kl=True), rel=1e-5)
    assert losses[1] < losses[10] < losses[200]


# --------------------------------------------------------------------------- every objective as a loss module


def _programs_and_batch(name):
    """A tiny model, guide and batch that objective ``name`` applies to."""
    from pyro_dgm.guides import SBNRecognition
    from pyro_dgm.guides.air import AIRGuide
    from pyro_dgm.guides.polyreg import PolyRegProposal
    from pyro_dgm.guides.ssvae import M2Guide
    from pyro_dgm.models import SigmoidBeliefNet
    from pyro_dgm.models.air import AIR
    from pyro_dgm.models.polyreg import PolyRegression
    from pyro_dgm.models.ssvae import M2

    torch.manual_seed(0)
    x = torch.rand(6, 16).round()
    if name in ("iwae", "meanfield"):
        data = load_dataset("bars", "train", n_train=6)
        entry = get_entry("vae")
        return (*entry.build(entry.hyper({"hidden": 8, "z_dim": 2}), data), data.x)
    if name in ("enum-elbo", "ss-elbo"):
        model, guide = M2(16, 4, 3, "gaussian", alpha0=2.0, hidden=8), M2Guide(16, 4, 3, "gaussian",
                                                                              hidden=8)
        return model, guide, (x, torch.tensor([0, 1, -1, 2, -1, 3]))
    if name in ("sleep", "csis"):
        model = PolyRegression(max_points=8)
        sim = model.simulate(4, seed=0)
        return model, PolyRegProposal(hidden=16, components=2), (sim["t"], sim["y"], sim["mask"])
    if name in ("pcd", "cd"):
        data = load_dataset("bars", "train", n_train=6)
        entry = get_entry("rbm")
        return (*entry.build(entry.hyper({"hidden": 8}), data), data.x)
    if name == "adversarial":
        data = load_dataset("toy2d", "train", shape="mixture", n_train=6)
        entry = get_entry("gan")
        return (*entry.build(entry.hyper({"hidden": 8, "z_dim": 2}), data), data.x)
    if name == "count-enum":
        small = {"canvas": 20, "steps": 2, "glimpse": 10, "z_what_dim": 5, "hidden": 16}
        return AIR(**small), AIRGuide(**small, rnn_hidden=16, embed=16), torch.rand(3, 400) * 0.5
    return SigmoidBeliefNet(16, [4]), SBNRecognition(16, [4]), x


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_objective_takes_a_trainer_step(name):
    """One ``Trainer.step``: a finite loss, and the parameters the objective trains move."""
    pyro.clear_param_store()
    model, guide, batch = _programs_and_batch(name)
    trainer = Trainer(model, guide, name, lr=1e-2, progress=False)
    assert isinstance(trainer.loss, ObjectiveLoss) and isinstance(trainer.loss, torch.nn.Module)
    # the guide's parameters, or the model's where the guide has none (a GAN's generator)
    trained = guide if list(guide.parameters()) else model
    before = [p.detach().clone() for p in trained.parameters()]
    loss = trainer.step(batch)
    assert math.isfinite(loss)
    assert trainer.steps == 1 and trainer.examples == _first(batch).shape[0]
    moved = [not torch.equal(b, p) for b, p in zip(before, trained.parameters())]
    assert any(moved), "the trained parameters did not move"


def _first(batch):
    return batch[0] if isinstance(batch, tuple) else batch


def _gradients(*modules):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for module in modules for p in module.parameters()]


@pytest.mark.parametrize("elbo_class", [pyro.infer.Trace_ELBO, pyro.infer.TraceGraph_ELBO])
def test_elbo_loss_module_gradient_is_pyros_loss_and_grads(elbo_class):
    """On the same draws, ``loss(x).backward()`` sets the gradients Pyro's ``loss_and_grads`` sets,
    and the value is Pyro's loss (a discrete SBN guide, so the score-function terms count)."""
    from pyro_dgm.guides import SBNRecognition
    from pyro_dgm.models import SigmoidBeliefNet
    name = "elbo" if elbo_class is pyro.infer.Trace_ELBO else "tracegraph"
    torch.manual_seed(0)
    model, guide = SigmoidBeliefNet(16, [4, 3]), SBNRecognition(16, [4, 3])
    x = torch.rand(5, 16).round()
    pyro.set_rng_seed(5)
    reference_value = elbo_class(max_plate_nesting=1).loss_and_grads(model, guide, x)
    reference = _gradients(model, guide)
    model.zero_grad(set_to_none=True)
    guide.zero_grad(set_to_none=True)
    loss = build_objective(name, model, guide)
    loss.elbo.max_plate_nesting = 1
    pyro.set_rng_seed(5)
    value = loss(x)
    value.backward()
    assert value.item() == pytest.approx(reference_value, rel=1e-6)
    for ours, theirs in zip(_gradients(model, guide), reference):
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_iwae_loss_module_gradient_is_renyi_elbos(conjugate):
    """The IWAE module's gradient equals ``RenyiELBO(alpha=0).loss_and_grads``' on the same draws."""
    pyro.clear_param_store()

    def guide(x):
        shift = pyro.param("shift", torch.tensor([0.3, -0.2], dtype=DTYPE))
        exact = conjugate.posterior(x)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(exact.mean + shift, 1.2).to_event(1))

    def shift_grad():
        unconstrained = pyro.param("shift").unconstrained()
        grad, unconstrained.grad = unconstrained.grad.clone(), None
        return grad

    reference = pyro.infer.RenyiELBO(alpha=0.0, num_particles=4, vectorize_particles=True,
                                     max_plate_nesting=1)
    pyro.set_rng_seed(9)
    reference_value = reference.loss_and_grads(conjugate.model, guide, conjugate.x)
    reference_grad = shift_grad()
    loss = build_objective("iwae", conjugate.model, guide, particles=4)
    loss.elbo.max_plate_nesting = reference.max_plate_nesting
    pyro.set_rng_seed(9)
    value = loss(conjugate.x)
    value.backward()
    assert value.item() == pytest.approx(reference_value, rel=1e-9)
    assert torch.allclose(shift_grad(), reference_grad, rtol=1e-9)
    assert reference_grad.abs().sum() > 0
