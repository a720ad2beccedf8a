"""The benchmark scripts: each runs end to end as a user runs it, with tiny arguments.

Every ``benchmarks/*.py`` is run in a subprocess (``python benchmarks/X.py ... --out TMP``, one
torch thread, ``PYRO_DGM_DATA`` passed through or pointed at ``../shared/data``) with budgets of a
few steps, examples or seconds; the test checks the exit status and that the files the script
promises exist and hold finite numbers under the expected keys. Scripts that read MNIST (or Frey
faces) are skipped when the data folder lacks those files. A coverage test fails when a script
is missing from the list, and bad arguments must give one sentence and exit status 2.
"""

from __future__ import annotations

import csv
import json
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from pyro_dgm import PyroDGMError, load_dataset

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_dir() -> str | None:
    return os.environ.get("PYRO_DGM_DATA") or (str(SHARED_DATA) if SHARED_DATA.is_dir() else None)


def available(dataset: str) -> bool:
    """Whether ``dataset``'s files are in the data folder (MNIST: the offline protocol's)."""
    options = {"protocol": "offline"} if dataset == "mnist" else {}
    try:
        load_dataset(dataset, "test", data_dir=data_dir(), **options)
    except PyroDGMError:
        return False
    return True


def read_json(path: Path):
    assert path.is_file(), f"{path.name} was not written"
    return json.loads(path.read_text())


def assert_finite(*values):
    for value in values:
        assert isinstance(value, (int, float)) and math.isfinite(value), value


def assert_png(path: Path):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"


def assert_table(path: Path, rows: int):
    lines = [line for line in path.read_text().splitlines() if line.startswith("| ")]
    assert len(lines) == rows + 1, f"{path.name}: expected a header and {rows} rows"


# -- what each script must write ----------------------------------------------------------------
def check_step_speed(out: Path):
    results = read_json(out / "step_speed.json")
    assert [r["validation"] for r in results] == [True, False]
    for r in results:
        assert_finite(r["pyro_ms_per_step"], r["torch_ms_per_step"], r["ratio"])
        assert r["ratio"] > 0


def check_scaling(out: Path):
    result = read_json(out / "scaling.json")
    assert len(result["examples_per_second"]) == 3
    assert_finite(*result["examples_per_second"].values(), result["efficiency"])
    assert all(rate > 0 for rate in result["examples_per_second"].values())


def check_kl_kumaraswamy(out: Path):
    result = read_json(out / "kl.json")
    assert_finite(result["ratio"])
    assert result["ratio"] > 0 and result["shape"] == [4, 5]


def check_mixture_prior_speed(out: Path):
    rows = read_json(out / "speed.json")
    assert [r["variant"] for r in rows] == ["vae", "dlgmm (enumerate, T=3)", "dlgmm (sum, T=3)"]
    for r in rows:
        assert_finite(r["seconds_per_step"])
        assert r["seconds_per_step"] > 0
    assert_table(out / "speed.md", 3)


def check_dp_mixture(out: Path):
    report = read_json(out / "dp_mixture.json")
    for part in ("synthetic", "scale", "mnist"):
        assert sorted(report[part]) == ["beta", "kumaraswamy"]
        for family, row in report[part].items():
            assert_finite(row["test_loglik"], row["one_gaussian_test_loglik"],
                          row["seconds_per_epoch"], row["final_loss"])
            assert 1 <= row["components_with_weight"] <= 20
            assert math.isclose(sum(row["weights"]), 1, abs_tol=1e-2)
            figure_prefix = "mnist_pca2" if part == "mnist" else part
            assert_png(out / f"{figure_prefix}_{family}.png")
    assert_finite(report["synthetic"]["beta"]["true_test_loglik"])


def check_inference_compilation(out: Path):
    results = read_json(out / "results.json")
    table = results["summary"]["table"]
    assert sorted(table) == ["IS, learned proposal", "IS, prior", "MH (random walk)"]
    for stats in table.values():
        assert_finite(stats["ess"], stats["ess_per_s"], stats["mean_error"])
    assert_finite(results["summary"]["csis_speedup"])
    assert (out / "results.md").is_file() and (out / "proposal.pt").is_file()
    assert_png(out / "curves_0.png")


def check_exact_likelihood(out: Path):
    rows = read_json(out / "table.json")
    assert [r["model"] for r in rows] == ["nade", "vae", "flow"]
    assert [r["nll_method"] for r in rows] == ["exact", "iwae", "dequantized"]
    for r in rows:
        assert_finite(r["nll"]["value"], r["test_elbo"], r["seconds_per_epoch"])
        assert r["nll"]["value"] > 0
    assert_finite(rows[2]["bits_per_dim"])
    assert_table(out / "table.md", 3 + 1 + 6)  # measured rows; the published header and rows


