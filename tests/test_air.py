"""Tests of AIR (issue 6): the spatial transformer, the multi-MNIST canvases, the model's
presence logic, training under TraceGraph_ELBO with baselines, the count metrics and the CLI."""

import json

import pytest
import torch

import pyro
import pyro.poutine as poutine
from pyro.infer import SVI, TraceGraph_ELBO
from pyro.optim import Adam

from pyro_dgm.cli import main
from pyro_dgm.data import load_dataset
from pyro_dgm.data.multi_mnist import render_digit
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.air import AIRGuide, ScaledLinear
from pyro_dgm.infer import Trainer, counting
from pyro_dgm.infer.stepwise import StepwiseTraceGraph_ELBO, step_of
from pyro_dgm.models.air import AIR, presence_prior
from pyro_dgm.nn.spatial import box_from_where, read_glimpse, where_from_box, write_glimpse

SMALL = {"canvas": 20, "steps": 3, "glimpse": 10, "z_what_dim": 5, "hidden": 32}


@pytest.fixture(autouse=True)
def fresh_param_store():
    """Every test starts from an empty param store (PyroModules of equal names share entries)."""
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def blob(side: int, width: float = 0.35) -> torch.Tensor:
    """A smooth round glimpse (side, side) peaking at 1 in the middle."""
    u = torch.linspace(-1, 1, side)
    return torch.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / (2 * width ** 2))


# --------------------------------------------------------------------------- spatial transformer


def test_write_and_read_at_scale_one_shift_zero_are_the_identity():
    image = torch.rand(3, 12, 12)
    where = torch.tensor([1.0, 0.0, 0.0]).expand(3, 3)
    written = write_glimpse(image, where, 12)
    assert torch.allclose(written, image, atol=1e-5)
    assert torch.allclose(read_glimpse(written, where, 12), image, atol=1e-5)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.5, -0.25), (-0.6, 0.4)])
def test_a_written_glimpse_lands_in_its_box_and_reads_back(shift):
    canvas, scale = 40, 0.4
    where = torch.tensor([[scale, *shift]])
    glimpse = blob(16)
    written = write_glimpse(glimpse, where, canvas)[0]
    rows, cols = torch.meshgrid(torch.arange(canvas) + 0.5, torch.arange(canvas) + 0.5,
                                indexing="ij")
    centre_col = (written * cols).sum() / written.sum()
    centre_row = (written * rows).sum() / written.sum()
    left, top, width, height = box_from_where(where, canvas)[0].tolist()
    assert centre_col.item() == pytest.approx(left + width / 2, abs=0.05)
    assert centre_row.item() == pytest.approx(top + height / 2, abs=0.05)
    # nothing outside the box (one pixel of bilinear margin)
    outside = torch.ones(canvas, canvas, dtype=torch.bool)
    outside[max(int(top) - 1, 0):int(top + height) + 2, max(int(left) - 1, 0):int(left + width) + 2] = False
    assert written[outside].abs().max() == 0
    # the scale on the canvas is `scale`: the blob's ink grows with the area
    assert written.sum().item() == pytest.approx(glimpse.sum().item() * (scale * canvas / 16) ** 2,
                                                 rel=0.03)
    back = read_glimpse(written, where, 16)
    assert (back - glimpse).abs().max() < 0.05


def test_boxes_and_where_are_inverse():
    where = torch.tensor([[0.5, 0.1, -0.3], [0.3, -0.7, 0.7]])
    assert torch.allclose(where_from_box(box_from_where(where, 50), 50), where, atol=1e-6)


def test_inverse_transform_keeps_the_scale_away_from_zero():
    glimpse = blob(8).requires_grad_()
    where = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.2, 0.2]], requires_grad=True)
    written = write_glimpse(glimpse, where, 20)
    written.sum().backward()
    assert torch.isfinite(written).all() and torch.isfinite(where.grad).all()


def test_transformer_broadcasts_over_leading_dims():
    glimpse = torch.rand(4, 6, 6)
    where = torch.tensor([0.6, 0.1, 0.2]).expand(2, 4, 3)
    written = write_glimpse(glimpse, where, 15)
    assert written.shape == (2, 4, 15, 15)
    assert torch.allclose(written[0], write_glimpse(glimpse, where[1], 15))


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def canvases(shared_data_dir):
    options = {"n_train": 300, "n_test": 200, "max_digits": 3}
    train = load_dataset("multi-mnist", "train", data_dir=shared_data_dir, seed=3, **options)
    test = load_dataset("multi-mnist", "test", data_dir=shared_data_dir, seed=3, **options)
    return train, test, options


