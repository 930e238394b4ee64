"""Shared pytest fixtures: the project root, strict skips, a trained model published in a temporary directory,
and the server on loopback."""
import json, os, signal, socket, subprocess, sys, time
from pathlib import Path

import pytest
import requests

from iris_classifier.model_training import publish, train_model

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; never `playwright install`
# This machine has no internet: keep Chromium from trying to reach Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--disable-extensions"]

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

## The production server on a free loopback port

GUNICORN = Path(sys.executable).parent/"gunicorn"

def free_port()->int:
    "A loopback port that no one listens on now, for a server a test starts"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

class Server:
    "A server started by `command(port)` in `cwd`, with `env` and its output in files"
    def __init__(self, tmp:Path, command, env:dict, cwd:Path=ROOT):
        self.port, self.tmp = free_port(), tmp
        self.home = tmp/"home"
        self.home.mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("IRIS_", "PROMETHEUS_", "XDG_RUNTIME_DIR", "WEB_CONCURRENCY"))} | env
        self.proc = subprocess.Popen(command(self.port), cwd=cwd, env=dict(env, HOME=str(self.home)),
                                     stdout=(tmp/"stdout").open("w"), stderr=(tmp/"stderr").open("w"))

    def wait(self, timeout:float=180):
        "Return once the server answers liveness"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited: {self.stdout()} {self.stderr()}"
            try: return self.get("/healthz")
            except OSError: time.sleep(0.3)
        pytest.fail(f"the server did not answer in {timeout} s: {self.stdout()}")

    def request(self, path:str, body:dict|None=None, method:str|None=None,
                headers:dict|None=None)->tuple[int, requests.structures.CaseInsensitiveDict, bytes]:
        "Status, headers (looked up without regard to case: granian sends them in lower case) and body of a request"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", **(headers or {})} if data else headers or {}
        r = requests.request(method or ("POST" if data else "GET"), f"http://127.0.0.1:{self.port}{path}",
                             data=data, headers=headers, timeout=30)
        return r.status_code, r.headers, r.content

    def get(self, path:str): return self.request(path)
    def stdout(self)->str: return (self.tmp/"stdout").read_text()
    def stderr(self)->str: return (self.tmp/"stderr").read_text()

    def logged(self, text:str, timeout:float=5)->str:
        "Its stdout once `text` is in it: under granian the access lines reach it in blocks, up to a second late"
        deadline = time.monotonic() + timeout
        while text not in (out := self.stdout()) and time.monotonic() < deadline: time.sleep(0.1)
        return out

    def stop(self)->int:
        "SIGTERM, as Kubernetes sends it; the exit code"
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

def container_command(port:int, # loopback port to bind
                     )->list[str]:
    "granian with the package's settings, as the container's CMD runs it"
    return [sys.executable, "-m", "iris_classifier.granian_conf", "--host", "127.0.0.1", "--port", str(port)]

def gunicorn_command(port:int, # loopback port to bind
                    )->list[str]:
    "gunicorn with the package's settings, the server one can choose instead"
    return [str(GUNICORN), "--config", "python:iris_classifier.gunicorn_conf", "-b", f"127.0.0.1:{port}"]

LIVE_FEEDBACK_TOKEN = "live-server-feedback-token"  # feedback is on, as in production, so every route can be exercised

@pytest.fixture(scope="session")
def live_server(trained, tmp_path_factory):
    "The server as the container runs it (two workers), serving a published model on a free loopback port, all session"
    models = tmp_path_factory.mktemp("live-model")
    publish(trained, models/"model")
    server = Server(tmp_path_factory.mktemp("live"), container_command,
                    dict(IRIS_MODEL_DIR=str(models/"model"), WEB_CONCURRENCY="2",
                         IRIS_RECORDS_DIR=str(tmp_path_factory.mktemp("live-records")),
                         IRIS_FEEDBACK_TOKEN=LIVE_FEEDBACK_TOKEN))
    try:
        server.wait()
        yield server
    finally:
        if server.proc.poll() is None: server.stop()

@pytest.fixture(scope="session")
def browser():
    "Debian's headless Chromium driven by Playwright, for the session's browser tests"
    if not CHROMIUM.exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium, or `make system-deps`)")
    try: from playwright.sync_api import sync_playwright
    except ImportError: skip_or_fail("the playwright package is not installed (make setup)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
