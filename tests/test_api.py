"""The JSON API through Flask's test client: /api/predict with every kind of bad input, /api/model, the probes,
limits, headers, metrics and the OpenAPI document."""
import json, math

import jsonschema
import pytest

from iris_classifier.core import FEATURES, SPECIES, read_metadata
from iris_classifier.data_processing import load_iris_frame
from iris_classifier.app import SECURITY_HEADERS, create_app

ROW = [5.1, 3.5, 1.4, 0.2]
ONE = dict(zip(FEATURES, ROW))

@pytest.fixture
def missing(tmp_path):
    "A client of an application whose model directory is empty"
    return create_app({"TESTING": True, "MODEL_DIR": tmp_path/"no-model"}).test_client()

def error(resp, status:int)->str:
    "The message of a JSON error response, after checking its status and shape"
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json and set(resp.json) == {"error"}, resp.get_data(as_text=True)
    return resp.json["error"]

def test_predicts_one_record(client, published):
    r = client.post("/api/predict", json=ONE)
    assert r.status_code == 200
    (p,) = r.json["predictions"]
    assert (p["species"], p["class_index"]) == ("setosa", 0)
    assert list(p["probabilities"]) == SPECIES and math.isclose(sum(p["probabilities"].values()), 1)
    assert r.json["model_version"] == read_metadata(published)["model_version"]

def test_predicts_a_batch_like_the_pipeline(client, trained):
    df = load_iris_frame()
    rows = df[FEATURES].to_dict("records")[:75] + df[FEATURES].to_numpy().tolist()[75:]  # objects and lists
    r = client.post("/api/predict", json={"instances": rows})
    assert r.status_code == 200
    assert [p["species"] for p in r.json["predictions"]] == list(trained.pipeline.predict(df[FEATURES]))
    expected = [SPECIES.index(s) for s in trained.pipeline.predict(df[FEATURES])]
    assert [p["class_index"] for p in r.json["predictions"]] == expected
    proba = trained.pipeline.predict_proba(df[FEATURES])
    assert [list(p["probabilities"].values()) for p in r.json["predictions"]] == proba.tolist()

def test_extra_keys_are_ignored(client):
    assert client.post("/api/predict", json=dict(ONE, id=7, species="unknown")).status_code == 200

@pytest.mark.parametrize("value, message", [
    (None, "must be a number (got null)"), ("5.1", 'must be a number (got "5.1")'),
    (True, "must be a number (got true)"),
    ([5.1], "must be a number (got [5.1])"), (0, "must be greater than 0"), (-1.5, "must be greater than 0"),
    (30.5, "must be at most 30 cm"), (1e308, "must be at most 30 cm"), (10**400, "must be at most 30 cm")])
def test_bad_values_are_named(client, value, message):
    msg = error(client.post("/api/predict", json={"instances": [ONE, dict(ONE, petal_length=value)]}), 400)
    assert msg.startswith(f"instances[1].petal_length {message}"), msg

@pytest.mark.parametrize("literal, message", [("NaN", "must be a number (got NaN)"),
                                              ("Infinity", "must be at most 30 cm"),
                                              ("-Infinity", "must be greater than 0")])
def test_non_finite_json_literals_are_refused(client, literal, message):
    body = json.dumps(ONE).replace("0.2", literal)  # Python's JSON parser accepts these literals
    assert message in error(client.post("/api/predict", data=body, content_type="application/json"), 400)

@pytest.mark.parametrize("body, message", [
    ({"sepal_length": 5.1}, "instances[0] is missing sepal_width, petal_length, petal_width"),
    ({}, "instances[0] is missing sepal_length"),
    ({"instances": []}, "Send at least one row"),
    ({"instances": {"a": 1}}, "`instances` must be a list"),
    ({"instances": [[5.1, 3.5, 1.4]]}, "or a list of 4 numbers"),
    ({"instances": ["5.1,3.5,1.4,0.2"]}, "must be an object with sepal_length"),
])
def test_bad_shapes_are_explained(client, body, message):
    assert message in error(client.post("/api/predict", json=body), 400)

