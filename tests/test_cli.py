"""Tests of the command line, run in-process through ``pyro_dgm.cli.main``.

One small VAE run folder (and one SB-VAE folder) is trained once per module and shared by the
tests that read it; tests that change a folder work on a copy. Nothing is downloaded: the
torchvision MNIST class is replaced by one that fails as it would offline.
"""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyro_dgm.cli import main
from pyro_dgm.data import available_datasets
from pyro_dgm.infer import OBJECTIVES, Objective, load_checkpoint
from pyro_dgm.zoo import ZOO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ("samples.png", "reconstructions.png", "training_curve.png", "latent_embedding.png")
TINY = ["--set", "n_train=50", "--set", "n_test=20", "--set", "hidden=4", "--epochs", "1",
        "--quiet"]



def train_run(folder: Path, *arguments: str) -> int:
    return main(["train", *arguments, "--out", str(folder), "--quiet"])


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vae") / "run"
    status = train_run(folder, "vae", "--dataset", "bars", "--epochs", "2", "--lr", "0.01",
                       "--set", "z_dim=2", "--set", "hidden=16", "--set", "n_train=500",
                       "--set", "n_test=200")
    return status, folder


@pytest.fixture(scope="module")
def sbvae_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sbvae") / "run"
    status = train_run(folder, "sbvae", "--dataset", "bars", "--epochs", "2", "--lr", "0.003",
                       "--set", "truncation=5", "--set", "hidden=16", "--set", "n_train=300",
                       "--set", "n_test=100")
    return status, folder


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 100 and path.read_bytes()[:8] == PNG_SIGNATURE


def single_error_line(capsys, argv) -> str:
    """Run ``argv``: status 2 and exactly one line, ``error: ...``, on stderr; return it."""
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


# --------------------------------------------------------------------------- list


