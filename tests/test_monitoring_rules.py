"""The monitoring files in ops/monitoring: the rules pass `promtool check rules` and their `promtool test rules` unit
tests, the GKE manifest agrees with the rules file and the Deployment (ops/check_pipeline.py), and every metric the
rules and the dashboard read is one the server exports or a rule records. Fast: no server, no Prometheus."""
import copy, json, re, shutil, subprocess, sys

import numpy as np
import pytest
import yaml

from conftest import ROOT, skip_or_fail
from iris_classifier.app import create_app
from iris_classifier.monitoring import ALERT_MIN_ROWS, PSI_EPS, psi

sys.path.insert(0, str(ROOT/"ops"))
import check_pipeline  # noqa: E402

MONITORING = ROOT/"ops"/"monitoring"
RULES = yaml.safe_load((MONITORING/"rules.yml").read_text())
GKE = list(yaml.safe_load_all((MONITORING/"gke-managed-prometheus.yaml").read_text()))
MANIFEST = list(yaml.safe_load_all((ROOT/"kubernetes-deployment.yaml").read_text()))
DASHBOARD = json.loads((MONITORING/"grafana-dashboard.json").read_text())
ALERTS = {"IrisInputDrift", "IrisPredictedSpeciesShift", "IrisHighErrorRatio", "IrisSlowPredictions", "IrisPodNotReady",
          "IrisRecordsLost"}

def promtool()->str:
    path = shutil.which("promtool")
    if not path: skip_or_fail("promtool is not installed (Debian: apt-get install prometheus, or `make system-deps`)")
    return path

