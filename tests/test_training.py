"""Training through the Python API: the data policy, determinism, the quality gate, atomic publishing and model
verification."""
import ast, json, uuid

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from conftest import ROOT
from iris_classifier import persistence
from iris_classifier.core import (FEATURES, TARGET, ModelIntegrityError, ModelNotFoundError, QualityGateError,
                                  TrainParams, read_metadata, sha256_file)
from iris_classifier.data_processing import load_iris_frame, load_training_data
from iris_classifier.model_training import publish, train_model
from iris_classifier.pipeline import load_published_model

def test_same_parameters_and_data_give_same_metrics_and_predictions(trained):
    again = train_model(TrainParams())
    assert again.metrics == trained.metrics
    X = load_iris_frame()[FEATURES]
    np.testing.assert_array_equal(again.pipeline.predict_proba(X), trained.pipeline.predict_proba(X))

def test_a_different_seed_keeps_the_split_and_changes_the_folds(trained):
    other = train_model(TrainParams(seed=7))
    assert other.test.equals(trained.test) and other.train.equals(trained.train)
    assert other.metrics["cv_scores"] != trained.metrics["cv_scores"]

def test_missing_values_and_duplicates_are_dropped_and_counted(tmp_path):
    df = load_iris_frame().astype(str)
    df.loc[3, "petal_width"] = ""
    df.loc[4, TARGET] = ""
    df = pd.concat([df, df.iloc[[10, 11]]])
    df.to_csv(tmp_path/"flowers.csv", index=False)
    clean, report = load_training_data(tmp_path/"flowers.csv")
    assert report["dropped"] == dict(missing_values=2, duplicates=3)  # two copies added, one duplicate in the original
    assert report["rows_in"] == 152 and report["rows_out"] == len(clean) == 147
    assert report["source"] == "flowers.csv"

def test_quality_report_counts_outliers_on_both_splits(trained):
    outliers = trained.quality["outliers"]
    assert set(outliers) == {"train", "test"} and list(outliers["train"]) == FEATURES
    assert trained.quality["split"] == dict(train=len(trained.train), test=len(trained.test))

def test_quality_gate_keeps_the_published_model(published):
    before = (published/"metadata.json").read_bytes()
    files_before = sorted(p.name for p in published.iterdir())
    with pytest.raises(QualityGateError, match="below the minimum"):
        publish(train_model(TrainParams(max_depth=1)), published)
    assert (published/"metadata.json").read_bytes() == before
    assert sorted(p.name for p in published.iterdir()) == files_before

def test_a_crash_while_publishing_keeps_the_published_model(published, trained, monkeypatch):
    before = (published/"metadata.json").read_bytes()
    files_before = sorted(p.name for p in published.iterdir())
    def crash(*args, **kwargs): raise OSError("disk full")
    monkeypatch.setattr(persistence, "_save_table", crash)  # after the model file is written, before the metadata
    with pytest.raises(OSError, match="disk full"): publish(trained, published)
    assert (published/"metadata.json").read_bytes() == before
    assert sorted(p.name for p in published.iterdir()) == files_before  # the half-published files are gone
    load_published_model(published)

def test_republishing_replaces_the_model_and_archives_the_old_one(published, trained):
    old = read_metadata(published)
    new = publish(trained, published)
    assert new["model_file"] != old["model_file"]
    assert sorted(p.name for p in published.glob("model-*.skops")) == [new["model_file"]]
    archived = published/"versions"/old["model_version"]
    assert (archived/old["model_file"]).is_file()
    assert json.loads((archived/"metadata.json").read_text())["model_sha256"] == old["model_sha256"]

def test_metadata_describes_the_model(published, trained):
    meta = read_metadata(published)
    assert meta["model_sha256"] == sha256_file(published/meta["model_file"])
    assert meta["data_sha256"] == trained.quality["data_sha256"]
    assert meta["params"] == vars(TrainParams())
    assert meta["metrics"]["accuracy"] == pytest.approx(trained.metrics["accuracy"])
    assert {"python", "scikit_learn", "skops"} <= set(meta["libraries"])
    assert meta["model_version"].endswith(meta["model_sha256"][:8])

def test_a_tampered_model_file_is_refused(published):
    model_file = published/read_metadata(published)["model_file"]
    data = bytearray(model_file.read_bytes())
    data[len(data) // 3] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the SHA-256"): load_published_model(published)

def test_a_model_with_untrusted_types_is_refused_even_with_a_matching_hash(published, trained):
    meta = read_metadata(published)
    model_file = published/meta["model_file"]
    sio.dump({"model": trained.pipeline, "payload": uuid.UUID(int=0)}, model_file)
    meta["model_sha256"] = sha256_file(model_file)
    (published/"metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match="untrusted types"): load_published_model(published)

def test_missing_model_and_broken_metadata_are_reported(tmp_path, published):
    with pytest.raises(ModelNotFoundError, match="iris-classifier train"): load_published_model(tmp_path/"nowhere")
    (published/"metadata.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"): load_published_model(published)

def test_parameters_cell_matches_train_params():
    import papermill as pm
    declared = pm.inspect_notebook(str(ROOT/"nbs"/"05_model_training.ipynb"))
    defaults = {k: ast.literal_eval(v["default"]) for k, v in declared.items()}
    for name, value in vars(TrainParams()).items():
        assert defaults.pop(name) == value, name
    assert defaults.pop("publish_run") is False  # Run All in Jupyter must not publish; the CLI turns it on
    assert defaults.pop("publish_uncompared") is False  # only `train --publish-uncompared` turns it on
    assert set(defaults) == {"data_path", "output_dir", "feedback_path", "run_id"}
