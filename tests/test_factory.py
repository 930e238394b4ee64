"The application factory's configuration order: defaults, then `IRIS_*` environment variables, then the test config."
import os

import pytest

from iris_classifier.app import DEFAULTS, create_app
from iris_classifier.core import read_metadata

@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    "No `IRIS_*` variable of the developer's shell leaks into these tests"
    for name in [n for n in os.environ if n.startswith("IRIS_")]: monkeypatch.delenv(name)

def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default model directory, ./artifacts/model, is empty here
    app = create_app()
    assert {k: app.config[k] for k in DEFAULTS} == DEFAULTS
    assert not app.testing and app.extensions["iris_classifier"].predictor is None

def test_the_environment_overrides_the_defaults(published, monkeypatch):
    monkeypatch.setenv("IRIS_MODEL_DIR", str(published))
    monkeypatch.setenv("IRIS_MAX_BATCH_ROWS", "2")  # parsed as JSON, so a number
    app = create_app()
    assert app.config["MAX_BATCH_ROWS"] == 2 and app.config["MODEL_NAME"] == DEFAULTS["MODEL_NAME"]
    assert app.extensions["iris_classifier"].predictor.version == read_metadata(published)["model_version"]
    assert app.test_client().post("/api/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 3}).status_code == 413

def test_the_test_config_overrides_the_environment(published, tmp_path, monkeypatch):
    monkeypatch.setenv("IRIS_MODEL_DIR", str(tmp_path/"nowhere"))
    monkeypatch.setenv("IRIS_MAX_BATCH_ROWS", "2")
    app = create_app({"TESTING": True, "MODEL_DIR": published, "MAX_BATCH_ROWS": 7})
    assert app.testing and app.config["MAX_BATCH_ROWS"] == 7
    assert app.extensions["iris_classifier"].predictor is not None

def test_nothing_is_read_at_import(published, monkeypatch):
    "Settings made after the module was imported still count: the factory reads them when it runs"
    monkeypatch.setenv("IRIS_MODEL_NAME", "lilies")
    app = create_app({"MODEL_DIR": published})
    assert app.test_client().get("/v2/models/lilies/ready").json == {"name": "lilies", "ready": True}

def test_debug_only_when_asked(monkeypatch):
    assert not create_app({"TESTING": True}).debug
    monkeypatch.setenv("IRIS_DEBUG", "true")
    assert create_app({"TESTING": True}).debug