def test_rules_pass_promtool_check():
    r = subprocess.run([promtool(), "check", "rules", "rules.yml"], cwd=MONITORING, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "SUCCESS: 15 rules found" in r.stdout, r.stdout + r.stderr

def test_rules_pass_their_promtool_unit_tests():
    r = subprocess.run([promtool(), "test", "rules", "rules.test.yml"], cwd=MONITORING, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr

def test_the_unit_tests_catch_a_psi_that_assumes_ten_percent_bins(tmp_path):
    ("Mutation check: a PSI rule that assumed every bin holds 10 % of the training split would report drift on typical "
     "petal widths")
    text = (MONITORING/"rules.yml").read_text().replace("clamp_min(iris:reference_bin_ratio, 0.001)", "0.1")
    (tmp_path/"rules.yml").write_text(text)
    shutil.copy(MONITORING/"rules.test.yml", tmp_path)
    r = subprocess.run([promtool(), "test", "rules", "rules.test.yml"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    out = r.stdout + r.stderr
    # PSI 0.525 instead of 0
    assert r.returncode != 0 and 'feature="petal_width", model_version="v1"} 5.25E-01' in out, out

def promtool_test(tmp_path, rules:str, tests:list[dict])->subprocess.CompletedProcess:
    "Run promtool's unit tests `tests` on the rules text `rules`, in `tmp_path`"
    (tmp_path/"rules.yml").write_text(rules)
    (tmp_path/"t.yml").write_text(yaml.safe_dump(dict(rule_files=["rules.yml"], evaluation_interval="1m", tests=tests)))
    return subprocess.run([promtool(), "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)

ONE_HOUR = {  # name: training shares of petal_length's ten bins, and the rows an hour put in each
    "identical 100-row bins with empty ones": ([0.2, 0.0] + [0.1] * 8, [20, 0] + [10] * 8),
    "a row in a bin training left empty": ([0.2, 0.0] + [0.1] * 8, [19, 1] + [10] * 8),
    "live rows in two bins only": ([0.1] * 10, [0, 0, 0, 0, 0, 0, 0, 0, 60, 40]),
    "a calm hour of 100 rows": ([0.1] * 10, [8, 13, 9, 11, 10, 7, 12, 10, 9, 11]),
}

@pytest.mark.parametrize("case", ONE_HOUR)
def test_prometheus_and_monitor_compute_the_same_psi_from_the_same_counts(case, tmp_path):
    ("Issue 25, finding 6: the rule floored shares at 0.001 and `monitor` at 0.0001, so the same bins gave 0.409 and "
     "0.587")
    reference, rows = ONE_HOUR[case]
    label = lambda b: f'feature="petal_length",bin="{b}",model_version="v1"'
    series = [dict(series=f"iris_reference_bin_ratio{{{label(b)}}}", values=f"{v}x70") for b, v in enumerate(reference)]
    # n a minute
    series += [dict(series=f"iris_input_bin_total{{{label(b)}}}", values=f"0+{n}x70") for b, n in enumerate(rows)]
    expected = round(psi(np.array(reference), np.array(rows) / sum(rows)), 4)
    check = dict(expr="round(iris:input_psi:1h, 0.0001)", eval_time="65m",
                 exp_samples=[dict(labels='{feature="petal_length",model_version="v1"}', value=expected)])
    tests = [dict(interval="1m", input_series=series, promql_expr_test=[check])]
    r = promtool_test(tmp_path, (MONITORING/"rules.yml").read_text(), tests)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, (expected, r.stdout + r.stderr)
    assert "clamp_min(iris:reference_bin_ratio, %s)" % PSI_EPS in (MONITORING/"rules.yml").read_text()

def test_the_drift_alert_waits_for_the_rows_the_simulation_asks_for():
    "Issue 25, finding 7: calm hours of 100 rows exceeded PSI 0.25 one time in ten; the chapter found 200 rows enough"
    (alert,) = [r for g in RULES["groups"] for r in g["rules"] if r.get("alert") == "IrisInputDrift"]
    assert re.search(rf"iris:input_rows:1h >= {ALERT_MIN_ROWS}$", alert["expr"].strip()), alert["expr"]

def test_the_unit_tests_catch_rules_that_add_up_two_model_versions(tmp_path):
    "Mutation check: rules without `model_version` would add up a rollout's two sets of bins (PSI 0.48 on calm traffic)"
    text = (MONITORING/"rules.yml").read_text().replace("model_version, ", "")
    (tmp_path/"rules.yml").write_text(text)
    shutil.copy(MONITORING/"rules.test.yml", tmp_path)
    r = subprocess.run([promtool(), "test", "rules", "rules.test.yml"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "name: during a rollout each version is compared with its own reference" in out, out
    print(out[out.index("during a rollout"):][:600])

def test_every_required_alert_is_there():
    alerts = {r["alert"] for g in RULES["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == ALERTS

def test_the_gke_manifest_agrees_with_the_rules_and_the_deployment():
    assert check_pipeline.monitoring_problems(GKE, RULES, MANIFEST) == []

def _monitor(docs): return next(d for d in docs if d["kind"] == "PodMonitoring")
def _rules(docs): return next(d for d in docs if d["kind"] == "Rules")

@pytest.mark.parametrize("mutate, expected", [
    (lambda d: _monitor(d)["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "roses"}),
     "does not select"),
    (lambda d: _monitor(d)["spec"]["endpoints"][0].update(port="metrics"), "not a named port"),
    (lambda d: _monitor(d)["spec"]["endpoints"][0].pop("interval"), "no interval"),
    (lambda d: _rules(d)["spec"]["groups"][0]["rules"].pop(), "differ from ops/monitoring/rules.yml"),
    (lambda d: d.remove(_rules(d)), "no Rules"),
    (lambda d: _monitor(d)["metadata"].update(name="iris"), "`up` must be selected by job=\"iris\""),
])
def test_the_monitoring_check_catches(mutate, expected):
    docs = copy.deepcopy(GKE)
    mutate(docs)
    problems = check_pipeline.monitoring_problems(docs, RULES, MANIFEST)
    assert any(expected in p for p in problems), problems

@pytest.mark.parametrize("rule, expected", [
    ({"record": "x", "alert": "X", "expr": "1"}, "exactly one of record and alert"),
    ({"record": "not a name", "expr": "1"}, "not a valid metric name"),
    ({"record": "x", "expr": "1", "annotations": {"summary": "s"}}, "only for alerts"),
    ({"alert": "X", "expr": "1", "annotations": {"summary": "s", "description": "d"}}, "severity label"),
    ({"alert": "X", "expr": "1", "labels": {"severity": "warning"}, "annotations": {"summary": "s"}},
     "summary and description"),
])
def test_rule_check_catches(rule, expected):
    assert any(expected in p for p in check_pipeline.rule_problems("g", rule))

def test_the_feedback_token_comes_from_an_optional_secret():
    dockerfile = (ROOT/"Dockerfile").read_text()
    assert check_pipeline.manifest_problems(MANIFEST, dockerfile, check_pipeline.GRACEFUL_TIMEOUT) == []
    docs = copy.deepcopy(MANIFEST)
    env = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    next(e for e in env if e["name"] == "IRIS_FEEDBACK_TOKEN").update(value="in-plain-sight", valueFrom=None)
    problems = check_pipeline.manifest_problems(docs, dockerfile, check_pipeline.GRACEFUL_TIMEOUT)
    assert any("IRIS_FEEDBACK_TOKEN" in p for p in problems)

## What the rules and the dashboard read exists

@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    "Names of the metric families a server exports once it has answered a prediction and feedback"
    from iris_classifier.model_training import publish
    dest = tmp_path_factory.mktemp("model")/"model"
    publish(trained, dest)
    token = "a-token-of-sixteen-characters"
    client = create_app({"TESTING": True, "MODEL_DIR": dest, "RECORDS": "off", "FEEDBACK_TOKEN": token}).test_client()
    rid = client.post("/api/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).json["request_id"]
    bearer = {"Authorization": f"Bearer {token}"}
    client.post("/api/feedback", json={"request_id": rid, "species": "setosa"}, headers=bearer)
    lines = client.get("/metrics").text.splitlines()
    return {l.split("{")[0].split(" ")[0] for l in lines if l and not l.startswith("#")}

def metric_names(expr:str)->set[str]:
    ("Metric names an expression selects (identifiers followed by `{`, `[` or a space that are not functions or "
     "keywords)")
    expr = re.sub(r'"[^"]*"', '""', expr)  # no label values
    words = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    keywords = {"sum", "count", "max", "min", "avg", "by", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "le", "feature", "bin", "model_version", "species", "endpoint", "kind", "status",
                "job", "instance", "__rate_interval"}
    return {w for w in words if not w in keywords and not re.fullmatch(r"\d.*|[smhd]", w)}

def recorded()->set[str]: return {r["record"] for g in RULES["groups"] for r in g["rules"] if "record" in r}

def test_the_rules_read_only_what_the_server_exports(exported):
    used = set().union(*(metric_names(r["expr"]) for g in RULES["groups"] for r in g["rules"]))
    assert used - recorded() - {"up"} <= exported
    assert used > {"iris_input_bin_total", "iris_reference_bin_ratio", "iris_predictions_total"}

def test_the_dashboard_shows_what_the_issue_asks_for_from_what_exists(exported):
    targets = [t for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    exprs = [t["expr"] for t in targets]
    used = set().union(*map(metric_names, exprs))
    assert used - recorded() - {"up"} <= exported
    for shown in ["iris_http_requests_total", "iris_http_request_duration_seconds_bucket", "iris_predictions_total",
                  "iris:input_psi:1h", "iris:input_bin_ratio:1h"]:
        assert shown in used, shown  # traffic, errors, latency, predictions by species, drift per measurement
    assert all(p["datasource"]["uid"] == "${datasource}" for p in DASHBOARD["panels"] if p["type"] != "row")
    assert {v["name"] for v in DASHBOARD["templating"]["list"]} == {"datasource", "feature"}
