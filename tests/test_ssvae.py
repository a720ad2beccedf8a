"""Tests of the semi-supervised M2 / SB-M2: the enumerated bound, the objective, the data, training."""

import pytest
import torch

import pyro
from pyro.infer import TraceEnum_ELBO

from pyro_dgm.cli import main as cli
from pyro_dgm.data import load_dataset
from pyro_dgm.data.semi_supervised import balanced_labelled_mask, partly_labelled
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.guides.ssvae import M2Guide
from pyro_dgm.infer import Trainer, build_objective, log_likelihood_bounds
from pyro_dgm.zoo import get_entry
from pyro_dgm.zoo.ssvae import classification_error

X_DIM, CLASSES = 16, 4
LATENTS = ["gaussian", "stick-breaking"]


def make_pair(latent, seed=0):
    from pyro_dgm.models.ssvae import M2
    torch.manual_seed(seed)
    return (M2(X_DIM, CLASSES, 3, latent, alpha0=2.0, hidden=8),
            M2Guide(X_DIM, CLASSES, 3, latent, hidden=8))


def enumerated_loss(model, guide, *args, seed=0):
    pyro.set_rng_seed(seed)
    return TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide, *args)


# --------------------------------------------------------------------------- the bound


@pytest.mark.parametrize("latent", LATENTS)
def test_unlabelled_elbo_is_the_q_weighted_sum_of_labelled_elbos_plus_entropy(latent):
    """Kingma et al.'s ``U(x) = sum_y q(y|x) L(x, y) + H(q(y|x))``, with the same code draws."""
    model, guide = make_pair(latent)
    xs = torch.bernoulli(torch.full((3, X_DIM), 0.4), generator=torch.Generator().manual_seed(2))
    for x in xs.split(1):
        unlabelled = -enumerated_loss(model, guide, x, torch.tensor([-1]))
        labelled = torch.tensor([-enumerated_loss(model, guide, x, torch.tensor([c]))
                                 for c in range(CLASSES)])
        q = torch.softmax(guide.classifier(x), -1).squeeze(0).detach()
        expected = (q * labelled).sum() - (q * q.log()).sum()
        assert unlabelled == pytest.approx(expected.item(), rel=1e-5, abs=1e-4)


def test_labelled_elbo_does_not_depend_on_the_classifier_and_ss_elbo_adds_alpha_log_q():
    model, guide = make_pair("gaussian")
    x = torch.bernoulli(torch.full((5, X_DIM), 0.4), generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 3, -1, 2, -1])
    before = enumerated_loss(model, guide, x[[0, 1, 3]], y[[0, 1, 3]])
    with torch.no_grad():
        for p in guide.classifier.parameters():
            p.add_(1.0)
    assert enumerated_loss(model, guide, x[[0, 1, 3]], y[[0, 1, 3]]) == pytest.approx(before, rel=1e-6)

    alpha = 7.0
    objective = build_objective("ss-elbo", model, guide, alpha=alpha)
    objective.elbo.max_plate_nesting = 1  # as the Trainer sets it (guessing draws random numbers)
    pyro.set_rng_seed(0)
    ss = objective.value(x, y)
    known = y >= 0
    log_q = guide.classifier_log_prob(x[known], y[known]).sum().item()
    assert ss == pytest.approx(enumerated_loss(model, guide, x, y) - alpha * log_q, rel=1e-5)


@pytest.mark.parametrize("latent", LATENTS)
def test_importance_weights_bound_the_unlabelled_likelihood(latent):
    model, guide = make_pair(latent)
    x = torch.bernoulli(torch.full((4, X_DIM), 0.4), generator=torch.Generator().manual_seed(4))
    pyro.set_rng_seed(0)
    elbo, iwae = log_likelihood_bounds(model, guide, x, num_samples=300)
    assert torch.isfinite(iwae).all() and (elbo <= iwae + 1e-4).all()
    assert elbo.mean().item() == pytest.approx(-enumerated_loss(model, guide, x) / 4, abs=0.5)


# --------------------------------------------------------------------------- data


def test_partly_labelled_data_keeps_a_balanced_fixed_fraction_and_yields_tuples():
    data = load_dataset("bars", "train", n_train=400)
    mask = balanced_labelled_mask(data.y, 0.1, seed=5)
    assert torch.equal(mask, balanced_labelled_mask(data.y, 0.1, seed=5))
    assert torch.bincount(data.y[mask]).tolist() == [10, 10, 10, 10]
    partial = partly_labelled(data, 0.1, labelled_per_batch=4, seed=5)
    batches = list(partial.batches(100, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == 4 and all(x.shape == (104, 16) and y.shape == (104,) for x, y in batches)
    for x, y in batches:
        assert (y[-4:] >= 0).all()  # the labelled extras
        seen = y >= 0
        rows = (x[seen].unsqueeze(1) == data.x[mask].unsqueeze(0)).all(-1).any(1)
        assert rows.all()
    assert sum(int((y[:-4] >= 0).sum()) for _, y in batches) == 40  # each kept label once an epoch
    with pytest.raises(PyroDGMError, match="labelled_fraction"):
        balanced_labelled_mask(data.y, 1.5)


# --------------------------------------------------------------------------- training and CLI


@pytest.mark.parametrize("name", ["m2", "sb-m2"])
def test_short_training_on_bars_beats_chance(name):
    train = load_dataset("bars-ssl", "train", n_train=1000, labelled_fraction=0.05)
    test = load_dataset("bars", "test", n_test=500)
    entry = get_entry(name)
    key = "z_dim" if name == "m2" else "truncation"
    model, guide = entry.build(entry.hyper({key: 4, "hidden": 32}), train)
    Trainer(model, guide, "ss-elbo", lr=1e-2, batch_size=50, progress=False).fit(train, epochs=3)
    assert classification_error(guide.classify, test.x, test.y) < 0.4  # chance: 0.75


def test_cli_trains_m2_with_a_labelled_fraction_and_reports_test_error(tmp_path):
    out = tmp_path / "run"
    assert cli(["train", "m2", "--dataset", "bars-ssl", "--set", "labelled_fraction=0.2",
                "--set", "n_train=200", "--set", "hidden=16", "--set", "z_dim=2", "--epochs", "1",
                "--eval-samples", "5", "--out", str(out), "--quiet"]) == 0
    import json
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test_error"] <= 1 and metrics["data"]["n_labelled"] == 40
    assert (out / "samples_by_class.png").is_file()
    assert cli(["evaluate", str(out), "--iwae-samples", "5"]) == 0
    assert "test_error" in json.loads((out / "eval.json").read_text())
    assert cli(["train", "m2", "--dataset", "bars", "--out", str(tmp_path / "x")]) == 2


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("labels, message", [
    (torch.tensor([0, 1, 4]), "must lie in"),
    (torch.tensor([0, -2, 1]), "must lie in"),
    (torch.tensor([0, 1]), "shape"),
    (torch.tensor([0.0, 1.0, 2.0]), "integers"),
])
def test_bad_labels_raise_one_sentence(labels, message):
    model, guide = make_pair("gaussian")
    x = torch.zeros(3, X_DIM)
    for program in (model, guide):
        with pytest.raises(PyroDGMError, match=message):
            program(x, labels)
