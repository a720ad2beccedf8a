"""Amortized flows (pyro_dgm.distributions.flows) and the flow guide (pyro_dgm.guides.flow).

Every log-determinant is checked against the autograd Jacobian's slogdet; inverses against
the forward map; the guide's log-density against an independent change of variables; and the
IWAE bound with a flow guide against the exact log-likelihood of a linear-Gaussian model.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine

from pyro_dgm.distributions.flows import (FLOWS, ConditionalSylvester, bjorck_orthogonalize,
                                          conditional_flow, has_inverse, householder_product,
                                          volume_preserving)
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.flow import FlowGuide
from pyro_dgm.guides.gaussian import GaussianEncoder
from pyro_dgm.infer.estimators import log_likelihood_bounds

D, C, N = 3, 5, 4


def _conditioned(name: str, length: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    steps = [step.double() for step in conditional_flow(name, D, C, length)]
    context = torch.randn(N, C, dtype=torch.float64)
    return [step.condition(context) for step in steps]


def _per_example_jacobians(f, x: torch.Tensor) -> torch.Tensor:
    """``(N, D, D)`` Jacobians of a map applied row-wise to ``x`` (``N, D``)."""
    full = jacobian(f, x)                                    # (N, D, N, D)
    return torch.stack([full[i, :, i, :] for i in range(x.shape[0])])


@pytest.mark.parametrize("name", FLOWS)
def test_log_det_matches_autograd_jacobian(name):
    for transform in _conditioned(name):
        x = torch.randn(N, D, dtype=torch.float64)
        y = transform(x)
        expected = torch.linalg.slogdet(_per_example_jacobians(transform._call, x)).logabsdet
        assert torch.allclose(transform.log_abs_det_jacobian(x, y), expected, atol=1e-8)


@pytest.mark.parametrize("name", FLOWS)
def test_log_det_broadcasts_over_particles(name):
    """Particles ``(k, N, D)`` with parameters of batch ``(N,)``: one log-det per particle."""
    transforms = _conditioned(name)
    x = torch.randn(7, N, D, dtype=torch.float64)
    for transform in transforms:
        y = transform(x)
        log_det = transform.log_abs_det_jacobian(x, y)
        assert log_det.shape == (7, N)
        single = transform._call(x[2])
        assert torch.allclose(y[2], single)
        x = y


def test_householder_is_volume_preserving_exactly():
    assert volume_preserving("householder")
    for transform in _conditioned("householder", length=3):
        x = torch.randn(N, D, dtype=torch.float64)
        log_det = transform.log_abs_det_jacobian(x, transform(x))
        assert torch.equal(log_det, torch.zeros(N, dtype=torch.float64))
        # and the map is orthogonal: it preserves lengths
        assert torch.allclose(transform(x).norm(dim=-1), x.norm(dim=-1))


@pytest.mark.parametrize("name", [name for name in FLOWS if has_inverse(name)])
def test_inverse_of_arbitrary_values(name):
    for transform in _conditioned(name):
        x = torch.randn(N, D, dtype=torch.float64)
        y = transform(x).clone()            # a new tensor: no cache hit, a real inverse
        assert torch.allclose(transform.inv(y), x, atol=1e-8)


@pytest.mark.parametrize("name", [name for name in FLOWS if not has_inverse(name)])
def test_non_invertible_flows_invert_only_their_cached_samples(name):
    transform = _conditioned(name)[0]
    x = torch.randn(N, D, dtype=torch.float64)
    y = transform(x)
    assert transform.inv(y) is x
    with pytest.raises((NotImplementedError, KeyError)):
        transform.inv(y.clone())


@pytest.mark.parametrize("variant", ["orthogonal", "householder", "triangular"])
def test_sylvester_q_is_orthogonal(variant):
    torch.manual_seed(1)
    step = ConditionalSylvester(6, C, variant, reverse=True).double()
    params = step.head(torch.randn(N, C, dtype=torch.float64))
    q = step.q_matrix(params)
    eye = torch.eye(6, dtype=torch.float64)
    assert torch.allclose(q.transpose(-1, -2) @ q, eye.expand_as(q @ q.transpose(-1, -2)),
                          atol=1e-5)


def test_orthogonalization_helpers():
    torch.manual_seed(2)
    a = torch.randn(5, 8, 4, dtype=torch.float64)
    q = bjorck_orthogonalize(a)
    assert torch.allclose(q.transpose(-1, -2) @ q, torch.eye(4, dtype=torch.float64), atol=1e-5)
    h = householder_product(torch.randn(5, 3, 8, dtype=torch.float64))
    assert torch.allclose(h @ h.transpose(-1, -2), torch.eye(8, dtype=torch.float64), atol=1e-10)


def _flow_guide(name: str, x_dim: int = 6, z_dim: int = D, seed: int = 0) -> FlowGuide:
    torch.manual_seed(seed)
    return FlowGuide(GaussianEncoder(x_dim, z_dim, 8), name, 2)


@pytest.mark.parametrize("name", FLOWS)
def test_flow_guide_log_q_is_base_density_minus_log_dets(name):
    """log q(z_T | x) from the trace equals log N(z_0) - log|det d z_T / d z_0| (autograd)."""
    guide = _flow_guide(name).double()
    x = torch.rand(N, 6, dtype=torch.float64)
    trace = poutine.trace(guide).get_trace(x)
    site = trace.nodes["z"]
    z_T, log_q = site["value"], site["fn"].log_prob(site["value"])
    z_0 = site["fn"].transforms[0]._cached_x_y[0]
    with torch.no_grad():
        fresh = guide.conditioned_transforms(x)

    def flow(z):
        for transform in fresh:
            z = transform._call(z)
        return z

    assert torch.allclose(flow(z_0), z_T, atol=1e-10)
    log_det = torch.linalg.slogdet(_per_example_jacobians(flow, z_0)).logabsdet
    expected = guide.encoder.posterior(x).log_prob(z_0) - log_det
    assert torch.allclose(log_q, expected, atol=1e-8)


def _linear_gaussian(x_dim: int = 6, z_dim: int = 2, noise: float = 0.5, seed: int = 3):
    """``z ~ N(0, I)``, ``x = W z + b + noise * eps``: ``p(x) = N(b, W W^T + noise^2 I)``."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(x_dim, z_dim, generator=generator)
    bias = torch.randn(x_dim, generator=generator)

    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([z_dim]).to_event(1))
            pyro.sample("x", dist.Normal(z @ weight.T + bias, noise).to_event(1), obs=x)

    marginal = dist.MultivariateNormal(bias, weight @ weight.T + noise ** 2 * torch.eye(x_dim))
    return model, marginal


