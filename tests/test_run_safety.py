"""Runs that cannot be lost or silently wrong: bad values are refused before anything is
written, a run is never overwritten or resumed under other settings by accident, two processes
cannot train into one folder, and every failure is one ``error:`` line."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from pyro_dgm.cli import main
from pyro_dgm.experiment import Experiment, locked
from pyro_dgm.infer import Trainer
from pyro_dgm.zoo import ZOO

TINY = ["--set", "n_train=60", "--set", "n_test=20", "--set", "hidden=4", "--set", "z_dim=2",
        "--epochs", "1", "--quiet"]


def one_error_line(capsys, argv) -> str:
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out and "usage:" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good") / "run"
    assert main(["train", "vae", "--dataset", "bars", *TINY, "--out", str(folder)]) == 0
    return folder


@pytest.fixture
def run_copy(good_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(good_run, folder)
    return folder


BAD_VALUES = [["--batch-size", "0"], ["--lr", "0"], ["--lr", "nan"], ["--lr", "-1"],
              ["--epochs", "-1"], ["--set", "particles=0"], ["--seconds", "0"],
              ["--set", "particles=2.5"]]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda bad: " ".join(bad))
def test_a_bad_value_writes_nothing(capsys, tmp_path, bad):
    one_error_line(capsys, ["train", "vae", *TINY, *bad, "--out", str(tmp_path / "new")])
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("bad", BAD_VALUES[:5], ids=lambda bad: " ".join(bad))
def test_a_bad_value_leaves_a_good_run_as_it_was(capsys, run_copy, bad):
    before = (run_copy / "config.json").read_bytes()
    one_error_line(capsys, ["train", "vae", *TINY, *bad, "--out", str(run_copy), "--overwrite"])
    assert (run_copy / "config.json").read_bytes() == before
    # and the run still resumes
    assert main(["train", "vae", "--out", str(run_copy), "--resume", "--epochs", "2",
                 "--quiet"]) == 0


def test_an_existing_run_is_not_overwritten_without_a_word(capsys, run_copy):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}
    line = one_error_line(capsys, ["train", "vae", *TINY, "--out", str(run_copy)])
    assert "--resume" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()} == before


def test_overwrite_starts_the_run_anew(run_copy):
    assert main(["train", "vae", *TINY[:-3], "--epochs", "2", "--quiet", "--out", str(run_copy),
                 "--overwrite"]) == 0
    history = json.loads((run_copy / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]


def test_a_folder_in_use_is_refused(capsys, run_copy):
    with locked(run_copy):
        line = one_error_line(capsys, ["train", "vae", *TINY, "--out", str(run_copy),
                                       "--overwrite"])
    assert "another process" in line
    assert main(["train", "vae", *TINY, "--out", str(run_copy), "--overwrite"]) == 0


@pytest.mark.parametrize("flags, word", [
    (["sbvae"], "model"), (["vae", "--objective", "rws"], "objective"),
    (["vae", "--lr", "0.5"], "lr"), (["vae", "--set", "hidden=8"], "hidden"),
    (["vae", "--dataset", "mnist"], "dataset"), (["vae", "--set", "n_train=10"], "n_train"),
])
def test_resume_refuses_flags_that_contradict_the_run(capsys, run_copy, flags, word):
    line = one_error_line(capsys, ["train", *flags, "--out", str(run_copy), "--resume"])
    assert word in line and "--resume cannot change" in line


def test_resume_takes_new_epochs_and_device(run_copy):
    assert main(["train", "vae", "--out", str(run_copy), "--resume", "--epochs", "2",
                 "--device", "cpu", "--quiet"]) == 0
    assert json.loads((run_copy / "config.json").read_text())["epochs"] == 2


def test_outputs_that_cannot_be_written_are_one_sentence(capsys, tmp_path, good_run):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is a file" in one_error_line(capsys, ["train", "vae", *TINY, "--out", str(a_file)])
    line = one_error_line(capsys, ["train", "vae", *TINY, "--out", str(a_file / "run")])
    assert "lies under the file" in line
    line = one_error_line(capsys, ["sample", str(good_run), "--out", str(tmp_path / "x.xyz")])
    assert ".xyz" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_one_sentence(capsys, tmp_path):
    locked_dir = tmp_path / "ro"
    locked_dir.mkdir()
    locked_dir.chmod(0o500)
    try:
        line = one_error_line(capsys, ["train", "vae", *TINY, "--out", str(locked_dir / "r")])
    finally:
        locked_dir.chmod(0o700)
    assert "permission denied" in line


def test_a_config_missing_a_key_is_one_sentence(capsys, run_copy):
    config = json.loads((run_copy / "config.json").read_text())
    del config["hyper"]
    (run_copy / "config.json").write_text(json.dumps(config))
    assert "hyper" in one_error_line(capsys, ["evaluate", str(run_copy)])


@pytest.mark.parametrize("argv", [["train"], ["train", "vae", "--epochs", "x"], ["bogus"],
                                  ["evaluate"], ["train", "vae", "--device", "tpu"]])
def test_argparse_errors_are_one_line(capsys, argv):
    one_error_line(capsys, argv)


def test_sample_names_the_file_it_wrote(capsys, good_run, tmp_path):
    assert main(["sample", str(good_run), "-n", "4", "--out", str(tmp_path / "base")]) == 0
    assert (tmp_path / "base.png").is_file()
    assert str(tmp_path / "base.png") in capsys.readouterr().out


def test_interrupting_epoch_one_says_nothing_was_kept(capsys, tmp_path, monkeypatch):
    def interrupted(self, batch):
        raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "step", interrupted)
    assert main(["train", "vae", *TINY, "--out", str(tmp_path / "r")]) == 130
    assert "nothing was kept" in capsys.readouterr().err


def test_interrupting_a_later_epoch_names_the_kept_checkpoint(capsys, tmp_path, monkeypatch):
    step, calls = Trainer.step, []

    def interrupted_in_epoch_two(self, batch):
        calls.append(1)
        if len(calls) > 1:  # 60 examples, batch 100: one step per epoch
            raise KeyboardInterrupt
        return step(self, batch)
    monkeypatch.setattr(Trainer, "step", interrupted_in_epoch_two)
    argv = ["train", "vae", *TINY[:-3], "--epochs", "3", "--quiet", "--out", str(tmp_path / "r")]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "checkpoint of epoch 1" in err and "--resume" in err


def test_interrupting_evaluate_says_eval_json_was_not_written(capsys, run_copy, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(Experiment, "evaluate", interrupted)
    assert main(["evaluate", str(run_copy), "--iwae-samples", "2"]) == 130
    assert "eval.json was not written" in capsys.readouterr().err
    assert not (run_copy / "eval.json").exists()


def test_evaluate_shows_a_progress_bar_unless_quiet(capsys, run_copy):
    assert main(["evaluate", str(run_copy), "--iwae-samples", "3"]) == 0
    captured = capsys.readouterr()
    assert "IWAE-3" in captured.err and "example" in captured.err
    assert json.loads(captured.out)["nll"]["k"] == 3  # the bar stays off stdout's JSON
    assert main(["evaluate", str(run_copy), "--iwae-samples", "3", "--quiet"]) == 0
    assert "IWAE-3" not in capsys.readouterr().err


def test_threads_are_set_and_checked(capsys, good_run):
    assert main(["evaluate", str(good_run), "--iwae-samples", "2", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    capsys.readouterr()
    one_error_line(capsys, ["evaluate", str(good_run), "--threads", "0"])


def test_list_aligns_names_and_lists_hyper_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.split("objectives:")[0].splitlines()
    columns = {line.index(entry.description) for entry in ZOO.values() for line in lines
               if line.split() and line.split()[0] == entry.name}
    assert len(columns) == 1
    assert any("hyper-parameters:" in line and "z_dim=50" in line for line in lines)


COMPARE = ["compare", "vae", "--objectives", "elbo,iwae:particles=3", "--epochs", "1",
           "--set", "hidden=4", "--set", "z_dim=2", "--set", "n_train=60", "--set", "n_test=20",
           "--iwae-samples", "3", "--variance-samples", "2", "--quiet"]


def test_an_interrupted_comparison_keeps_its_finished_runs_and_resumes(capsys, tmp_path,
                                                                       monkeypatch):
    import pyro_dgm.compare as compare_module
    train, calls = compare_module._train_with_curve, []

    def interrupted_second_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train(*args, **kwargs)
    monkeypatch.setattr(compare_module, "_train_with_curve", interrupted_second_run)
    out = tmp_path / "cmp"
    assert main([*COMPARE, "--out", str(out)]) == 130
    assert "1 finished run" in capsys.readouterr().err
    first = json.loads((out / "compare.json").read_text())["runs"]
    assert [run["label"] for run in first] == ["elbo"]
    assert "--resume" in one_error_line(capsys, [*COMPARE, "--out", str(out)])
    assert main([*COMPARE, "--out", str(out), "--resume"]) == 0
    runs = json.loads((out / "compare.json").read_text())["runs"]
    assert [run["label"] for run in runs] == ["elbo", "iwae:particles=3"]
    assert runs[0] == first[0]
    assert len(calls) == 3  # the finished run was not trained again
    line = one_error_line(capsys, [*COMPARE[:-5], "--iwae-samples", "4", "--variance-samples",
                                   "2", "--quiet", "--out", str(out), "--resume"])
    assert "iwae_samples" in line


def test_an_exploding_loss_stops_the_run_keeping_the_last_good_checkpoint(capsys, tmp_path):
    out = tmp_path / "r"
    line = one_error_line(capsys, ["train", "vae", *TINY[:-3], "--epochs", "5", "--lr", "1e12",
                                   "--quiet", "--out", str(out)])
    assert "exploded" in line or "became nan" in line, line
    assert "lower learning rate" in line
    assert not (out / "metrics.json").exists()


def test_a_nan_loss_stops_the_run_after_the_last_good_epoch(capsys, tmp_path, monkeypatch):
    step, calls = Trainer.step, []

    def nan_in_epoch_two(self, batch):
        calls.append(1)
        return step(self, batch) if len(calls) == 1 else float("nan")
    monkeypatch.setattr(Trainer, "step", nan_in_epoch_two)
    out = tmp_path / "r"
    line = one_error_line(capsys, ["train", "vae", *TINY[:-3], "--epochs", "3", "--quiet",
                                   "--out", str(out)])
    assert "became nan in epoch 2" in line and "epoch 1) is kept" in line
    assert torch.load(out / "checkpoint.pt", weights_only=False)["history"][-1]["epoch"] == 1