def check_air_multi_mnist(out: Path):
    summary = read_json(out / "summary.json")
    assert 0 <= summary["count_accuracy"] <= 1
    assert_finite(summary["seconds_per_step"], summary["train_seconds"])
    curve = read_json(out / "curve.json")
    assert curve and all(math.isfinite(point["loss"]) for point in curve)
    assert (out / "profile.txt").is_file() and (out / "air.pt").is_file()
    for name in ("count_accuracy", "confusion", "boxes", "reconstructions"):
        assert_png(out / f"{name}.png")


def check_ais_vs_iwae(out: Path):
    report = read_json(out / "ais_vs_iwae.json")
    assert report["model"] == "vae" and [r["budget"] for r in report["rows"]] == [22, 44]
    for r in report["rows"]:
        assert_finite(r["iwae_nll"], r["ais_nll"], r["ais_nll_stderr"], r["elbo"])
        assert r["ais_evaluations"] == r["budget"] and r["iwae_k"] == r["budget"]
        assert -r["elbo"] >= r["iwae_nll"] > 0
    assert_table(out / "ais_vs_iwae.md", 2)


def check_gan_modes(out: Path):
    rows = read_json(out / "gan_modes.json")
    assert [(r["dataset"], r["settings"]["gradient_penalty"]) for r in rows] == [
        ("toy2d", 10.0), ("mnist", 0.0), ("mnist", 10.0)]
    for r in rows:
        assert 0 <= r["modes_covered"] <= r["modes"] == (8 if r["dataset"] == "toy2d" else 10)
        assert_finite(r["class_entropy"], r["train_seconds"])
    assert 0 <= rows[0]["high_quality_fraction"] <= 1
    assert_table(out / "gan_modes.md", 3)
def check_gan_vs_vae_ais(out: Path):
    report = read_json(out / "gan_vs_vae_ais.json")
    assert [r["model"] for r in report["rows"]] == ["gan", "vae"]
    for r in report["rows"]:
        assert_finite(r["test_loglik"], r["test_loglik_stderr"], r["train_seconds"],
                      *r["valid_loglik"].values())
        assert r["sigma"] in report["sigmas"] and str(r["sigma"]) in r["valid_loglik"]
        assert r["valid_loglik"][str(r["sigma"])] == max(r["valid_loglik"].values())
    assert_table(out / "gan_vs_vae_ais.md", 2)


def check_boltzmann_mnist(out: Path):
    rows = read_json(out / "table.json")
    assert [r["variant"] for r in rows] == ["rbm-pcd", "rbm-cd", "dbm"]
    for r in rows:
        assert_finite(r["test_loglik"], r["ais_log_z"], r["ais_log_z_stderr"], r["train_seconds"])
        assert r["nll_method"] == "ais" and r["test_loglik"] < 0
        assert_finite(r["ais_log_z_floor"], r["log_f_noise_chains"], r["log_f_training_chains"],
                      r["ais_log_z_reverse"], r["ais_log_z_reverse_stderr"])
        assert r["ais_valid"] == (r["ais_log_z"] >= r["ais_log_z_floor"])
    assert [r["bound"] for r in rows] == [False, False, True]
    assert_table(out / "table.md", 3 + 1 + 4)  # measured rows; the published header and rows