@pytest.mark.parametrize("name", FLOWS)
def test_iwae_bound_with_flow_guide_is_below_log_likelihood(name):
    model, marginal = _linear_gaussian()
    torch.manual_seed(4)
    x = marginal.sample([200])
    guide = _flow_guide(name, z_dim=2)
    pyro.set_rng_seed(5)
    elbo, iwae = log_likelihood_bounds(model, guide, x, num_samples=50)
    log_p = marginal.log_prob(x).mean()
    assert elbo.mean() <= iwae.mean() + 1e-4
    assert iwae.mean() <= log_p + 0.05
    assert iwae.mean() > log_p - 30.0  # a real bound, not a broken density


def test_bad_flow_name_is_one_sentence():
    with pytest.raises(PyroDGMError, match="valid flows are planar, iaf, householder"):
        _flow_guide("radial")
    from pyro_dgm.zoo import get_entry
    entry = get_entry("vae-flow")
    with pytest.raises(PyroDGMError, match="unknown flow 'nope'"):
        entry.build(entry.hyper({"flow": "nope"}),
                    type("Data", (), {"dim": 6, "likelihood": "bernoulli"})())


def test_cli_trains_and_evaluates_a_flow_guide(tmp_path):
    from pyro_dgm.cli import main
    out = tmp_path / "run"
    assert main(["train", "vae-flow", "--dataset", "bars", "--epochs", "2", "--quiet",
                 "--set", "flow=sylvester-h", "--set", "flow_length=2", "--set", "z_dim=2",
                 "--set", "hidden=16", "--eval-samples", "10", "--out", str(out)]) == 0
    assert main(["evaluate", str(out), "--iwae-samples", "20"]) == 0
    import json
    metrics = json.loads((out / "eval.json").read_text())
    assert math.isfinite(metrics["nll"]["value"])
    assert metrics["nll"]["value"] <= -metrics["test_elbo"] + 1e-4
