"Shared pytest fixtures: the project root, strict skips, and a trained model published in a temporary directory."
import os
from pathlib import Path

import pytest

from iris_classifier.model_training import publish, train_model

ROOT = Path(__file__).resolve().parent.parent

def skip_or_fail(reason:str):
    "Skip with `reason`, or fail when IRIS_STRICT is set (CI installs everything, so a skip there is a bug)"
    if os.environ.get("IRIS_STRICT"): pytest.fail(f"{reason} (IRIS_STRICT is set, so this skip counts as a failure)")
    pytest.skip(reason)

@pytest.fixture(scope="session", autouse=True)
def scratch_records(tmp_path_factory):
    "Prediction records of the tests' applications go to a scratch directory, not to ./artifacts"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IRIS_RECORDS_DIR", str(tmp_path_factory.mktemp("records")))
        yield

@pytest.fixture(scope="session")
def trained():
    "A model trained in memory with the default parameters"
    return train_model()

@pytest.fixture
def published(trained, tmp_path):
    "A model directory holding a freshly published model; returns its path"
    dest = tmp_path/"model"
    publish(trained, dest)
    return dest

@pytest.fixture
def app(published):
    "The application (nbs/06_app.ipynb), testing mode, serving a freshly published model"
    from iris_classifier.app import create_app
    return create_app({"TESTING": True, "MODEL_DIR": published})

@pytest.fixture
def client(app):
    "A test client for `app`"
    return app.test_client()
