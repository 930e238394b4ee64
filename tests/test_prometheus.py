"""End to end with a real Prometheus (Debian's `prometheus`): it scrapes the production server (gunicorn, two
workers) on loopback every second and evaluates ops/monitoring/rules.yml every second, its windows shortened from
hours and minutes to 20 seconds and its `for` durations to 5 seconds. The test sends typical flowers (rows
resampled from the served model's training split) and then flowers whose petals are 1 cm longer: the drift alert
must stay quiet before the shift and become pending or firing, for petal length only, after it. About a minute."""
import json, random, re, shutil, subprocess, time, urllib.parse, urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, Server, container_command, free_port, skip_or_fail
from iris_classifier.core import FEATURES
from iris_classifier.model_training import publish
from iris_classifier.persistence import load_reference

MONITORING = ROOT/"ops"/"monitoring"
WINDOW, HOLD = "20s", "5s"

def shortened(rules:str)->str:
    "The rules with every range window set to `WINDOW` and every `for` to `HOLD`, so that they act within seconds"
    return re.sub(r"^(\s+for:) \S+$", rf"\1 {HOLD}", re.sub(r"\[\d+[smhd]\]", f"[{WINDOW}]", rules), flags=re.M)

def test_shortened_rules_change_only_durations():
    text = (MONITORING/"rules.yml").read_text()
    short = shortened(text)
    assert "[1h]" in text and "[1h]" not in short and "[5m]" not in short and "for: 30m" not in short
    assert re.sub(r"\[\d+[smhd]\]|for: \S+", "", text) == re.sub(r"\[\d+[smhd]\]|for: \S+", "", short)

class Prometheus:
    "A Prometheus on a free loopback port, scraping `target` and evaluating the shortened rules"
    def __init__(self, tmp:Path, target:str):
        binary = shutil.which("prometheus")
        if not binary:
            skip_or_fail("prometheus is not installed (Debian: apt-get install prometheus, or `make system-deps`)")
        (tmp/"rules.yml").write_text(shortened((MONITORING/"rules.yml").read_text()))
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "rule_files": ["rules.yml"],
                  "scrape_configs": [{"job_name": "iris-classifier", "static_configs": [{"targets": [target]}]}]}
        (tmp/"prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.port, self.log = free_port(), tmp/"prometheus.log"
        flags = [f"--config.file={tmp/'prometheus.yml'}", f"--storage.tsdb.path={tmp/'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"]
        self.proc = subprocess.Popen([binary, *flags],
                                     cwd=tmp, stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def get(self, path:str, **params)->dict:
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=10) as r: return json.loads(r.read() or b"{}")

    def wait(self, timeout:float=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200: return
            except OSError: time.sleep(0.3)
        pytest.fail(f"Prometheus was not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def query(self, expr:str)->dict[str, float]:
        "Instant query: the value of each series, by its `feature` label (or the whole label set)"
        data = self.get("/api/v1/query", query=expr)["data"]["result"]
        return {r["metric"].get("feature", json.dumps(r["metric"], sort_keys=True)): float(r["value"][1]) for r in data}

    def drift_alerts(self)->dict[str, str]:
        "The IrisInputDrift alerts now pending or firing: feature -> state"
        alerts = self.get("/api/v1/alerts")["data"]["alerts"]
        return {a["labels"]["feature"]: a["state"] for a in alerts if a["labels"]["alertname"] == "IrisInputDrift"}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

@pytest.fixture(scope="module")
def watched(trained, tmp_path_factory):
    "The production server with a published model, and a Prometheus watching it"
    models = tmp_path_factory.mktemp("models")
    publish(trained, models/"model")
    server = Server(tmp_path_factory.mktemp("server"), container_command,
                    dict(IRIS_MODEL_DIR=str(models/"model"), WEB_CONCURRENCY="2", IRIS_RECORDS="off"))
    prometheus = None
    try:
        server.wait()
        prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{server.port}")
        prometheus.wait()
        yield dict(server=server, prometheus=prometheus, reference=load_reference(models/"model")[0])
    finally:
        if prometheus: prometheus.stop()
        if server.proc.poll() is None: server.stop()

def send(server:Server, rows:list[list[float]], seconds:float, batch:int=20, check=lambda: None):
    "POST random batches of `rows` for `seconds`, calling `check` between batches; returns the number of rows sent"
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, _, _ = server.request("/api/predict", {"instances": random.sample(rows, batch)})
        assert status == 200
        sent += batch
        if check(): return sent
        time.sleep(0.02)
    return sent

def test_drift_alert_rises_after_the_shift_and_not_before(watched):
    server, prometheus, reference = watched["server"], watched["prometheus"], watched["reference"]
    random.seed(13)
    typical = [list(r) for r in reference[FEATURES].sample(2000, replace=True, random_state=13).itertuples(index=False)]
    longer = [[sl, sw, pl + 1.0, pw] for sl, sw, pl, pw in typical]
    before = []
    # a window and a half of typical traffic
    sent = send(server, typical, 30, check=lambda: before.append(prometheus.drift_alerts()))
    assert sent >= 200 and not any(before), before
    up = '{"__name__": "up", "instance": "127.0.0.1:%d", "job": "iris-classifier"}' % server.port
    assert prometheus.query('up{job="iris-classifier"}') == {up: 1.0}
    rows = prometheus.query("iris:input_rows:1h")
    # enough rows in the window for the alert to be armed
    assert set(rows) == set(FEATURES) and min(rows.values()) >= 100, rows
    steady = prometheus.query("max_over_time(iris:input_psi:1h[15s])")
    assert set(steady) == set(FEATURES) and max(steady.values()) < 0.1, steady  # stable, not merely below the threshold

    started, states = time.monotonic(), {}
    def alerted():
        states.update(prometheus.drift_alerts())
        return bool(states)
    send(server, longer, 60, check=alerted)
    assert states and set(states) == {"petal_length"} and states["petal_length"] in ("pending", "firing"), states
    psi = prometheus.query("iris:input_psi:1h")
    assert psi["petal_length"] > 0.25 and max(psi[f] for f in FEATURES if f != "petal_length") < 0.25, psi
    print(f"\ndrift alert {states['petal_length']} {time.monotonic() - started:.1f} s after the shift; PSI then: {psi}")

def test_every_dashboard_query_runs_on_prometheus(watched):
    prometheus = watched["prometheus"]
    dashboard = json.loads((MONITORING/"grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    empty = []
    for expr in exprs:
        query = expr.replace("$__rate_interval", "10s").replace("$feature", "petal_length")
        answer = prometheus.get("/api/v1/query", query=query)
        assert answer["status"] == "success", (expr, answer)
        if not answer["data"]["result"]: empty.append(expr)
    # nothing failed or was fed back here
    assert all("records_failed" in e or "feedback" in e or "4.." in e or "5.." in e for e in empty), empty