def test_canvases_follow_the_dataset_contract(canvases):
    train, test, _ = canvases
    assert train.x.shape == (300, 2500) and train.x.dtype == torch.float32
    assert train.image_shape == (50, 50) and train.likelihood == "gaussian"
    assert 0 <= train.x.min() and train.x.max() <= 1
    for data in canvases[:2]:
        assert data.y.min() == 0 and data.y.max() == 3
        assert set(data.y.bincount().tolist()) and all(c > 20 for c in data.y.bincount().tolist())
        present = torch.arange(3)[None, :] < data.y[:, None]
        assert ((data.info["digits"] >= 0) == present).all()
        assert (data.info["boxes"][~present] == 0).all()
    assert (train.x[train.y == 0] == 0).all() and (train.x[train.y > 0].sum(-1) > 0).all()


def test_ink_lies_inside_the_boxes(canvases):
    train = canvases[0]
    images = train.x.view(-1, 50, 50)
    for i in range(40):
        inside = torch.zeros(50, 50, dtype=torch.bool)
        for left, top, width, height in train.info["boxes"][i, :train.y[i]].long().tolist():
            assert 0 <= left and left + width <= 50 and 0 <= top and top + height <= 50
            assert 20 <= width <= 28 and width == height
            inside[top:top + height, left:left + width] = True
        assert images[i][~inside].abs().max() == 0


def test_canvases_are_deterministic_from_the_seed(canvases, shared_data_dir):
    train, _, options = canvases
    again = load_dataset("multi-mnist", "train", data_dir=shared_data_dir, seed=3, **options)
    other = load_dataset("multi-mnist", "train", data_dir=shared_data_dir, seed=4, **options)
    assert torch.equal(train.x, again.x) and torch.equal(train.y, again.y)
    assert not torch.equal(train.x, other.x)


def test_held_out_canvases_use_held_out_digits(canvases, shared_data_dir):
    train, test, _ = canvases
    mnist = {split: load_dataset("mnist", split, data_dir=shared_data_dir, protocol="offline")
             for split in ("train", "test")}

    def official(data, split):
        used = data.info["digit_indices"][data.info["digit_indices"] >= 0]
        return set(mnist[split].info["indices"][used].tolist())

    assert not official(train, "train") & official(test, "test")
    # the labels kept with the boxes are those of the digits used
    used = train.info["digit_indices"] >= 0
    assert torch.equal(mnist["train"].y[train.info["digit_indices"][used]], train.info["digits"][used])


@pytest.mark.parametrize("overlap", ["reject", "max"])
def test_canvases_are_their_recorded_digits_and_overlap_as_asked(overlap, shared_data_dir):
    data = load_dataset("multi-mnist", "train", data_dir=shared_data_dir, seed=5, n_train=150,
                        max_digits=2, overlap=overlap)
    mnist = load_dataset("mnist", "train", data_dir=shared_data_dir, protocol="offline")
    overlapping = 0
    for i in range(data.n):
        layers = torch.zeros(2, 50, 50)
        for slot in range(int(data.y[i])):
            left, top, side, _ = data.info["boxes"][i, slot].long().tolist()
            digit = mnist.x[data.info["digit_indices"][i, slot]].view(28, 28)
            layers[slot, top:top + side, left:left + side] = render_digit(digit, side)
        assert torch.equal(data.x[i].view(50, 50), layers.amax(0))
        overlapping += int((layers.sum(0) > 1).any())
    # AIR's data never has strokes on strokes; with "max" about half of the pairs do
    assert overlapping == 0 if overlap == "reject" else overlapping > 10


@pytest.mark.parametrize("options", [{"max_digits": 0}, {"min_size": 30}, {"canvas": 20},
                                     {"n_train": 0}, {"max_digits": 2.5}, {"binarize": "dynamic"},
                                     {"overlap": "sum"}])
def test_bad_canvas_options_raise_one_sentence(options, shared_data_dir):
    with pytest.raises(PyroDGMError):
        load_dataset("multi-mnist", "train", data_dir=shared_data_dir, **options)


def test_digits_that_cannot_avoid_each_other_raise_one_sentence(shared_data_dir):
    # two 28-pixel digits on a 28-pixel canvas always put strokes on strokes
    with pytest.raises(PyroDGMError, match="without overlapping strokes"):
        load_dataset("multi-mnist", "train", data_dir=shared_data_dir, n_train=20, canvas=28,
                     min_size=28, max_size=28, max_digits=2)


# --------------------------------------------------------------------------- the model's presence logic