def test_list_names_every_model_objective_and_data_set(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    words = set(out.split())
    for name in [*ZOO, *OBJECTIVES, *available_datasets()]:
        assert name in words, name
    assert {"models:", "objectives:", "sets:"} <= words


def test_module_entry_point_lists_as_a_subprocess():
    result = subprocess.run([sys.executable, "-m", "pyro_dgm", "list"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in [*ZOO, *OBJECTIVES, *available_datasets()]:
        assert name in result.stdout


# --------------------------------------------------------------------------- a VAE run


def test_train_writes_the_run_folder(vae_run):
    status, folder = vae_run
    assert status == 0
    config = read(folder, "config.json")
    assert config["model"] == "vae" and config["objective"] == "elbo"
    assert config["hyper"] == {"z_dim": 2, "hidden": 16}
    assert config["data_options"] == {"n_train": 500, "n_test": 200}
    metrics = read(folder, "metrics.json")
    assert {"model", "dataset", "objective", "epochs", "n_train", "train_seconds", "history",
            "test_elbo"} <= set(metrics)
    assert (metrics["model"], metrics["dataset"], metrics["objective"]) == ("vae", "bars", "elbo")
    assert metrics["epochs"] == 2 and metrics["n_train"] == 500
    assert [set(h) for h in metrics["history"]] == [{"epoch", "loss", "seconds"}] * 2
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["train_seconds"] == pytest.approx(sum(h["seconds"] for h in metrics["history"]))
    assert -16 < metrics["test_elbo"] < 0  # 16 binary pixels; a fresh model scores about -11.6
    for figure in FIGURES:
        assert is_png(folder / figure), figure
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    assert checkpoint["history"] == metrics["history"]
    assert not list(folder.glob("*.tmp"))


def test_evaluate_writes_eval_json(vae_run, capsys):
    _, folder = vae_run
    argv = ["evaluate", str(folder), "--iwae-samples", "20", "--knn"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = read(folder, "eval.json")
    assert printed == metrics
    assert set(metrics) == {"test_elbo", "nll", "knn_error", "active_dims"}
    assert metrics["nll"]["k"] == 20
    # the IWAE bound is at least the ELBO (same samples), so the nll is at most -ELBO
    assert metrics["nll"]["value"] <= -metrics["test_elbo"] + 1e-5
    assert set(metrics["knn_error"]) == {"3", "5", "10"}
    assert all(0 <= error < 0.75 for error in metrics["knn_error"].values())
    assert isinstance(metrics["active_dims"], int) and 0 <= metrics["active_dims"] <= 2
    # the trained parameters were loaded: the ELBO matches the one measured after training
    assert metrics["test_elbo"] == pytest.approx(read(folder, "metrics.json")["test_elbo"], abs=0.3)
    # evaluation is seeded: a second run gives the same numbers
    assert main(argv) == 0
    capsys.readouterr()
    assert read(folder, "eval.json") == metrics


def test_sample_writes_a_png(vae_run, tmp_path, capsys):
    _, folder = vae_run
    target = tmp_path / "F.png"
    assert main(["sample", str(folder), "-n", "16", "--out", str(target)]) == 0
    assert is_png(target)
    assert str(target) in capsys.readouterr().out


def test_resume_continues_the_history(vae_run, tmp_path):
    _, original = vae_run
    folder = tmp_path / "run"
    shutil.copytree(original, folder)
    before = read(folder, "metrics.json")["history"]
    assert main(["train", "vae", "--out", str(folder), "--resume", "--epochs", "3",
                 "--quiet"]) == 0
    history = read(folder, "metrics.json")["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[:2] == before
    assert math.isfinite(history[2]["loss"])
    assert read(folder, "config.json")["epochs"] == 3
    assert load_checkpoint(folder / "checkpoint.pt")["history"] == history


# --------------------------------------------------------------------------- an SB-VAE run


def test_sbvae_end_to_end(sbvae_run, tmp_path, capsys):
    status, folder = sbvae_run
    assert status == 0
    metrics = read(folder, "metrics.json")
    assert metrics["model"] == "sbvae" and metrics["objective"] == "meanfield"
    assert all(math.isfinite(h["loss"]) for h in metrics["history"])
    assert math.isfinite(metrics["test_elbo"])
    for figure in FIGURES:
        assert is_png(folder / figure), figure
    assert main(["evaluate", str(folder), "--iwae-samples", "10", "--knn"]) == 0
    evaluation = read(folder, "eval.json")
    assert math.isfinite(evaluation["test_elbo"]) and math.isfinite(evaluation["nll"]["value"])
    assert evaluation["nll"]["value"] <= -evaluation["test_elbo"] + 1e-5
    assert all(0 <= error <= 1 for error in evaluation["knn_error"].values())
    assert 0 <= evaluation["active_dims"] <= 5
    assert main(["sample", str(folder), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert is_png(tmp_path / "s.png")


# --------------------------------------------------------------------------- bad input


def test_unknown_model(capsys, tmp_path):
    line = single_error_line(capsys, ["train", "nope", "--out", str(tmp_path / "r")])
    assert "'nope'" in line and "vae" in line and "sbvae" in line


def test_unknown_dataset(capsys, tmp_path):
    line = single_error_line(capsys, ["train", "vae", "--dataset", "nope",
                                      "--out", str(tmp_path / "r")])
    assert "'nope'" in line and "bars" in line and "mnist" in line


def test_unknown_objective(capsys, tmp_path):
    line = single_error_line(capsys, ["train", "vae", "--objective", "nope",
                                      "--out", str(tmp_path / "r")])
    assert "'nope'" in line and "elbo" in line and "iwae" in line


def test_objective_that_does_not_apply(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "dummy", Objective(
        "dummy", "an objective no zoo model lists", lambda particles: None, {"particles": 1}))
    line = single_error_line(capsys, ["train", "vae", "--objective", "dummy",
                                      "--out", str(tmp_path / "r")])
    assert "'dummy'" in line and "does not apply" in line and "'vae'" in line


def test_unknown_setting(capsys, tmp_path):
    line = single_error_line(capsys, ["train", "vae", "--set", "zdim=2",
                                      "--out", str(tmp_path / "r")])
    assert "'zdim'" in line and "z_dim" in line and "n_train" in line and "particles" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("pair", ["z_dim", "=2"])
def test_malformed_setting(capsys, tmp_path, pair):
    line = single_error_line(capsys, ["train", "vae", "--set", pair, "--out", str(tmp_path / "r")])
    assert "key=value" in line


def test_evaluate_a_missing_folder(capsys, tmp_path):
    line = single_error_line(capsys, ["evaluate", str(tmp_path / "nowhere")])
    assert str(tmp_path / "nowhere") in line


def test_evaluate_a_corrupt_checkpoint(capsys, vae_run, tmp_path):
    _, original = vae_run
    folder = tmp_path / "run"
    shutil.copytree(original, folder)
    (folder / "checkpoint.pt").write_bytes(b"\x13garbage" * 64)
    line = single_error_line(capsys, ["evaluate", str(folder), "--iwae-samples", "2"])
    assert str(folder / "checkpoint.pt") in line and "corrupt" in line
    line = single_error_line(capsys, ["sample", str(folder), "-n", "2"])
    assert "corrupt" in line


def test_evaluate_a_checkpoint_of_another_model(capsys, vae_run, tmp_path):
    _, original = vae_run
    folder = tmp_path / "run"
    shutil.copytree(original, folder)
    config = read(folder, "config.json")
    config["hyper"]["hidden"] = 8
    (folder / "config.json").write_text(json.dumps(config))
    line = single_error_line(capsys, ["evaluate", str(folder), "--iwae-samples", "2"])
    assert "does not fit" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_when_absent(capsys, tmp_path):
    line = single_error_line(capsys, ["train", "vae", *TINY, "--device", "cuda",
                                      "--out", str(tmp_path / "r")])
    assert "CUDA" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_evaluate_on_cuda_when_absent(capsys, vae_run):
    _, folder = vae_run
    line = single_error_line(capsys, ["evaluate", str(folder), "--device", "cuda"])
    assert "CUDA" in line and "corrupt" not in line


def test_offline_mnist_without_files_names_the_file(capsys, tmp_path, download_attempts):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = single_error_line(capsys, ["train", "vae", "--dataset", "mnist", "--set",
                                      "protocol=offline", "--data-dir", str(empty),
                                      "--out", str(tmp_path / "r")])
    assert "t10k-images-idx3-ubyte" in line and str(empty) in line
    assert download_attempts == []


def test_full_mnist_without_network_suggests_the_offline_protocol(capsys, tmp_path,
                                                                  download_attempts):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = single_error_line(capsys, ["train", "vae", "--dataset", "mnist",
                                      "--data-dir", str(empty), "--out", str(tmp_path / "r")])
    assert "protocol=offline" in line and "train-images-idx3-ubyte" in line
    assert len(download_attempts) == 1 and download_attempts[0]["download"]


@pytest.mark.parametrize("model,setting", [("vae", "hidden=abc"), ("sbvae", "truncation=1")])
def test_bad_hyper_parameter_values(capsys, tmp_path, model, setting):
    single_error_line(capsys, ["train", model, *TINY, "--set", setting,
                               "--out", str(tmp_path / "r")])


@pytest.mark.parametrize("option", [["--batch-size", "0"], ["--lr", "0"]])
def test_zero_batch_size_or_learning_rate_is_refused(capsys, tmp_path, option):
    single_error_line(capsys, ["train", "vae", *TINY, *option, "--out", str(tmp_path / "r")])


# --------------------------------------------------------------------------- real MNIST


def test_train_on_offline_mnist_from_the_shared_folder(shared_data_dir, tmp_path,
                                                       download_attempts):
    if not (shared_data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("the MNIST test files are absent from the shared data folder")
    folder = tmp_path / "mnist"
    status = train_run(folder, "vae", "--dataset", "mnist", "--epochs", "1", "--set", "hidden=64",
                       "--set", "z_dim=8", "--data-dir", str(shared_data_dir),
                       "--eval-samples", "5")
    assert status == 0
    metrics = read(folder, "metrics.json")
    assert metrics["n_train"] == 8000 and metrics["n_test"] == 2000
    assert metrics["data"]["protocol"] == "offline"
    # one epoch of a small VAE already beats a uniform Bernoulli (784 log 2 = 543 nats)
    assert -543 < metrics["test_elbo"] < 0
    assert download_attempts == []
    assert is_png(folder / "samples.png")
