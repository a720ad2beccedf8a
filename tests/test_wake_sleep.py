"""Sigmoid belief nets and the wake-sleep family of objectives, checked against exact enumeration.

A sigmoid belief net with 2 binary latents over 3 pixels has 4 latent configurations, so its
evidence, posterior, the KL between posterior and guide and the ELBO's gradient are computed
exactly by enumeration and compared with what the estimators return.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import pyro
from pyro.infer import ReweightedWakeSleep, Trace_ELBO

from pyro_dgm import PyroDGMError
from pyro_dgm.data import load_dataset
from pyro_dgm.guides import SBNRecognition
from pyro_dgm.infer import Trainer, build_objective, evaluate
from pyro_dgm.models import SigmoidBeliefNet
from pyro_dgm.models.sbn import bernoulli_logits


def tiny_sbn(seed: int = 0):
    """A 2-latent, 3-pixel SBN and its guide with random (not small) weights."""
    torch.manual_seed(seed)
    pyro.clear_param_store()
    model, guide = SigmoidBeliefNet(3, [2]), SBNRecognition(3, [2])
    with torch.no_grad():
        for parameter in [*model.parameters(), *guide.parameters()]:
            parameter.normal_(0, 1.5)
    return model, guide


CONFIGS = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))  # all h in {0,1}^2


def exact_log_joint(model, x):
    """``log p(x, h)`` for every configuration ``h``: shape ``(4, N)``."""
    h = CONFIGS[:, None, :]
    log_prior = bernoulli_logits(model.top_logits).log_prob(h)
    return log_prior + bernoulli_logits(model.decoders[0](h)).log_prob(x)


def exact_log_q(guide, x):
    """``log q(h | x)`` for every configuration ``h``: shape ``(4, N)``."""
    return bernoulli_logits(guide.encoders[0](x)).log_prob(CONFIGS[:, None, :])


def exact_log_evidence(model, x):
    return torch.logsumexp(exact_log_joint(model, x), 0)


X = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])


def guide_grads(guide):
    return torch.cat([p.grad.flatten() for p in guide.parameters()])


def zero_grads(*modules):
    for module in modules:
        for parameter in module.parameters():
            parameter.grad = None


# -- reweighted wake-sleep ------------------------------------------------------------------
def test_rws_equals_pyros_at_batch_size_one():
    """The loss module's value and gradients (model: wake-theta, guide: wake-phi) are those
    that Pyro's ``ReweightedWakeSleep.loss_and_grads`` computes on the same draws."""
    model, guide = tiny_sbn()
    x = X[:1]

    def grads():
        return [p.grad.clone() for p in [*model.parameters(), *guide.parameters()]]

    ours = build_objective("rws", model, guide, particles=7)
    ours.max_plate_nesting = 1
    zero_grads(model, guide)
    pyro.set_rng_seed(3)
    loss = ours(x)
    loss.backward()
    ours, our_grads = loss.item(), grads()
    zero_grads(model, guide)
    pyro.set_rng_seed(3)
    pyros = ReweightedWakeSleep(num_particles=7, insomnia=1.0, max_plate_nesting=1)
    pyros = pyros.loss_and_grads(model, guide, x)[0]
    pyro_grads = grads()
    assert ours == pytest.approx(pyros, rel=1e-6)
    for a, b in zip(our_grads, pyro_grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_rws_weights_per_data_point_unlike_pyros_joint_weights():
    """On a batch, our bound approaches each example's log p(x); Pyro's joint one stays loose."""
    model, guide = tiny_sbn()
    x = X.repeat(10, 1)  # 40 examples
    exact = exact_log_evidence(model, x).sum().item()
    pyro.set_rng_seed(0)
    ours = -build_objective("rws", model, guide, particles=200).value(x)
    pyro.set_rng_seed(0)
    pyros = -ReweightedWakeSleep(num_particles=200, max_plate_nesting=1).loss(model, guide, x)[0]
    assert ours <= exact + 0.05                     # a lower bound (up to MC noise)
    assert exact - ours < 0.1 * len(x)              # tight: K = 200 for each example
    assert exact - float(pyros) > 5 * (exact - ours), (exact, ours, pyros)  # joint: degenerate


def test_wake_phi_gradient_is_the_kl_gradient():
    """``sum_k w~_k grad log q`` estimates ``-grad KL(p(h|x) || q(h|x))``, checked by enumeration."""
    model, guide = tiny_sbn()
    x = X[:2]
    log_posterior = (exact_log_joint(model, x) - exact_log_evidence(model, x)).detach()
    zero_grads(guide)
    (-(log_posterior.exp() * exact_log_q(guide, x)).sum()).backward()
    exact = guide_grads(guide)

    zero_grads(model, guide)
    pyro.set_rng_seed(1)
    build_objective("rws", model, guide, particles=20000)(x).backward()
    assert torch.allclose(guide_grads(guide), exact, atol=0.03 * exact.abs().max())


def test_sleep_phase_fits_the_guide_to_dreams():
    """The wake-sleep guide loss is ``-E_p(x,h) log q(h|x)``: compare with enumeration over x, h."""
    model, guide = tiny_sbn()
    pixels = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))  # all 8 images
    log_joint = exact_log_joint(model, pixels)                          # (4 h, 8 x)
    exact = -(log_joint.exp() * exact_log_q(guide, pixels)).sum().item()
    loss = build_objective("wake-sleep", model, guide)
    loss.max_plate_nesting = 1
    pyro.set_rng_seed(0)
    n = 20000
    with torch.no_grad():
        estimate = loss.sleep(torch.zeros(n, 3)).item() / n
    assert estimate == pytest.approx(exact, abs=0.03)