# (script, tiny arguments before --out, data it reads, check); OUT is the output folder
SMOKE = [
    ("kl_kumaraswamy.py", ["--batch", "4", "--truncation", "5", "--repeats", "2", "--blocks", "2",
                           "--out", "OUT/kl.json"], None, check_kl_kumaraswamy),
    ("step_speed.py", ["--steps", "2", "--blocks", "1", "--out", "OUT/step_speed.json"], None,
     check_step_speed),
    ("mixture_prior_speed.py", ["--models", "vae,dlgmm", "--hidden", "16", "--rounds", "1",
                                "--out", "OUT"], "mnist", check_mixture_prior_speed),
    ("scaling.py", ["--steps", "2", "--warmup", "1", "--hidden", "16", "--examples", "100",
                    "--batch-size", "20", "--out", "OUT/scaling.json"], None, check_scaling),
    ("dp_mixture.py", ["--n-train", "200", "--n-test", "100", "--big-n", "300", "--epochs", "1",
                       "--big-epochs", "1", "--mnist-epochs", "1", "--out", "OUT"],
     "mnist", check_dp_mixture),
    ("inference_compilation.py", ["--epochs", "1", "--n-train", "200", "--datasets", "1",
                                  "--budget", "0.05", "--repeats", "1", "--nuts-samples", "10",
                                  "--nuts-warmup", "10", "--timing-steps", "1", "--chunk", "100",
                                  "--reference-draws", "1000", "--out", "OUT"],
     None, check_inference_compilation),
    ("air_multi_mnist.py", ["--minutes", "0.005", "--n-train", "64", "--n-test", "32",
                            "--batch-size", "16", "--profile-steps", "1", "--eval-every", "5",
                            "--out", "OUT"],
     "mnist", check_air_multi_mnist),
    ("exact_likelihood.py", ["--epochs", "1", "--hidden", "8", "--iwae-samples", "2",
                             "--n-test", "20", "--out", "OUT"], "mnist", check_exact_likelihood),
    ("ais_vs_iwae.py", ["--seconds", "0.5", "--hidden", "8", "--n-test", "10", "--budgets",
                        "22,44", "--out", "OUT"], "mnist", check_ais_vs_iwae),
    ("gan_modes.py", ["--seeds", "0", "--epochs", "1", "--n-train", "200", "--mnist-seconds",
                      "0.5", "--out", "OUT"], "mnist", check_gan_modes),
    ("gan_vs_vae_ais.py", ["--minutes", "0.005", "--z-dim", "2", "--sigmas", "0.1,0.2",
                           "--n-valid", "5", "--valid-steps", "3", "--n-test", "10",
                           "--ais-steps", "5", "--ais-chains", "2", "--leapfrog-steps", "2",
                           "--out", "OUT"], "mnist", check_gan_vs_vae_ais),
    ("boltzmann_mnist.py", ["--minutes", "0.02", "--hidden", "8", "--layers", "8,8",
                            "--pretrain-epochs", "1", "--ais-steps", "20", "--ais-chains", "4",
                            "--n-test", "20", "--out", "OUT"], "mnist", check_boltzmann_mnist),
]


def test_every_benchmark_is_smoke_tested():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")}
    listed = {script for script, *_ in SMOKE}
    assert scripts == listed, (f"add to SMOKE: {sorted(scripts - listed)}; "
                               f"remove from SMOKE: {sorted(listed - scripts)}")


@pytest.mark.parametrize("script, arguments, dataset, check", SMOKE,
                         ids=[script[:-3] for script, *_ in SMOKE])
def test_benchmark_runs_with_tiny_arguments(script, arguments, dataset, check, tmp_path):
    if dataset and not available(dataset):
        pytest.skip(f"{script} needs {dataset}; set PYRO_DGM_DATA to a folder with its files")
    out = tmp_path / "out"
    out.mkdir()  # step_speed.py writes one file into an existing folder
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    if data_dir():
        environment["PYRO_DGM_DATA"] = data_dir()
    command = [sys.executable, str(BENCHMARKS / script),
               *(a.replace("OUT", str(out)) for a in arguments)]
    finished = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, f"{script} failed:\n{finished.stderr[-3000:]}"
    check(out)


# (script, bad arguments): each is refused before anything is read, trained or written
BAD_ARGUMENTS = [
    ("mixture_prior_speed.py", ["--models", "vae,gan"]),
    ("mixture_prior_speed.py", ["--rounds", "0"]),
    ("dp_mixture.py", ["--parts", "synthetic,nope"]),
    ("inference_compilation.py", ["--budget", "0"]),
    ("air_multi_mnist.py", ["--anneal-pres", "0.9"]),
    ("exact_likelihood.py", ["--models", "nade,pixelcnn"]),
    ("ais_vs_iwae.py", ["--budgets", "100,lots"]),


    ("gan_modes.py", ["--seeds", "0,one"]),
    ("gan_vs_vae_ais.py", ["--sigmas", "0.1,0"]),
    ("gan_vs_vae_ais.py", ["--models", "gan,rbm"]),
    ("gan_vs_vae_ais.py", ["--gradient-penalty", "-1"]),
    ("boltzmann_mnist.py", ["--variants", "rbm,gan"]),
    ("boltzmann_mnist.py", ["--minutes", "0"]),
    ("boltzmann_mnist.py", ["--layers", "500,big"]),
]


@pytest.mark.parametrize("script, arguments", BAD_ARGUMENTS,
                         ids=[f"{script[:-3]}-{arguments[0][2:]}" for script, arguments in BAD_ARGUMENTS])
def test_bad_arguments_give_one_sentence_and_status_2(script, arguments, tmp_path, capsys):
    main = runpy.run_path(str(BENCHMARKS / script), run_name="benchmark")["main"]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--out", str(out)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: "), error
    assert not out.exists()
