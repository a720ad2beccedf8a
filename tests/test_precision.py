"""``--precision bf16``: the forward pass under ``torch.autocast`` to bfloat16 (here on the CPU;
the CUDA path is the same call with ``device_type="cuda"`` and is not tested without a GPU)."""

from __future__ import annotations

import json

import pytest
import torch

import pyro

from pyro_dgm.cli import main
from pyro_dgm.data import load_dataset
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import make_config
from pyro_dgm.infer import OBJECTIVES, Trainer
from pyro_dgm.zoo import get_entry

TINY = {"z_dim": 2, "hidden": 8}


def first_losses(precision: str, steps: int = 3):
    """The per-example losses of the first ``steps`` steps of a small VAE from one seed, and
    the trainer after them."""
    data = load_dataset("bars", "train", n_train=60)
    entry = get_entry("vae")
    pyro.set_rng_seed(0)
    model, guide = entry.build(entry.hyper(TINY), data)
    trainer = Trainer(model, guide, "elbo", lr=0.01, batch_size=20, seed=0, progress=False,
                      precision=precision)
    batches = data.batches(20, generator=torch.Generator().manual_seed(0))
    return [trainer.step(batch) for batch, _ in zip(batches, range(steps))], trainer


def test_a_bf16_step_runs_close_to_fp32_with_fp32_parameters():
    fp32, _ = first_losses("fp32")
    bf16, trainer = first_losses("bf16")
    assert bf16 != fp32  # autocast did round something
    # the first step from the same parameters and noise: bfloat16 rounding only (measured 0.03 %)
    assert abs(bf16[0] - fp32[0]) < 0.005 * abs(fp32[0])
    # then the trajectories part a little (measured under 1 % after 3 steps)
    torch.testing.assert_close(torch.tensor(bf16), torch.tensor(fp32), rtol=0.03, atol=0.0)
    assert all(p.dtype == torch.float32 for p in trainer.loss.parameters())
    moments = [v for state in trainer.optimizer.state.values() for v in state.values()
               if isinstance(v, torch.Tensor) and v.is_floating_point()]
    assert moments and all(m.dtype == torch.float32 for m in moments)


def gan_losses(precision: str, steps: int = 8) -> list[float]:
    """The discriminator's loss per example over the first ``steps`` steps of a toy GAN with
    the R1 penalty (a double backward under autocast), from one seed."""
    data = load_dataset("toy2d", "train", n_train=200)
    entry = get_entry("gan")
    pyro.set_rng_seed(0)
    model, guide = entry.build(entry.hyper({"z_dim": 2, "hidden": 32}), data)
    trainer = Trainer(model, guide, "adversarial", lr=1e-3, batch_size=25, seed=0,
                      progress=False, precision=precision,
                      objective_options={"gradient_penalty": 1.0, "disc_hidden": 32})
    batches = data.batches(25, generator=torch.Generator().manual_seed(0))
    return [trainer.step(batch) for batch, _ in zip(batches, range(steps))]


def test_the_adversarial_objective_trains_in_bf16_close_to_fp32():
    fp32, bf16 = gan_losses("fp32"), gan_losses("bf16")
    assert bf16 != fp32
    torch.testing.assert_close(torch.tensor(bf16), torch.tensor(fp32), rtol=0.0, atol=0.01)


def test_score_function_objectives_are_refused_in_bf16_by_name():
    refused = [name for name in OBJECTIVES if OBJECTIVES[name].bf16 is not True]
    assert {"tracegraph", "nvil", "tracegraph-steps", "pcd", "cd"} <= set(refused)
    data = load_dataset("bars", "train", n_train=20)
    entry = get_entry("vae")
    model, guide = entry.build(entry.hyper(TINY), data)
    with pytest.raises(PyroDGMError, match="objective 'tracegraph' cannot train in bfloat16 "
                                           r"\(--precision bf16\) because its score-function"):
        Trainer(model, guide, "tracegraph", progress=False, precision="bf16")
    with pytest.raises(PyroDGMError, match="objective 'nvil' cannot train in bfloat16"):
        make_config("sbn", objective="nvil", precision="bf16")


def test_bad_precisions_are_refused():
    with pytest.raises(PyroDGMError, match="unknown precision 'fp16'; expected one of fp32, bf16"):
        make_config("vae", precision="fp16")
    data = load_dataset("bars", "train", n_train=20)
    model, guide = get_entry("vae").build(get_entry("vae").hyper(TINY), data)
    with pytest.raises(PyroDGMError, match="--precision bf16 needs a registered objective name"):
        Trainer(model, guide, pyro.infer.Trace_ELBO(), progress=False, precision="bf16")


def test_train_takes_precision_and_resume_may_change_it(tmp_path):
    out = tmp_path / "run"
    common = ["--set", "z_dim=2", "--set", "hidden=8", "--eval-samples", "2", "--out", str(out),
              "--quiet", "--threads", "1"]
    assert main(["train", "vae", "--epochs", "1", "--precision", "bf16", *common]) == 0
    assert json.loads((out / "config.json").read_text())["precision"] == "bf16"
    assert main(["train", "vae", "--epochs", "2", "--precision", "fp32", "--resume",
                 *common]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["precision"] == "fp32"
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