@pytest.mark.parametrize("data, message", [("", "not valid JSON"), ("{sepal_length: 5.1}", "not valid JSON"),
                                           ("[5.1, 3.5, 1.4, 0.2]", "must be a JSON object"),
                                           ("null", "must be a JSON object"),
                                           ('"text"', "must be a JSON object"), (b"\xff\xfe", "not valid JSON")])
def test_bodies_that_are_not_json_objects(client, data, message):
    assert message in error(client.post("/api/predict", data=data, content_type="application/json"), 400)

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv", None])
def test_wrong_content_type_is_415(client, content_type):
    kw = {"content_type": content_type} if content_type else {}
    assert "Content-Type: application/json" in error(client.post("/api/predict", data=json.dumps(ONE), **kw), 415)

def test_too_many_rows_is_413(client, published):
    too_many = client.post("/api/predict", json={"instances": [ROW] * 1001})
    assert "1001 rows in one request; the limit is 1000" in error(too_many, 413)
    assert client.post("/api/predict", json={"instances": [ROW] * 1000}).status_code == 200
    small = create_app({"TESTING": True, "MODEL_DIR": published, "MAX_BATCH_ROWS": 3}).test_client()
    assert "the limit is 3" in error(small.post("/api/predict", json={"instances": [ROW] * 4}), 413)

def test_too_large_body_is_413(client):
    body = json.dumps({"instances": [ONE] * 200, "padding": "x" * 300_000})
    r = client.post("/api/predict", data=body, content_type="application/json")
    assert "larger than 262144 bytes" in error(r, 413)

def test_settings_come_from_the_environment(published, monkeypatch):
    monkeypatch.setenv("IRIS_MODEL_DIR", str(published))
    monkeypatch.setenv("IRIS_MAX_BATCH_ROWS", "2")
    app = create_app()
    assert (app.config["MAX_BATCH_ROWS"], app.debug) == (2, False)
    assert app.test_client().get("/readyz").status_code == 200
    assert create_app({"MAX_BATCH_ROWS": 5}).config["MAX_BATCH_ROWS"] == 5  # the test config wins

