"""The wheel as a user (and the container image) gets it: built from this checkout, installed `--no-deps`
into a fresh virtual environment without pip or development tools, next to the hash-pinned runtime lock
and the `train` extra's pinned requirements; then run from a directory outside the checkout with a clean
environment (no PYTHONPATH, no IRIS_* variables): `--help`, `train` through papermill with the notebook
the package carries, `predict` on a CSV, and `serve` answering one HTTP request the way `predict` does;
then `predict --engine dask` says what to install, and scores like the local engine once the `[dask]`
extra's pins are installed.
"""

import csv, json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port, skip_or_fail

pytestmark = pytest.mark.slow

UV = Path(os.environ.get("UV") or ROOT/".tools"/"bin"/"uv")
# Near the versicolor/virginica border, so the probabilities say something.
ROW = {"sepal_length": 6.0, "sepal_width": 2.7, "petal_length": 5.1, "petal_width": 1.6}

def uv(*args, cwd=ROOT):
    "Run uv as the Makefile does (never downloading a Python, whatever environment is active); its output"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"UV_PYTHON_DOWNLOADS": "never"}
    proc = subprocess.run([str(UV), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"uv {' '.join(map(str, args))}:\n{proc.stderr[-3000:]}"
    return proc.stdout

@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    "The project's wheel, built as ops/build-image.sh builds it (from an sdist)"
    if not UV.exists():
        skip_or_fail(f"uv is not installed at {UV} (make setup)")
    out = tmp_path_factory.mktemp("dist")
    uv("build", "--quiet", "--out-dir", out, ROOT)
    (whl,) = out.glob("iris_classifier-*.whl")
    return whl

@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    "A fresh environment: the runtime lock, the wheel without dependencies, then the `train` extra's pins; its root"
    root = tmp_path_factory.mktemp("installed")/"venv"
    python = root/"bin"/"python"
    uv("venv", "--quiet", "--python", sys.executable, root, cwd=root.parent)
    uv("pip", "install", "--quiet", "--python", python, "--require-hashes", "-r", ROOT/"requirements.lock")
    uv("pip", "install", "--quiet", "--python", python, "--no-deps", wheel)
    uv("pip", "check", "--python", python)  # the lock alone satisfies the wheel, as in the image
    train = root.parent/"train-requirements.txt"
    uv("export", "--quiet", "--no-emit-project", "--no-dev", "--extra", "train", "--format", "requirements-txt",
       "--no-header", "-o", train)
    uv("pip", "install", "--quiet", "--python", python, "--require-hashes", "-r", train)
    return root

@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    "A working directory outside the checkout, with its own HOME (papermill's kernel writes its runtime files there)"
    cwd = tmp_path_factory.mktemp("outside")
    (cwd/"home").mkdir()
    return cwd

def clean_env(outside):
    "Only what a login shell on a fresh machine has: no PYTHONPATH, no IRIS_*, no active virtualenv"
    return {"PATH": "/usr/bin:/bin", "HOME": str(outside/"home"), "LANG": "C.UTF-8"}

def run(venv, outside, *args):
    "Run the venv's `args[0]` with the rest in `outside`, in a clean environment"
    return subprocess.run([str(venv/"bin"/args[0]), *map(str, args[1:])], cwd=outside, env=clean_env(outside),
                          capture_output=True, text=True, timeout=300)

@pytest.fixture(scope="module")
def training(venv, outside):
    "`iris-classifier train` into artifacts/ under `outside`; that directory and the finished process"
    return outside/"artifacts", run(venv, outside, "iris-classifier", "train", "--output-dir", "artifacts")

def test_help_answers_from_the_installed_package(venv, outside):
    proc = run(venv, outside, "iris-classifier", "--help")
    assert proc.returncode == 0, proc.stderr
    assert all(command in proc.stdout for command in ("train", "predict", "serve")), proc.stdout
    where = run(venv, outside, "python", "-c", "import iris_classifier; print(iris_classifier.__file__)")
    assert where.stdout.startswith(str(venv/"lib")), where.stdout + where.stderr  # the wheel, not the checkout

def test_papermill_uses_the_venvs_own_kernel(venv, outside):
    "The kernel named python3 is the one ipykernel installed into the venv (argv `python`: the venv's interpreter)"
    probe = ("import json; from jupyter_client.kernelspec import KernelSpecManager as K; "
             "s = K().get_kernel_spec('python3'); print(json.dumps([s.resource_dir, s.argv[0]]))")
    proc = run(venv, outside, "python", "-c", probe)
    assert proc.returncode == 0, proc.stderr
    resource_dir, interpreter = json.loads(proc.stdout)
    assert resource_dir.startswith(str(venv)) and interpreter in ("python", str(venv/"bin"/"python")), proc.stdout

def test_train_runs_the_packaged_notebook(training):
    out, proc = training
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out/"model"/"metadata.json").is_file()
    report = json.loads(next((out/"runs").glob("*/05_model_training.ipynb")).read_text())
    assert any(cell.get("outputs") for cell in report["cells"]), "the report notebook was not executed"

def post(url:str, body:dict)->dict:
    "The JSON answer to POSTing `body` as JSON to `url`"
    r = requests.post(url, json=body, timeout=10)
    r.raise_for_status()
    return r.json()

def wait_ready(base:str, proc:subprocess.Popen, seconds:float=60):
    "Return once the server at `base` says it is ready"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited before it was ready"
        try:
            if requests.get(f"{base}/readyz", timeout=2).ok: return
        except requests.ConnectionError: pass
        time.sleep(0.3)
    pytest.fail(f"{base}/readyz not ready within {seconds} s")

def test_predict_and_serve_give_the_same_answer(venv, outside, training):
    out, proc = training
    assert proc.returncode == 0, proc.stderr[-3000:]
    (outside/"rows.csv").write_text(",".join(ROW) + "\n" + ",".join(map(str, ROW.values())) + "\n")
    predicted = run(venv, outside, "iris-classifier", "predict", "rows.csv", "--model-dir", out/"model",
                    "-o", "predicted.csv")
    assert predicted.returncode == 0, predicted.stderr
    (row,) = csv.DictReader((outside/"predicted.csv").open())

    port = free_port()
    with (outside/"serve.log").open("w") as log:
        server = subprocess.Popen([str(venv/"bin"/"iris-classifier"), "serve", "--port", str(port), "--workers", "1",
                                   "--model-dir", str(out/"model")],
                                  cwd=outside, env=clean_env(outside), stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server)
        (answer,) = post(f"{base}/api/predict", {"instances": [ROW]})["predictions"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, (outside/"serve.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    assert answer["species"] == row["predicted_species"]
    assert answer["probabilities"] == pytest.approx({k: float(row[f"proba_{k}"]) for k in answer["probabilities"]})

def test_base_install_scores_locally_and_the_dask_extra_finds_the_engine(venv, outside, training):
    """The base install streams a file through the local engine and names the extra for Dask; with the extra's pins,
    Dask scores it alike"""
    out, proc = training
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [",".join(["id", *ROW])] + [f"{i},{5 + i % 30/10},{2.5 + i % 7/10},{1 + i % 60/10},{0.1 + i % 25/10}"
                                       for i in range(500)]
    (outside/"many.csv").write_text("\n".join(rows) + "\n")
    predict = lambda *more: run(venv, outside, "iris-classifier", "predict", "many.csv", "--model-dir", out/"model",
                                *more)
    local = predict("-o", "local.parquet")
    assert local.returncode == 0 and "Scored 500 row(s) and rejected 0" in local.stderr, local.stderr
    missing = predict("-o", "dask.parquet", "--engine", "dask")
    assert missing.returncode == 2 and "pip install 'iris_classifier[dask]'" in missing.stderr, missing.stderr
    extra = outside.parent/"dask-requirements.txt"
    uv("export", "--quiet", "--no-emit-project", "--no-dev", "--extra", "dask", "--format", "requirements-txt",
       "--no-header", "-o", extra)
    uv("pip", "install", "--quiet", "--python", venv/"bin"/"python", "--require-hashes", "-r", extra)
    dask = predict("-o", "dask.parquet", "--engine", "dask", "--workers", "1")
    assert dask.returncode == 0 and "Scored 500 row(s)" in dask.stderr, dask.stderr
    assert (outside/"dask.parquet"/"_SUCCESS").exists()
    import pandas as pd
    scored = [pd.read_parquet(outside/p).sort_values("id", ignore_index=True)
              for p in ("local.parquet", "dask.parquet")]
    pd.testing.assert_frame_equal(*scored)
