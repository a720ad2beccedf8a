"""Tests of the ``count-enum`` objective: AIR's ELBO with the number of objects summed out."""

import pytest
import torch

import pyro
import pyro.poutine as poutine

from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.air import AIRGuide
from pyro_dgm.infer import Trainer
from pyro_dgm.infer.count_enum import CountEnum_ELBO
from pyro_dgm.models.air import AIR
from test_air import SMALL, fresh_param_store  # noqa: F401  (the sizes; the autouse fixture)


def sampled_elbos(model, guide, x):
    """One ordinary single-sample ELBO estimate per example (presence sampled, not summed)."""
    guide_trace = poutine.trace(guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
    guide_trace.compute_log_prob()
    model_trace.compute_log_prob()
    log_p = sum(site["log_prob"] for site in model_trace.nodes.values() if site["type"] == "sample")
    log_q = sum(site["log_prob"] for site in guide_trace.nodes.values() if site["type"] == "sample")
    counts = sum(guide_trace.nodes[f"z_pres_{t}"]["value"] for t in range(SMALL["steps"]))
    return log_p - log_q, counts


def small_air(pres_prior=0.5):
    torch.manual_seed(0)
    return AIR(**SMALL, pres_prior=pres_prior), AIRGuide(**SMALL, rnn_hidden=16, embed=32)


def test_summed_count_elbo_equals_the_sampled_elbo_in_expectation():
    """Both are unbiased estimates of the same ELBO of one image: their means over 8000 copies
    must agree within 4 standard errors, and the summed one must have the smaller spread."""
    model, guide = small_air()
    x = (torch.rand(1, 400) * 0.6).expand(8000, 400)
    with torch.no_grad():
        summed = CountEnum_ELBO(model, guide).elbo_per_example(x)
        sampled, counts = sampled_elbos(model, guide, x)
    assert len(counts.unique()) == SMALL["steps"] + 1  # every count was drawn: a real check
    standard_error = (summed.var() / len(summed) + sampled.var() / len(sampled)).sqrt()
    assert (summed.mean() - sampled.mean()).abs() < 4 * standard_error
    assert summed.std() < sampled.std()


def test_presence_gradient_matches_the_score_function_estimate():
    """The summed objective's gradient for the presence head equals, in expectation, the
    score-function + pathwise gradient of the sampled ELBO (no baseline: unbiased, noisy)."""
    model, guide = small_air()
    x = (torch.rand(1, 400) * 0.6).expand(4000, 400)
    bias = guide.predict[-1].bias  # its entry 0 is the presence logit's bias

    def presence_gradient(surrogate):
        bias.grad = None
        surrogate.backward()
        return bias.grad[0].item()

    summed = presence_gradient(-CountEnum_ELBO(model, guide).elbo_per_example(x).mean())
    estimates = []
    for _ in range(10):
        guide_trace = poutine.trace(guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(x)
        guide_trace.compute_log_prob()
        model_trace.compute_log_prob()
        elbo = (sum(s["log_prob"] for s in model_trace.nodes.values() if s["type"] == "sample")
                - sum(s["log_prob"] for s in guide_trace.nodes.values() if s["type"] == "sample"))
        log_q_pres = sum(guide_trace.nodes[f"z_pres_{t}"]["log_prob"] for t in range(3))
        estimates.append(presence_gradient(-(elbo + log_q_pres * elbo.detach()).mean()))
    estimates = torch.tensor(estimates)
    standard_error = estimates.std() / len(estimates) ** 0.5
    assert abs(summed - estimates.mean().item()) < 4 * standard_error + 1e-3
    assert abs(summed) > 1e-3  # the presence head does get a gradient


def test_count_enum_trains_air_and_refuses_programs_without_presence_sites():
    model, guide = small_air(pres_prior=0.1)
    trainer = Trainer(model, guide, "count-enum", lr=3e-3, batch_size=16, seed=0, progress=False)
    x = torch.rand(16, 400) * 0.3
    losses = [trainer.step(x) for _ in range(30)]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]

    def no_presence(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", pyro.distributions.Normal(0.0, 1.0))

    with pytest.raises(PyroDGMError, match="z_pres_0"):
        CountEnum_ELBO(no_presence, no_presence).value(torch.zeros(3, 2))
