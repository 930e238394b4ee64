"The `iris-classifier` console script for real: papermill training end to end, bad inputs, the quality gate, `predict`."
import json, subprocess, sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from iris_classifier.cli import main
from iris_classifier.core import FEATURES, SPECIES, TrainParams, read_metadata
from iris_classifier.data_processing import load_iris_frame
from iris_classifier.model_training import train_model
from iris_classifier.pipeline import load_published_model

CLI = Path(sys.executable).parent/"iris-classifier"

def cli(*args, cwd):
    "Run the console script in `cwd` (so stray default output could only land there)"
    return subprocess.run([str(CLI), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)

@pytest.fixture(scope="module")
def papermill_run(tmp_path_factory):
    "One real training run through papermill into a temporary artifacts directory"
    out = tmp_path_factory.mktemp("run")/"artifacts"
    return out, cli("train", "--output-dir", out, cwd=out.parent)

@pytest.mark.slow
def test_train_runs_the_notebook_and_publishes(papermill_run):
    out, proc = papermill_run
    assert proc.returncode == 0, proc.stderr
    assert "Executing" in proc.stderr and "Published model" in proc.stderr  # progress, then the outcome
    model, meta = load_published_model(out/"model")
    run = out/"runs"/meta["run_id"]  # the run's own directory
    assert [p.name for p in (out/"runs").iterdir()] == [run.name]
    assert sorted(p.name for p in out.iterdir()) == ["model", "runs"]
    for name in ["05_model_training.ipynb", "run.json", "metrics.json", "confusion_matrix.png",
                 "feature_importances.png", "decision_tree.png", "model/metadata.json"]:
        assert (run/name).stat().st_size > 0, name
    for name in ["raw_train.csv", "raw_test.csv", "processed_train.csv", "processed_test.csv", "data_quality.json"]:
        assert (run/"data"/name).stat().st_size > 0, name
    record = json.loads((run/"run.json").read_text())
    assert (record["published"], record["history_entry"], record["model_version"]) == (True, 1, meta["model_version"])
    assert record["challenge"]["reason"] == "no model is published yet: this is the first"
    assert f"history entry 1" in proc.stderr
    nb = nbformat.read(run/"05_model_training.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)

@pytest.mark.slow
def test_papermill_run_matches_the_python_api(papermill_run, trained):
    out, proc = papermill_run
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(next((out/"runs").glob("*/metrics.json")).read_text())
    keys = ["accuracy", "f1_macro", "cv_accuracy_mean"]
    assert {k: metrics[k] for k in keys} == {k: trained.metrics[k] for k in keys}
    model, _ = load_published_model(out/"model")
    X = load_iris_frame()[FEATURES]
    assert (model.predict_proba(X) == trained.pipeline.predict_proba(X)).all()

@pytest.mark.slow
def test_failed_quality_gate_exits_nonzero_and_keeps_the_model(published):
    out = published.parent
    before = {p.name: p.read_bytes() for p in published.iterdir() if p.is_file()}
    champion_run = read_metadata(published)["run_id"]
    proc = cli("train", "--output-dir", out, "--max-depth", "1", cwd=out)
    assert proc.returncode == 1
    assert "QualityGateError" in proc.stderr and "below the minimum 0.900" in proc.stderr
    [run] = [p for p in (out/"runs").iterdir() if p.name != champion_run]  # the new run's directory
    assert str(run/"05_model_training.ipynb") in proc.stderr  # points at the executed notebook
    assert {p.name: p.read_bytes() for p in published.iterdir() if p.is_file()} == before
    stump = round(train_model(TrainParams(max_depth=1)).metrics["accuracy"], 6)
    assert json.loads((run/"run.json").read_text())["gate"] == dict(min_accuracy=0.9, accuracy=stump, passed=False)

HEADER = "sepal_length,sepal_width,petal_length,petal_width,species\n"
GOOD = "".join(f"{r.sepal_length},{r.sepal_width},{r.petal_length},{r.petal_width},{r.species}\n"
               for r in load_iris_frame().itertuples())
BAD_INPUTS = {
    "empty file": ("", "is empty"),
    "header only": (HEADER, "has a header but no rows"),
    "missing column": ("sepal_length,sepal_width,petal_length,species\n5.1,3.5,1.4,setosa\n",
                       "Missing column(s): petal_width"),
    "non-numeric cell": (HEADER + "5.1,3.5,abc,0.2,setosa\n" + GOOD,
                         "'petal_length' has non-numeric value(s) ['abc'] on line(s) 2"),
    "negative measurement": (HEADER + GOOD + "5.1,-3.5,1.4,0.2,setosa\n",
                             "'sepal_width' has zero or negative value(s) [-3.5] on line(s) 152"),
    "absurd measurement": (HEADER + "510,3.5,1.4,0.2,setosa\n" + GOOD,
                           "'sepal_length' has above 30 cm value(s) [510.0]"),
    "infinite measurement": (HEADER + "5.1,3.5,1.4,inf,setosa\n" + GOOD, "'petal_width' has infinite value(s)"),
    "unknown species": (HEADER + GOOD + "5.1,3.5,1.4,0.2,rose\n", "Unknown species ['rose'] on line(s) 152"),
    "too few rows": (HEADER + GOOD.splitlines(True)[0] * 3, "Too few rows per species"),
    "only missing values": (HEADER + "5.1,,1.4,0.2,setosa\n" * 20, "Too few rows per species"),
}

@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_training_data_fails_clearly_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    "In-process through `main`, the function the console script calls (a subprocess per case would mostly time imports)"
    text, message = BAD_INPUTS[case]
    (tmp_path/"flowers.csv").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "flowers.csv", "--output-dir", "out"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flowers.csv"]  # no partial artifacts

def test_bad_data_through_the_console_script(tmp_path):
    (tmp_path/"flowers.csv").write_text(HEADER + "5.1,3.5,1.4,0.2,rose\n" + GOOD)
    proc = cli("train", "--data", "flowers.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "Unknown species ['rose'] on line(s) 2" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flowers.csv"]

@pytest.mark.parametrize("args, message", [(["--data", "nope.csv"], "No data file at 'nope.csv'"),
                                           (["--test-size", "1.5"], "test_size must be between 0 and 1"),
                                           (["--criterion", "best"], "criterion must be gini, entropy or log_loss")])
def test_missing_data_file_and_bad_parameters_fail_clearly(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

def test_malformed_option_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--max-depth", "deep"])
    assert exit.value.code == 2 and "--max-depth" in capsys.readouterr().err

def test_predict_scores_a_csv(published, tmp_path):
    flowers = load_iris_frame().sample(12, random_state=1)
    flowers.to_csv(tmp_path/"flowers.csv", index=False)
    proc = cli("predict", "flowers.csv", "-o", "scored.csv", "--model-dir", published, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_csv(tmp_path/"scored.csv")
    assert list(scored.columns) == list(flowers.columns) + ["predicted_species"] + [f"proba_{s}" for s in SPECIES]
    model, meta = load_published_model(published)
    assert scored["predicted_species"].tolist() == model.predict(flowers[FEATURES]).tolist()
    assert scored["species"].tolist() == flowers["species"].tolist()  # input columns pass through
    assert meta["model_version"] in proc.stderr

def test_predict_writes_species_and_probabilities_to_stdout(published, tmp_path):
    flowers = load_iris_frame().drop(columns="species").sample(12, random_state=1)
    flowers.to_csv(tmp_path/"flowers.csv", index=False)
    proc = cli("predict", "flowers.csv", "--model-dir", published, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tmp_path/"out.csv").write_text(proc.stdout)
    scored = pd.read_csv(tmp_path/"out.csv")
    assert list(scored.columns) == FEATURES + ["predicted_species"] + [f"proba_{s}" for s in SPECIES]
    model, _ = load_published_model(published)
    assert scored["predicted_species"].tolist() == model.predict(flowers[FEATURES]).tolist()
    assert scored.filter(like="proba_").sum(axis=1).round(9).eq(1).all()

def test_predict_answers_exactly_like_the_server(published, client, tmp_path):
    flowers = load_iris_frame().drop(columns="species").sample(30, random_state=2)
    flowers.to_csv(tmp_path/"flowers.csv", index=False)
    assert main(["predict", str(tmp_path/"flowers.csv"), "-o", str(tmp_path/"scored.csv"),
                 "--model-dir", str(published)]) == 0
    scored = pd.read_csv(tmp_path/"scored.csv")
    served = client.post("/api/predict", json={"instances": flowers.to_numpy().tolist()}).json["predictions"]
    assert scored["predicted_species"].tolist() == [a["species"] for a in served]
    assert (scored[[f"proba_{s}" for s in SPECIES]].to_numpy().tolist()
            == [list(a["probabilities"].values()) for a in served])

def test_predict_rejects_bad_rows_and_writes_nothing(published, tmp_path):
    (tmp_path/"flowers.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n"
                                        "5.1,3.5,1.4,0.2\n6.0,,4.5,1.5\n")
    proc = cli("predict", "flowers.csv", "-o", "scored.csv", "--model-dir", published, cwd=tmp_path)
    assert proc.returncode == 2 and "Line 3: sepal_width is missing" in proc.stderr
    assert not (tmp_path/"scored.csv").exists()

def test_predict_without_a_model_says_what_to_run(tmp_path):
    load_iris_frame().to_csv(tmp_path/"flowers.csv", index=False)
    proc = cli("predict", "flowers.csv", "--model-dir", tmp_path/"model", cwd=tmp_path)
    assert proc.returncode == 2 and "No published model" in proc.stderr and "iris-classifier train" in proc.stderr

def test_help_describes_the_commands(tmp_path):
    proc = cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "train" in proc.stdout and "predict" in proc.stdout
    proc = cli("train", "--help", cwd=tmp_path)
    assert "--min-accuracy" in proc.stdout and "quality gate" in proc.stdout