def test_debug_is_off_unless_asked_for(published, monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    assert not create_app({"MODEL_DIR": published}).debug
    monkeypatch.setenv("IRIS_DEBUG", "true")
    assert create_app({"MODEL_DIR": published}).debug

def test_wrong_method_is_405_json_with_allow(client):
    r = client.get("/api/predict")
    assert "not allowed" in error(r, 405)
    assert set(r.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert error(client.delete("/v2/models/iris-classifier/infer"), 405)

@pytest.mark.parametrize("path", ["/api/nope", "/api/predict/extra", "/v2/nope", "/v2/models/iris-classifier/explain"])
def test_unknown_api_paths_are_404_json(client, path):
    assert "not found" in error(client.get(path), 404)

def test_unknown_paths_are_json_for_clients_that_prefer_it(client):
    assert error(client.get("/nope", headers={"Accept": "application/json"}), 404)
    r = client.get("/nope", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.mimetype == "text/html" and "Page not found" in r.text

def test_model_metadata(client, published):
    r = client.get("/api/model")
    meta = read_metadata(published)
    assert r.status_code == 200
    assert {k: r.json[k] for k in meta} == meta
    assert (r.json["name"], r.json["prediction_path"]) == ("iris-classifier", "fast")

def test_probes(client, published):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready", "model_version": read_metadata(published)["model_version"]}

def test_without_a_model_liveness_is_200_and_the_rest_503(missing):
    assert missing.get("/healthz").status_code == 200
    for resp in [missing.get("/readyz"), missing.post("/api/predict", json=ONE), missing.get("/api/model"),
                 missing.get("/v2/health/ready"), missing.get("/v2/models/iris-classifier"),
                 missing.post("/v2/models/iris-classifier/infer", json={"inputs": []})]:
        msg = error(resp, 503)
        assert "No verified model is loaded (ModelNotFoundError" in msg
        assert "Run `iris-classifier train`" in msg and "restart the server" in msg
        assert "no-model" not in msg  # no server paths in what clients see

def test_a_damaged_model_is_refused(published, caplog):
    model = next(published.glob("model-*.skops"))
    model.write_bytes(model.read_bytes() + b"tampered")
    client = create_app({"TESTING": True, "MODEL_DIR": published}).test_client()
    assert "ModelIntegrityError" in error(client.get("/readyz"), 503)
    said = [r for r in caplog.records if "No model to serve" in r.getMessage()]
    assert [r.levelname for r in said] == ["ERROR"]  # said once, at start-up
    assert "does not match the SHA-256" in said[0].getMessage()  # the details are in the log

def test_unexpected_errors_are_500_without_a_trace(app, caplog):
    def broken(X): raise RuntimeError("secret internals")
    app.extensions["iris_classifier"].predictor.proba = broken
    msg = error(app.test_client().post("/api/predict", json=ONE), 500)
    assert msg == "Internal server error. It has been logged." and "secret" not in msg
    assert "secret internals" in caplog.text  # the traceback goes to the log

@pytest.mark.parametrize("method, path, kw", [("get", "/healthz", {}), ("get", "/", {}),
                                              ("post", "/api/predict", {"json": ONE}), ("get", "/api/nope", {}),
                                              ("post", "/api/predict", {"data": "x"}), ("get", "/static/style.css", {}),
                                              ("get", "/metrics", {})])
def test_security_headers_on_every_response(client, method, path, kw):
    r = getattr(client, method)(path, **kw)
    for name, value in SECURITY_HEADERS.items(): assert r.headers[name] == value, (path, name)
    assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"]

def test_metrics(client):
    client.post("/api/predict", json={"instances": [ROW, ROW, [6.3, 3.3, 6.0, 2.5]]})
    client.post("/api/predict", json={"instances": [[-1, 3.5, 1.4, 0.2]]})
    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.text
    assert 'iris_predictions_total{species="setosa"} 2.0' in text
    assert 'iris_predictions_total{species="virginica"} 1.0' in text
    assert 'iris_http_requests_total{endpoint="api.predict",method="POST",status="200"} 1.0' in text
    assert 'iris_http_errors_total{endpoint="api.predict",status="400"} 1.0' in text
    assert 'iris_http_request_duration_seconds_count{endpoint="probes.healthz"} 1.0' in text

def test_odd_methods_do_not_grow_the_metric_labels(client):
    client.open("/healthz", method="BREW")
    assert 'method="other"' in client.get("/metrics").text

## The OpenAPI document

API_BLUEPRINTS = ("api.", "v2.", "probes.", "feedback.")

def openapi_path(rule:str)->str: return rule.replace("<", "{").replace(">", "}")

def test_openapi_lists_exactly_the_api_routes(app, client):
    doc = client.get("/openapi.json").json
    jsonschema.Draft202012Validator.check_schema({"$defs": doc["components"]["schemas"]})
    routes = {(openapi_path(r.rule), m.lower())
              for r in app.url_map.iter_rules() if r.endpoint.startswith(API_BLUEPRINTS)
              for m in r.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert routes == documented

def check(doc:dict, path:str, method:str, resp):
    "Validate `resp` against the schema the document gives for this path, method and status"
    spec = doc["paths"][path][method]["responses"][str(resp.status_code)]
    content = spec["content"]
    if "application/json" not in content:
        assert resp.mimetype in content
        return
    jsonschema.validate(resp.json, {**content["application/json"]["schema"], "components": doc["components"]})

def test_responses_match_the_openapi_document(client, missing, published):
    doc = client.get("/openapi.json").json
    infer = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [ROW, ROW]}]}
    calls = [("/api/predict", "post", client.post("/api/predict", json=ONE)),
             ("/api/predict", "post", client.post("/api/predict", json={"instances": [ONE, ROW]})),
             ("/api/predict", "post", client.post("/api/predict", json={"instances": [[0, 0, 0, 0]]})),
             ("/api/predict", "post", client.post("/api/predict", data="x", content_type="text/plain")),
             ("/api/predict", "post", client.post("/api/predict", json={"instances": [ROW] * 1001})),
             ("/api/predict", "post", missing.post("/api/predict", json=ONE)),
             ("/api/model", "get", client.get("/api/model")), ("/openapi.json", "get", client.get("/openapi.json")),
             ("/healthz", "get", client.get("/healthz")), ("/readyz", "get", client.get("/readyz")),
             ("/readyz", "get", missing.get("/readyz")),
             ("/metrics", "get", client.get("/metrics")),
             ("/v2", "get", client.get("/v2")), ("/v2/health/live", "get", client.get("/v2/health/live")),
             ("/v2/health/ready", "get", client.get("/v2/health/ready")),
             ("/v2/models/{name}", "get", client.get("/v2/models/iris-classifier")),
             ("/v2/models/{name}", "get", client.get("/v2/models/x")),
             ("/v2/models/{name}/ready", "get", client.get("/v2/models/iris-classifier/ready")),
             ("/v2/models/{name}/infer", "post", client.post("/v2/models/iris-classifier/infer", json=infer)),
             ("/v2/models/{name}/infer", "post", client.post("/v2/models/iris-classifier/infer", json={"inputs": []}))]
    version = client.get("/api/model").json["model_version"]
    served = f"/v2/models/iris-classifier/versions/{version}"
    calls += [("/v2/models/{name}/versions/{version}", "get", client.get(served)),
              ("/v2/models/{name}/versions/{version}/ready", "get", client.get(f"{served}/ready")),
              ("/v2/models/{name}/versions/{version}/infer", "post", client.post(f"{served}/infer", json=infer))]
    token = "a-feedback-token-for-the-tests"
    fb = create_app({"TESTING": True, "MODEL_DIR": published, "FEEDBACK_TOKEN": token}).test_client()
    off = create_app({"TESTING": True, "MODEL_DIR": published, "FEEDBACK_TOKEN": token, "RECORDS": "off"}).test_client()
    rid = fb.post("/api/predict", json=ONE).json["request_id"]
    bearer, one = {"Authorization": f"Bearer {token}"}, {"request_id": rid, "species": "setosa"}
    calls += [("/api/feedback", "post", fb.post("/api/feedback", json=one, headers=bearer)),
              ("/api/feedback", "post", fb.post("/api/feedback", json=[one, dict(one, row=1)], headers=bearer)),
              ("/api/feedback", "post", fb.post("/api/feedback", json=dict(one, species="rose"), headers=bearer)),
              ("/api/feedback", "post", fb.post("/api/feedback", json=one)),
              ("/api/feedback", "post", client.post("/api/feedback", json=one, headers=bearer)),
              ("/api/feedback", "post", fb.post("/api/feedback", json=[one] * 1001, headers=bearer)),
              ("/api/feedback", "post", fb.post("/api/feedback", data="x", content_type="text/plain", headers=bearer)),
              ("/api/feedback", "post", off.post("/api/feedback", json=one, headers=bearer))]
    assert [r.status_code for p, _, r in calls if p == "/api/feedback"] == [200, 200, 400, 401, 404, 413, 415, 503]
    for path, method, resp in calls: check(doc, path, method, resp)
    # every operation exercised
    assert {(p, m) for p, m, _ in calls} == {(p, m) for p, item in doc["paths"].items() for m in item}
