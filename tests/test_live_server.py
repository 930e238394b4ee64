"""The production server for real: granian with `iris_classifier.granian_conf` on free loopback ports, spoken to over
HTTP. Three servers per module, started together: one with a published model, started the way the container
starts it, one without a model, started by `iris-classifier serve`, and gunicorn, started by `iris-classifier serve
--server gunicorn`. All run as the container would: nothing written to $HOME, logs on stdout."""
import importlib, json, sys
from pathlib import Path

import pytest

from conftest import Server, container_command
from iris_classifier.core import FEATURES
from iris_classifier.data_processing import load_iris_frame
from iris_classifier.model_training import publish

CLI = Path(sys.executable).parent/"iris-classifier"
ROW = [5.1, 3.5, 1.4, 0.2]

@pytest.fixture(scope="module")
def servers(trained, tmp_path_factory):
    ("A server with a published model (two workers, as in the container), one without (one worker, via the CLI), and "
     "gunicorn")
    models = tmp_path_factory.mktemp("models")
    publish(trained, models/"model")
    good = Server(tmp_path_factory.mktemp("good"), container_command,
                  dict(IRIS_MODEL_DIR=str(models/"model"), WEB_CONCURRENCY="2", PORT="1"),  # -b wins over PORT
                  cwd=tmp_path_factory.mktemp("anywhere"))  # the package carries everything it serves
    cli = lambda port: [str(CLI), "serve", "--port", str(port), "--workers", "1", "--model-dir", "none"]
    # a relative --model-dir: resolved where the command runs
    bare = Server(tmp_path_factory.mktemp("bare"), cli, {}, cwd=models)
    gunicorn = lambda port: [str(CLI), "serve", "--server", "gunicorn", "--port", str(port), "--workers", "2",
                             "--model-dir", "model"]
    # as in the image
    chosen = Server(tmp_path_factory.mktemp("gunicorn"), gunicorn, dict(PYTHONUNBUFFERED="1"), cwd=models)
    try:
        good.wait(), bare.wait(), chosen.wait()
        yield dict(good=good, bare=bare, gunicorn=chosen)
    finally:
        for s in (good, bare, chosen):
            if s.proc.poll() is None: s.stop()

@pytest.fixture(scope="module")
def server(servers): return servers["good"]

def test_probes(server):
    status, _, body = server.get("/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = server.get("/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"

def test_predict_over_http(server):
    status, headers, body = server.request("/api/predict", {"instances": [ROW, [6.3, 3.3, 6.0, 2.5]]})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert [p["species"] for p in json.loads(body)["predictions"]] == ["setosa", "virginica"]

def test_v2_infer_with_a_batch(server, trained):
    df = load_iris_frame()
    tensor = {"name": "input-0", "shape": [150, 4], "datatype": "FP32", "data": df[FEATURES].to_numpy().tolist()}
    request = {"id": "live", "inputs": [tensor]}
    status, _, body = server.request("/v2/models/iris-classifier/infer", request)
    assert status == 200
    out = json.loads(body)
    assert out["id"] == "live" and out["outputs"][0]["data"] == list(trained.pipeline.predict(df[FEATURES]))
    status, _, body = server.get("/v2/models/iris-classifier/ready")
    assert (status, json.loads(body)["ready"]) == (200, True)

def test_errors_limits_and_headers_over_http(server):
    status, headers, body = server.get("/api/nope")
    assert status == 404 and json.loads(body)["error"] and headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["Referrer-Policy"] == "no-referrer"
    status, _, body = server.request("/api/predict", method="POST",
                                     headers={"Content-Type": "application/json", "Content-Length": "0"})
    assert status == 400
    big = {"instances": [ROW] * 1000, "padding": "x" * 300_000}
    status, _, body = server.request("/api/predict", big)
    assert status == 413 and "262144 bytes" in json.loads(body)["error"]
    status, headers, _ = server.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")

def test_metrics_add_up_all_workers(server):
    for _ in range(20): server.request("/api/predict", dict(zip(FEATURES, ROW)))
    status, headers, body = server.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    setosa = 'iris_predictions_total{species="setosa"}'
    counts = [float(line.split()[-1]) for line in body.decode().splitlines() if line.startswith(setosa)]
    assert counts and counts[0] >= 20  # in multiprocess mode one sample sums the workers

def test_runs_like_in_a_container(server):
    server.get("/healthz")
    out = server.logged('"GET /healthz HTTP/1.1" 200')  # the access log, flushed within a second with no more requests
    # app and server logs: stdout
    assert "Serving model" in out and "(history entry 1)" in out and "Started worker-2" in out
    assert '"GET /healthz HTTP/1.1" 200' in out
    # the container has no writable $HOME
    assert "Serving model" not in server.stderr() and not list(server.home.iterdir())

def test_gunicorn_is_one_option_away(servers):
    chosen = servers["gunicorn"]
    status, _, body = chosen.request("/api/predict", dict(zip(FEATURES, ROW)))
    assert status == 200 and json.loads(body)["predictions"][0]["species"] == "setosa"
    out = chosen.stdout()
    assert "Booting worker" in out and "GET /healthz" in out and "Serving model" in out
    assert not (chosen.home/".gunicorn").exists()  # no control socket: the container has no writable $HOME

def test_without_a_model_liveness_is_200_readiness_and_predictions_503(servers):
    bare = servers["bare"]
    assert bare.get("/healthz")[0] == 200 and bare.get("/v2/health/live")[0] == 200
    answers = [bare.get("/readyz"), bare.get("/v2/health/ready"),
               bare.request("/api/predict", dict(zip(FEATURES, ROW)))]
    for status, _, body in answers:
        assert status == 503 and "Run `iris-classifier train`" in json.loads(body)["error"]
    assert bare.stdout().count("No model to serve") == 1  # one worker: said once

def test_serve_binds_loopback_by_default(servers):
    bare = servers["bare"]
    assert f"Listening at: http://127.0.0.1:{bare.port}" in bare.stdout() and "Starting granian" in bare.stdout()
    # the model dir was resolved before gunicorn's chdir
    assert f"from {bare.tmp.parent}" not in bare.stdout() and "models" in bare.stdout()

def test_config_reads_the_environment(monkeypatch):
    import iris_classifier.gunicorn_conf as conf
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    conf = importlib.reload(conf)
    assert (conf.bind, conf.workers, conf.wsgi_app) == (["0.0.0.0:8123"], 5, "iris_classifier.app:create_app()")
    assert conf.control_socket_disable and conf.worker_tmp_dir in ("/dev/shm", None) and conf.graceful_timeout > 0
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert importlib.reload(conf).workers >= 2

def test_graceful_shutdown(servers):
    for s in servers.values():
        assert s.stop() == 0
        assert "Granian shutdown completed" in s.stdout() or "Handling signal: term" in s.stdout()