def test_prior_is_estimates_the_evidence_and_only_sleep_moves_the_guide():
    model, guide = tiny_sbn()
    x = X
    exact = exact_log_evidence(model, x).sum().item()
    loss = build_objective("prior-is", model, guide, particles=5000)
    pyro.set_rng_seed(0)
    assert -loss.value(x) == pytest.approx(exact, abs=0.05)
    log_weights, log_q = loss.wake(x)
    assert log_q is None and log_weights.shape == (5000, 4)


def test_rws_options_are_checked():
    with pytest.raises(PyroDGMError, match="particles"):
        build_objective("rws", None, None, particles=0)
    with pytest.raises(PyroDGMError, match="insomnia"):
        build_objective("rws", None, None, insomnia=1.5)
    with pytest.raises(PyroDGMError, match="sleep-phi"):
        from pyro_dgm.infer.wake_sleep import PerDatapointRWS
        PerDatapointRWS(None, None, 5, insomnia=0.5, proposal="prior")


# -- NVIL --------------------------------------------------------------------------------------
def exact_elbo_gradient(model, guide, x):
    zero_grads(guide)
    log_q = exact_log_q(guide, x)
    elbo = (log_q.exp() * (exact_log_joint(model, x).detach() - log_q)).sum()
    (-elbo).backward()
    return guide_grads(guide)


@pytest.mark.parametrize("objective", ["nvil", "tracegraph"])
def test_score_function_objectives_are_unbiased(objective):
    """Averaged over many examples of one image, the guide gradient matches the exact ELBO's."""
    model, guide = tiny_sbn()
    x = X[:1]
    exact = exact_elbo_gradient(model, guide, x)
    loss = build_objective(objective, model, guide)
    n = 40000
    zero_grads(model, guide)
    pyro.set_rng_seed(2)
    loss(x.expand(n, 3)).backward()
    assert torch.allclose(guide_grads(guide) / n, exact, atol=0.08 * exact.abs().max())


def test_nvil_learns_one_baseline_per_discrete_site():
    train = load_dataset("bars", "train", binarize="static", n_train=200)
    model, guide = SigmoidBeliefNet(16, [8, 4]), SBNRecognition(16, [8, 4])
    trainer = Trainer(model, guide, "nvil", lr=1e-2, batch_size=50, progress=False)
    trainer.fit(train, 2)
    baselines = trainer.loss.baselines
    assert sorted(baselines) == ["h1", "h2"]
    trained = {id(p) for p in trainer.optimizer.param_groups[0]["params"]}
    assert all(id(p) in trained for p in baselines.parameters()), "the optimizer trains them"
    assert all(name.startswith("baselines.") for name in trainer.loss.own_state_dict())
    before = [p.detach().clone() for p in baselines.parameters()]
    trainer.fit(train, 3)
    assert any(not torch.equal(b, p) for b, p in zip(before, baselines.parameters()))