def test_presence_stops_after_the_first_absence():
    model = AIR(**SMALL, pres_prior=0.9)
    x = torch.rand(4, 400)
    fixed = {"z_pres_0": torch.tensor([1.0, 1.0, 0.0, 1.0]), "z_pres_1": torch.tensor([0.0, 1.0, 0.0, 1.0])}
    trace = poutine.trace(poutine.condition(model, data=fixed)).get_trace(x)
    # z_pres_2 has probability 0 wherever a step before was absent, so it is 0 there
    probs_2 = trace.nodes["z_pres_2"]["fn"].probs
    assert torch.equal(probs_2 == 0, torch.tensor([True, False, True, False]))
    assert (trace.nodes["z_pres_2"]["value"][[0, 2]] == 0).all()
    # z_where / z_what of absent steps are masked out of the joint density
    for t, present in ((0, fixed["z_pres_0"]), (1, fixed["z_pres_1"])):
        for name in (f"z_where_{t}", f"z_what_{t}"):
            log_prob = trace.nodes[name]["fn"].log_prob(trace.nodes[name]["value"])
            assert torch.equal(log_prob == 0, present == 0)
    # drawn from the prior, presence sequences never restart after a 0
    samples = poutine.trace(model).get_trace(None, 500)
    pres = torch.stack([samples.nodes[f"z_pres_{t}"]["value"] for t in range(3)], -1)
    assert (pres[:, 1:] <= pres[:, :-1]).all() and (pres.sum(-1) == 3).any()


def test_count_prior_is_truncated_geometric():
    model = AIR(**SMALL, pres_prior=0.6)
    with torch.no_grad():
        trace = poutine.trace(model).get_trace(None, 5000)
    counts = sum(trace.nodes[f"z_pres_{t}"]["value"] for t in range(3)).long()
    frequencies = counts.bincount(minlength=4).double() / counts.numel()
    expected = presence_prior(3, 0.6)
    assert expected.sum().item() == pytest.approx(1.0)
    assert torch.allclose(frequencies, expected, atol=0.025)  # 3.5 standard errors


def test_guide_presence_also_stops_and_baselines_are_attached():
    guide = AIRGuide(**SMALL, rnn_hidden=16, baseline_hidden=8)
    trace = poutine.trace(guide).get_trace(torch.rand(64, 400))
    pres = torch.stack([trace.nodes[f"z_pres_{t}"]["value"] for t in range(3)], -1)
    assert (pres[:, 1:] <= pres[:, :-1]).all()
    for t in range(3):
        baseline = trace.nodes[f"z_pres_{t}"]["infer"]["baseline"]
        assert baseline["nn_baseline"] is guide.baselines[t]
        assert not baseline["nn_baseline_input"].requires_grad


def test_scaled_linear_moves_k_times_further_under_adam():
    torch.manual_seed(0)
    plain, scaled = torch.nn.Linear(3, 1), ScaledLinear(3, 1, k=100.0)
    with torch.no_grad():
        scaled.weight.copy_(plain.weight / 100.0)
        scaled.bias.copy_(plain.bias / 100.0)
    x = torch.randn(10, 3)
    assert torch.allclose(scaled(x), plain(x), atol=1e-6)  # the same function
    before = plain.weight.detach().clone()
    for layer in (plain, scaled):
        optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(x).sum().backward()
        optimizer.step()
    move_plain = plain.weight.detach() - before
    move_scaled = scaled.k * scaled.weight.detach() - before
    assert torch.allclose(move_plain.abs(), torch.full_like(before, 1e-3), rtol=1e-3)
    assert torch.allclose(move_scaled, 100.0 * move_plain, rtol=1e-3)


# --------------------------------------------------------------------------- training


def test_stepwise_tracegraph_gives_tracegraph_elbos_gradients():
    """The fast objective reads the dependency graph from the site names; TraceGraph_ELBO tracks
    it by provenance. On the same draws both must give the same loss and gradients."""
    torch.manual_seed(0)
    model = AIR(**SMALL, pres_prior=0.5)
    guide = AIRGuide(**SMALL, rnn_hidden=16, baseline_hidden=8, baseline_lr_scale=10.0)
    x = torch.rand(8, 400)

    def loss_and_grads(objective):
        pyro.set_rng_seed(1)
        for parameter in [*model.parameters(), *guide.parameters()]:
            parameter.grad = None
        with poutine.trace(param_only=True) as params:
            loss = objective.loss_and_grads(model, guide, x)
        return loss, {name: site["value"].unconstrained().grad.clone()
                      for name, site in params.trace.nodes.items()}

    reference_loss, reference = loss_and_grads(TraceGraph_ELBO())
    loss, grads = loss_and_grads(StepwiseTraceGraph_ELBO())
    assert loss == pytest.approx(reference_loss, rel=1e-6)
    assert set(grads) == set(reference) and any("baselines" in name for name in grads)
    for name in reference:
        assert torch.allclose(grads[name], reference[name], rtol=1e-5, atol=1e-7), name
    assert step_of("z_pres_12") == 12 and step_of("x") == float("inf")


