"""What each entry point imports, read from `sys.modules` of a fresh process (start-up time is import time,
so this is how start-up stays fast without timing anything): `iris-classifier --help`, the refusal of a bad
training CSV, `runs` and `history`, and a real gunicorn worker with the project's settings."""
import json, os, subprocess, sys, textwrap, time
from pathlib import Path

from conftest import free_port
from iris_classifier.model_training import publish

TRAINING_ONLY = {"matplotlib", "papermill", "nbdev", "IPython", "ipykernel"}
SCIENTIFIC = {"sklearn", "scipy", "skops"}

def top_level(names:list[str])->set[str]: return {n.split(".")[0] for n in names}

def modules_after(code:str, tmp:Path)->set[str]:
    "Top-level modules imported once `code` has run in a fresh interpreter"
    out = tmp/"modules.json"
    probe = f"{code}\nimport json, sys\nopen({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules)))"
    subprocess.run([sys.executable, "-c", probe], cwd=tmp, check=True, capture_output=True, timeout=120)
    return top_level(json.loads(out.read_text()))

def test_help_imports_nothing_heavy(tmp_path):
    mods = modules_after("from iris_classifier.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass",
                         tmp_path)
    assert "iris_classifier" in mods and not mods & (TRAINING_ONLY | SCIENTIFIC | {"pandas", "numpy", "flask"})

def test_a_bad_training_csv_is_refused_before_scikit_learn_is_imported(tmp_path):
    (tmp_path/"bad.csv").write_text("sepal_length,sepal_width,petal_length,petal_width,species\n"
                                    "5.1,3.5,abc,0.2,setosa\n")
    mods = modules_after("from iris_classifier.cli import main\nassert main(['train', '--data', 'bad.csv']) == 2",
                         tmp_path)
    assert "pandas" in mods and not mods & (TRAINING_ONLY | SCIENTIFIC)

def test_runs_and_history_import_nothing_heavy(trained, tmp_path):
    publish(trained, tmp_path/"artifacts"/"model")
    mods = modules_after("from iris_classifier.cli import main\n"
                         "assert main(['runs', '--output-dir', 'artifacts']) == 0\n"
                         "assert main(['history', '--output-dir', 'artifacts']) == 0", tmp_path)
    assert {"iris_classifier"} <= mods and not mods & (TRAINING_ONLY | SCIENTIFIC | {"pandas", "numpy", "flask"})

PROBE_CONFIG = """
from iris_classifier.gunicorn_conf import *
from iris_classifier import gunicorn_conf

def post_worker_init(worker):
    "The project's hook, then write down what this worker has imported"
    gunicorn_conf.post_worker_init(worker)
    import json, os, sys
    open(os.path.join(os.environ["MODULES_DIR"], str(os.getpid())), "w").write(json.dumps(sorted(sys.modules)))
"""

def worker_modules(tmp:Path, model:Path)->set[str]:
    "What a gunicorn worker with the project's settings has imported once it has loaded the application"
    (tmp/"probe_conf.py").write_text(textwrap.dedent(PROBE_CONFIG))
    (tmp/"modules").mkdir()
    env = dict(os.environ, PYTHONPATH=str(tmp), IRIS_MODEL_DIR=str(model), MODULES_DIR=str(tmp/"modules"),
               HOME=str(tmp))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:probe_conf",
                             "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"],
                            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any((tmp/"modules").iterdir()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        written = list((tmp/"modules").iterdir())
        assert written, f"the worker wrote no module list (gunicorn exit code: {proc.poll()})"
        time.sleep(0.2)  # the file is written in one call; give it a moment to be closed
        return top_level(json.loads(written[0].read_text()))
    finally:
        proc.terminate()
        proc.wait(timeout=60)

def test_a_gunicorn_worker_imports_no_training_or_scientific_stack(trained, tmp_path):
    publish(trained, tmp_path/"model")
    mods = worker_modules(tmp_path, tmp_path/"model")
    assert {"flask", "prometheus_client", "iris_classifier"} <= mods
    assert not mods & TRAINING_ONLY, mods & TRAINING_ONLY
    assert not mods & (SCIENTIFIC | {"pandas", "numpy"}), \
        "the usual model is served from its tree table, without the scientific stack"
