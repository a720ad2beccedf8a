"""Fault injection: a run survives a crash in the middle of a checkpoint write, a full disk,
and SIGINT or SIGKILL at random points of an epoch; ``--resume`` then ends where an
uninterrupted run with the same seed ends (same history, same parameters).

The interrupted runs are separate processes (a real SIGKILL cannot be survived in-process); a
small driver makes the process signal itself at a chosen optimizer step, so that the "random"
points are drawn once from a seeded generator and every run of the suite tests the same ones.
"""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyro_dgm.cli import main
from pyro_dgm.infer.trainer import load_checkpoint

STEPS_PER_EPOCH = 20  # 1,000 bars in batches of 50
EPOCHS = 3
TRAIN = ["train", "vae", "--dataset", "bars", "--epochs", str(EPOCHS), "--batch-size", "50",
         "--set", "n_train=1000", "--set", "n_test=200", "--set", "hidden=32", "--set", "z_dim=4",
         "--seed", "3", "--threads", "1", "--quiet", "--eval-samples", "5"]

# steps strictly inside epochs 2 and 3 (not at an epoch's first or last step)
_points = random.Random(18).sample([e * STEPS_PER_EPOCH + i for e in (1, 2)
                                    for i in range(1, STEPS_PER_EPOCH - 1)], 2)

DRIVER = r"""
import os, signal, sys
import torch
from pyro_dgm.cli import main
from pyro_dgm.infer.trainer import Trainer

when, signame, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
# a Ctrl-C as at a terminal, even when the suite runs where SIGINT is ignored (nohup, `cmd &`)
signal.signal(signal.SIGINT, signal.default_int_handler)
kill = lambda: os.kill(os.getpid(), getattr(signal, signame))
if when.startswith("step="):  # signal just before optimizer step number `when`
    at, step = int(when[5:]), Trainer.step
    def step_then_signal(self, batch):
        if self.steps == at:
            kill()
        return step(self, batch)
    Trainer.step = step_then_signal
else:  # "save=N": die half-way through writing the N-th checkpoint
    at, calls, save = int(when[5:]), [0], torch.save
    def half_a_save(state, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            f.write(b"half a checkpoint")
            f.flush()
            kill()
        return save(state, f, *args, **kwargs)
    torch.save = half_a_save
sys.exit(main(argv))
"""


def run_interrupted(when: str, signame: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", DRIVER, when, signame, *TRAIN, "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main(TRAIN + ["--out", str(out)]) == 0
    return out


def assert_same_run(run: Path, reference: Path) -> None:
    """Same epochs and losses in metrics.json, same parameters in the checkpoint."""
    history = json.loads((run / "metrics.json").read_text())["history"]
    expected = json.loads((reference / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    assert [h["loss"] for h in history] == pytest.approx([h["loss"] for h in expected], rel=1e-6)
    modules = load_checkpoint(run / "checkpoint.pt")["modules"]
    reference_modules = load_checkpoint(reference / "checkpoint.pt")["modules"]
    for program in ("model", "guide"):
        for name, value in reference_modules[program].items():
            torch.testing.assert_close(modules[program][name], value, rtol=1e-6, atol=1e-7)


def resume(out: Path) -> None:
    assert main(TRAIN + ["--out", str(out), "--resume"]) == 0
    assert not list(out.glob("*.tmp")), "a half-written file outlived the resume"


@pytest.mark.parametrize("signame, step", [("SIGINT", _points[0]), ("SIGKILL", _points[1])])
def test_a_signal_mid_epoch_then_resume_ends_like_an_uninterrupted_run(
        tmp_path, uninterrupted, signame, step):
    out = tmp_path / "run"
    result = run_interrupted(f"step={step}", signame, out)
    finished_epochs = step // STEPS_PER_EPOCH
    if signame == "SIGINT":
        assert result.returncode == 130, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(
            f"interrupted; the checkpoint of epoch {finished_epochs} is kept")
    else:
        assert result.returncode == -9, result.stderr
    assert len(load_checkpoint(out / "checkpoint.pt")["history"]) == finished_epochs
    assert not (out / "metrics.json").exists()
    resume(out)
    assert_same_run(out, uninterrupted)


def test_a_crash_in_the_middle_of_a_checkpoint_write_keeps_the_previous_one(
        tmp_path, uninterrupted):
    out = tmp_path / "run"
    result = run_interrupted("save=2", "SIGKILL", out)  # the end-of-epoch-2 write
    assert result.returncode == -9, result.stderr
    assert list(out.glob("checkpoint.pt*.tmp")), "the driver did not die inside the write"
    assert len(load_checkpoint(out / "checkpoint.pt")["history"]) == 1
    resume(out)
    assert_same_run(out, uninterrupted)


def test_a_full_disk_stops_the_run_in_one_sentence_and_keeps_the_last_checkpoint(
        tmp_path, uninterrupted, monkeypatch, capsys):
    out = tmp_path / "run"
    calls, save = [0], torch.save

    def disk_full_on_the_second_save(state, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(state, f, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", disk_full_on_the_second_save)
        assert main(TRAIN + ["--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"error: could not write {out / 'checkpoint.pt'} "
                     f"({os.strerror(errno.ENOSPC)}); the previous one is kept")
    assert len(load_checkpoint(out / "checkpoint.pt")["history"]) == 1
    assert not list(out.glob("*.tmp"))
    resume(out)
    assert_same_run(out, uninterrupted)


def test_a_full_disk_when_writing_the_metrics_is_one_sentence(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    write_text = Path.write_text

    def disk_full_for_metrics(self, data, *args, **kwargs):
        if self.name.startswith("metrics.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_for_metrics)
    assert main(TRAIN + ["--epochs", "1", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"error: could not write {out / 'metrics.json'} ({os.strerror(errno.ENOSPC)})"
    assert not list(out.glob("*.tmp"))
    assert len(load_checkpoint(out / "checkpoint.pt")["history"]) == 1