def test_model_and_guide_train_on_a_tiny_set(canvases):
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    train = canvases[0]
    x = train.x[:16].view(-1, 1, 50, 50)
    x = torch.nn.functional.interpolate(x, size=(20, 20), mode="area").flatten(1)
    model = AIR(**SMALL)
    guide = AIRGuide(**SMALL, rnn_hidden=32, baseline_hidden=16, baseline_lr_scale=10.0)
    svi = SVI(model, guide, Adam({"lr": 3e-3}), StepwiseTraceGraph_ELBO())
    losses = [svi.step(x) / 16 for _ in range(80)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-20:]) / 20 < sum(losses[:10]) / 10 - 3.0
    names = set(pyro.get_param_store().keys())
    assert any("baselines" in name for name in names) and any("decoder" in name for name in names)


def test_programs_broadcast_over_particles_for_rws():
    model = AIR(**SMALL)
    guide = AIRGuide(**SMALL, rnn_hidden=16, baseline_hidden=8)
    trainer = Trainer(model, guide, "rws", lr=1e-3, batch_size=4, progress=False)
    loss = trainer.step(torch.rand(4, 400))
    assert torch.isfinite(torch.tensor(loss))


def test_baselines_get_gradients():
    pyro.clear_param_store()
    model, guide = AIR(**SMALL), AIRGuide(**SMALL, rnn_hidden=16, baseline_hidden=8)
    x = torch.rand(8, 400)
    with poutine.trace(param_only=True) as params:
        TraceGraph_ELBO().loss_and_grads(model, guide, x)
    baseline_grads = [site["value"].unconstrained().grad for name, site in params.trace.nodes.items()
                      if "baselines$$$0" in name]
    assert baseline_grads and all(g is not None and g.abs().sum() > 0 for g in baseline_grads)


# --------------------------------------------------------------------------- metrics and CLI


def test_confusion_matrix_and_accuracy_of_a_perfect_counter(canvases):
    _, test, _ = canvases

    class Oracle(torch.nn.Module):
        steps = 3

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(()))
            self.truth = {x.numpy().tobytes(): int(y) for x, y in zip(test.x, test.y)}

        def count(self, x):
            return torch.tensor([self.truth[row.numpy().tobytes()] for row in x])

    metrics = counting.count_metrics(Oracle(), test)
    assert metrics["count_accuracy"] == 1.0
    confusion = torch.tensor(metrics["confusion"])
    assert torch.equal(confusion.diag(), test.y.bincount(minlength=4))
    matrix = counting.confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 2, 1, 2]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_cli_trains_air_and_writes_count_metrics(tmp_path, shared_data_dir):
    folder = tmp_path / "air"
    status = main(["train", "air", "--dataset", "multi-mnist", "--epochs", "1", "--data-dir",
                   str(shared_data_dir), "--set", "n_train=64", "--set", "n_test=40",
                   "--set", "rnn_hidden=16", "--set", "hidden=16", "--set", "glimpse=8",
                   "--out", str(folder), "--quiet"])
    assert status == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0 <= metrics["count_accuracy"] <= 1 and len(metrics["confusion"]) == 4
    assert sum(map(sum, metrics["confusion"])) == 40
    for name in ("boxes.png", "reconstructions.png", "confusion.png", "samples.png"):
        assert (folder / name).read_bytes().startswith(b"\x89PNG")


def test_cli_refuses_air_on_other_data(tmp_path, capsys):
    assert main(["train", "air", "--dataset", "bars", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "multi-mnist" in capsys.readouterr().err


def test_compose_sums_takes_the_max_or_clips_the_written_glimpses():
    torch.manual_seed(0)
    model = AIR(**SMALL, decoder_bias=2.0)  # bright glimpses, so that overlaps exceed 1
    z_where = torch.tensor([0.6, 0.0, 0.0]) + 0.1 * torch.randn(4, 3, 3)
    z_what = 3 * torch.randn(4, 3, SMALL["z_what_dim"])
    layers = [model.render(torch.eye(3)[t].expand(4, 3), z_where, z_what) for t in range(3)]
    expected = {"sum": sum(layers), "max": torch.stack(layers).amax(0),
                "clip": sum(layers).clamp(max=1.0)}
    for compose, canvas in expected.items():
        model.compose = compose
        assert torch.allclose(model.render(torch.ones(4, 3), z_where, z_what), canvas, atol=1e-6)
    assert (expected["sum"] > 1).any()  # the glimpses do overlap: the three differ
    with pytest.raises(PyroDGMError, match="unknown compose"):
        AIR(**SMALL, compose="over")
