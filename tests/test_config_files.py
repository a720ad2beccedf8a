"""Runs described by config files (``pyro-dgm train --config FILE``) and the table of many runs
(``pyro-dgm runs DIR...``)."""

from __future__ import annotations

import csv
import json

import pytest

from pyro_dgm.cli import main
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import config_from_file, make_config, read_config_file

TOML = """
model = "vae"
dataset = "bars"
epochs = 2
seed = 4
[hyper]
z_dim = 3
hidden = 16
[data_options]
n_train = 200
n_test = 50
"""
YAML = """
model: vae
dataset: bars
epochs: 2
seed: 4
hyper: {z_dim: 3, hidden: 16}
data_options: {n_train: 200, n_test: 50}
"""
QUIET = ["--quiet", "--threads", "1", "--eval-samples", "5"]


def without_timings(metrics: dict) -> dict:
    metrics = {k: v for k, v in metrics.items() if "seconds" not in k}
    metrics["history"] = [{k: v for k, v in h.items() if k != "seconds"}
                          for h in metrics["history"]]
    return metrics


def test_toml_yaml_and_json_describe_the_same_run(tmp_path):
    (tmp_path / "run.toml").write_text(TOML)
    (tmp_path / "run.yaml").write_text(YAML)
    from_toml = config_from_file(read_config_file(tmp_path / "run.toml"))
    (tmp_path / "run.json").write_text(json.dumps(from_toml))
    expected = make_config("vae", dataset="bars", epochs=2, seed=4,
                           settings={"z_dim": 3, "hidden": 16, "n_train": 200, "n_test": 50})
    assert from_toml == expected
    assert config_from_file(read_config_file(tmp_path / "run.yaml")) == expected
    assert config_from_file(read_config_file(tmp_path / "run.json")) == expected


def test_flags_override_the_file():
    values = {"model": "vae", "epochs": 2, "lr": 0.5, "hyper": {"z_dim": 3}}
    config = config_from_file(values, {"z_dim": 5}, lr=0.01, dataset="bars")
    assert (config["lr"], config["epochs"], config["hyper"]["z_dim"]) == (0.01, 2, 5)
    assert config_from_file({"model": "vae", "epochs": 2}, model="sbvae")["model"] == "sbvae"
    with pytest.raises(PyroDGMError, match="unknown setting 'z_dim' for model 'sbvae'"):
        config_from_file(values, model="sbvae")  # the file's hyper-parameters are a vae's


def test_a_run_repeated_from_its_config_json_gives_the_same_metrics(tmp_path):
    (tmp_path / "run.toml").write_text(TOML)
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["train", "--config", str(tmp_path / "run.toml"), "--out", str(first), *QUIET]) == 0
    assert main(["train", "--config", str(first / "config.json"), "--out", str(again),
                 *QUIET]) == 0
    assert json.loads((again / "config.json").read_text()) == \
        json.loads((first / "config.json").read_text())
    assert without_timings(json.loads((again / "metrics.json").read_text())) == \
        without_timings(json.loads((first / "metrics.json").read_text()))


@pytest.mark.parametrize("name, text, words", [
    ("unknown.toml", 'model = "vae"\nepoch = 3\n', "unknown key(s) epoch; valid keys are: model"),
    ("broken.toml", "model = \n", "is not valid TOML"),
    ("broken.json", "{", "is not valid JSON"),
    ("broken.yaml", "model: [vae\n", "is not valid YAML"),
    ("list.yaml", "- vae\n", "must hold a table of keys"),
    ("table.yaml", "model: vae\nhyper: 3\n", "hyper must be a table"),
    ("run.ini", "model = vae\n", "must end in .json, .toml, .yaml or .yml"),
    ("nomodel.json", '{"dataset": "bars"}', "no model"),
])
def test_a_bad_config_file_is_one_sentence_and_writes_nothing(tmp_path, capsys, name, text, words):
    (tmp_path / name).write_text(text)
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / name), "--out", str(out), *QUIET]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and words in error and "\n" not in error
    assert not out.exists()


def test_a_missing_config_file_and_a_missing_model_are_refused(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "none.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "run")]) == 2
    assert "name a model" in capsys.readouterr().err
    with pytest.raises(PyroDGMError, match="does not exist"):
        read_config_file(tmp_path / "none.json")


def test_runs_tables_the_run_folders_sorted_and_as_csv(tmp_path, capsys):
    (tmp_path / "run.toml").write_text(TOML)
    base = ["train", "--config", str(tmp_path / "run.toml"), *QUIET]
    assert main(base + ["--out", str(tmp_path / "runs" / "a")]) == 0
    assert main(base + ["--out", str(tmp_path / "runs" / "b"), "--lr", "0.01"]) == 0
    assert main(["evaluate", str(tmp_path / "runs" / "b"), "--iwae-samples", "7", "--quiet"]) == 0
    capsys.readouterr()
    table = tmp_path / "runs.csv"
    assert main(["runs", str(tmp_path / "runs"), "--sort", "test_elbo", "--descending",
                 "--csv", str(table)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:4] == ["run", "model", "objective", "dataset"]
    rows = list(csv.DictReader(table.open()))
    metrics = {name: json.loads((tmp_path / "runs" / name / "metrics.json").read_text())
               for name in "ab"}
    assert [float(row["test_elbo"]) for row in rows] == sorted(
        (m["test_elbo"] for m in metrics.values()), reverse=True)
    for row in rows:
        name = row["run"][-1]
        assert float(row["test_elbo"]) == pytest.approx(metrics[name]["test_elbo"])
        assert int(row["epochs"]) == 2
        assert (row["nll_k"] == "7") == (name == "b")  # eval.json only where evaluate ran


def test_runs_refuses_what_it_cannot_table(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["runs", str(tmp_path)]) == 2
    assert "no run folders" in capsys.readouterr().err
