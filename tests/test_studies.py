"""Reproduction studies as data (``pyro-dgm reproduce``): every study runs at the smoke budget
and writes its table, measured beside published; a study resumes without retraining what
finished; bad input is one sentence."""

from __future__ import annotations

import csv
import json
import math

import pytest

from pyro_dgm import studies
from pyro_dgm.cli import main
from pyro_dgm.errors import PyroDGMError
from pyro_dgm.experiment import Experiment
from pyro_dgm.studies import STUDIES, Budget, Metric, Study, StudyRun, reproduce

NEEDS_FILES = {"mnist", "mnist-ssl", "freyfaces", "multi-mnist"}


def data_dir_for(study: Study, request):
    if {run.dataset for run in study.runs} & NEEDS_FILES:
        return request.getfixturevalue("shared_data_dir")
    return None


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_study_runs_at_the_smoke_budget_and_writes_its_table(name, tmp_path, request):
    study = STUDIES[name]
    data_dir = data_dir_for(study, request)
    result = reproduce(name, "smoke", out=tmp_path, data_dir=data_dir)
    assert {path.name for path in tmp_path.iterdir()} >= set(studies.STUDY_FILES)
    assert [row["label"] for row in result["summary"]] == [run.label for run in study.runs]
    for row in result["runs"]:
        for metric in study.metrics:  # every column was read from the run's eval.json
            assert not math.isnan(row[metric.key]), (row["label"], metric.key)
    table = (tmp_path / "study.md").read_text()
    for label, values in study.published.items():
        line = next(line for line in table.splitlines() if line.startswith(f"| `{label}`"))
        for value in values.values():
            assert f"({value:g})" in line
    rows = list(csv.DictReader((tmp_path / "study.csv").open()))
    assert len(rows) == len(study.runs)


def test_every_study_states_its_source_and_compares_with_something(tmp_path):
    for study in STUDIES.values():
        assert study.source and study.protocol and study.metrics
        assert study.published or study.note, study.name  # values, or the ordering in words


def test_a_study_resumes_without_retraining_finished_runs(tmp_path, monkeypatch):
    study = tiny_study()
    monkeypatch.setitem(STUDIES, study.name, study)
    first = reproduce(study.name, "smoke", seeds=(0, 1), out=tmp_path)
    (tmp_path / "b" / "seed-1" / "row.json").unlink()  # as if interrupted before its end
    trained = []
    run = Experiment.run
    monkeypatch.setattr(Experiment, "run", lambda self, *a, **k: trained.append(
        self.config["seed"]) or run(self, *a, **k))
    again = reproduce(study.name, "smoke", seeds=(0, 1), out=tmp_path, resume=True)
    assert trained == [1]
    untimed = (lambda rows: [{k: v for k, v in row.items() if k != "seconds_per_epoch"}
                             for row in rows])
    assert untimed(again["runs"]) == untimed(first["runs"])  # same seed, same numbers
    summary = {row["label"]: row for row in again["summary"]}
    assert summary["a"]["nll"]["n"] == 2 and summary["a"]["nll"]["std"] >= 0


def test_an_existing_study_is_refused_without_resume_or_overwrite(tmp_path, monkeypatch, capsys):
    study = tiny_study()
    monkeypatch.setitem(STUDIES, study.name, study)
    reproduce(study.name, "smoke", out=tmp_path)
    assert main(["reproduce", study.name, "--budget", "smoke", "--out", str(tmp_path)]) == 2
    assert "already holds a study" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["reproduce", "no-such-study"], "unknown study 'no-such-study'; valid studies are:"),
    (["reproduce", "sbvae-vs-vae", "--budget", "huge"], "invalid choice"),
    (["reproduce"], "name a study"),
    (["reproduce", "sbvae-vs-vae", "--seeds", "0,0"], "lists a seed twice"),
])
def test_bad_reproduce_commands_are_one_sentence(argv, words, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and words in error and "\n" not in error
    assert not (tmp_path / "out").exists()


def test_list_names_every_study(capsys):
    assert main(["reproduce", "--list"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in STUDIES)


def test_a_study_whose_run_is_misconfigured_trains_nothing(tmp_path, monkeypatch):
    study = tiny_study(extra=StudyRun("bad", "vae", dataset="bars", settings={"no_such": 1}))
    monkeypatch.setitem(STUDIES, study.name, study)
    with pytest.raises(PyroDGMError, match="unknown setting 'no_such'"):
        reproduce(study.name, "smoke", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_register_refuses_a_study_without_every_budget_or_with_a_stray_published_label():
    smoke = Budget(epochs=1)
    with pytest.raises(ValueError, match="lacks the budget"):
        studies.register(tiny_study(budgets={"smoke": smoke}))
    with pytest.raises(ValueError, match="unknown run 'c'"):
        studies.register(tiny_study(published={"c": {"nll": 1.0}}))


def tiny_study(extra: StudyRun | None = None, budgets=None, published=None) -> Study:
    small = {"z_dim": 2, "hidden": 8, "n_train": 100, "n_test": 40}
    runs = (StudyRun("a", "vae", dataset="bars", settings=small),
            StudyRun("b", "sbvae", dataset="bars", settings={"truncation": 4, "hidden": 8,
                                                             "n_train": 100, "n_test": 40}))
    budget = Budget(epochs=1, iwae_samples=3, figures=False)
    return Study(name="tiny", title="tiny", source="none", protocol="bars",
                 runs=runs + ((extra,) if extra else ()),
                 metrics=(Metric("nll", "NLL", ("nll", "value")),),
                 budgets=budgets or {"smoke": budget, "cpu": budget, "paper": budget},
                 published=published or {"a": {"nll": 5.0}})