def test_nvil_baselines_resume_from_the_checkpoint(tmp_path):
    """Interrupted after 2 epochs and resumed to 3, the baselines equal an uninterrupted run's."""
    train = load_dataset("bars", "train", binarize="static", n_train=200)
    checkpoint = tmp_path / "nvil.pt"

    def trainer(**kwargs):
        torch.manual_seed(0)
        model, guide = SigmoidBeliefNet(16, [6]), SBNRecognition(16, [6])
        return Trainer(model, guide, "nvil", lr=1e-2, batch_size=50, progress=False, **kwargs)

    uninterrupted = trainer()
    uninterrupted.fit(train, 3)
    trainer(checkpoint=checkpoint).fit(train, 2)
    saved = torch.load(checkpoint, weights_only=False)["objective"]
    assert sorted(saved) and all(name.startswith("baselines.h1") for name in saved)
    resumed = trainer(checkpoint=checkpoint)
    resumed.fit(train, 3, resume=True)
    for name, value in resumed.loss.own_state_dict().items():
        assert torch.allclose(value, uninterrupted.loss.own_state_dict()[name], atol=1e-6)
        assert not torch.equal(value, saved[name])


# -- the model and its training --------------------------------------------------------------
def test_iwae_refuses_the_discrete_guide():
    train = load_dataset("bars", "train", n_train=100)
    model, guide = SigmoidBeliefNet(16, [4]), SBNRecognition(16, [4])
    trainer = Trainer(model, guide, "iwae", progress=False)
    with pytest.raises(PyroDGMError, match="zero"):
        trainer.fit(train, 1)


def test_sbn_log_joint_matches_the_formula():
    model, guide = tiny_sbn()
    x = X
    trace = pyro.poutine.trace(guide).get_trace(x)
    model_trace = pyro.poutine.trace(pyro.poutine.replay(model, trace=trace)).get_trace(x)
    h = trace.nodes["h1"]["value"]
    top = torch.sigmoid(model.top_logits)
    pixels = torch.sigmoid(model.decoders[0](h))
    by_hand = ((h * top.log() + (1 - h) * (1 - top).log()).sum()
               + (x * pixels.log() + (1 - x) * (1 - pixels).log()).sum())
    assert model_trace.log_prob_sum().item() == pytest.approx(by_hand.item(), rel=1e-5)


@pytest.mark.parametrize("objective", ["rws", "wake-sleep", "prior-is"])
def test_trained_sbn_beats_independent_pixels(objective):
    train = load_dataset("bars", "train", binarize="static")
    test = load_dataset("bars", "test", binarize="static", n_test=300)
    model, guide = SigmoidBeliefNet(16, [10]), SBNRecognition(16, [10])
    trainer = Trainer(model, guide, objective, lr=1e-2, batch_size=100, progress=False)
    trainer.fit(train, 8)
    nll = evaluate(model, guide, test, train, iwae_samples=100, knn=False)["nll"]["value"]
    p = train.x.mean(0).clamp(1e-3, 1 - 1e-3)
    independent = -(test.x * p.log() + (1 - test.x) * (1 - p).log()).sum(1).mean().item()
    assert nll < independent - 0.5, (nll, independent)


def test_sbn_samples_are_pixel_probabilities():
    model = SigmoidBeliefNet(16, [5, 3])
    images = model.sample(7)
    assert images.shape == (7, 16) and images.min() >= 0 and images.max() <= 1


def test_sbn_rejects_bad_layers():
    with pytest.raises(ValueError, match="layers"):
        SigmoidBeliefNet(16, [])
    assert math.isfinite(Trace_ELBO().loss(*tiny_sbn(), X))
