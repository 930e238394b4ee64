"The Open Inference Protocol (KServe V2) endpoints through Flask's test client: metadata, health, inference and its errors."
import pytest

from iris_classifier.core import FEATURES, SPECIES, read_metadata
from iris_classifier.data_processing import load_iris_frame
from iris_classifier.app import create_app

ROW = [5.1, 3.5, 1.4, 0.2]
URL = "/v2/models/iris-classifier"

def tensor(data, shape=None, datatype="FP64", name="input-0"):
    "One input tensor of an inference request"
    return {"name": name, "shape": shape or [len(data), 4], "datatype": datatype, "data": data}

def infer(client, *inputs, url=f"{URL}/infer", **extra):
    return client.post(url, json={"inputs": list(inputs), **extra})

def error(resp, status:int)->str:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json and set(resp.json) == {"error"}
    return resp.json["error"]

@pytest.fixture
def version(published): return read_metadata(published)["model_version"]

def test_server_metadata_and_health(client):
    meta = client.get("/v2").json
    assert meta["name"] == "iris-classifier" and meta["extensions"] == [] and meta["version"]
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}

def test_model_metadata(client, version):
    meta = client.get(URL).json
    assert (meta["name"], meta["versions"], meta["platform"]) == ("iris-classifier", [version], "sklearn")
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [("input-0", "FP64", [-1, 4])]
    assert meta["inputs"][0]["parameters"] == {"features": FEATURES, "accepted_datatypes": ["FP32", "FP64"]}
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]] == [("predict", "BYTES", [-1]), ("predict_proba", "FP64", [-1, 3])]
    assert meta["outputs"][1]["parameters"]["classes"] == SPECIES
    assert client.get(f"{URL}/versions/{version}").json == meta

def test_model_readiness(client, version):
    assert client.get(f"{URL}/ready").json == {"name": "iris-classifier", "ready": True}
    assert client.get(f"{URL}/versions/{version}/ready").status_code == 200

@pytest.mark.parametrize("path", ["/v2/models/roses", "/v2/models/roses/ready", "/v2/models/iris-classifier/versions/1",
                                  "/v2/models/iris-classifier/versions/1/ready"])
def test_unknown_models_and_versions_are_404(client, path):
    assert "Unknown" in error(client.get(path), 404)
    if not path.endswith("/ready"):
        assert "Unknown" in error(client.post(path + "/infer", json={"inputs": [tensor([ROW])]}), 404)

def test_infer_a_batch_nested_or_flat_like_the_pipeline(client, trained, version):
    df = load_iris_frame()
    rows = df[FEATURES].to_numpy().tolist()
    for data in [rows, [v for r in rows for v in r]]:
        r = infer(client, tensor(data, [150, 4]), id="batch-1")
        assert r.status_code == 200, r.json
        assert (r.json["model_name"], r.json["model_version"], r.json["id"]) == ("iris-classifier", version, "batch-1")
        predict, proba = r.json["outputs"]
        assert (predict["name"], predict["datatype"], predict["shape"]) == ("predict", "BYTES", [150])
        assert predict["data"] == list(trained.pipeline.predict(df[FEATURES]))
        assert (proba["name"], proba["datatype"], proba["shape"]) == ("predict_proba", "FP64", [150, 3])
        assert proba["data"] == trained.pipeline.predict_proba(df[FEATURES]).ravel().tolist()

def test_infer_one_row_fp32_with_requested_outputs(client, version):
    r = infer(client, tensor(ROW, [1, 4], "FP32"), outputs=[{"name": "predict_proba"}])
    assert [o["name"] for o in r.json["outputs"]] == ["predict_proba"] and "id" not in r.json
    r = infer(client, tensor([ROW]), url=f"{URL}/versions/{version}/infer", outputs=[{"name": "predict"}])
    assert r.json["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [1], "data": ["setosa"]}]

@pytest.mark.parametrize("body, message", [
    ({}, "`inputs` must be a list holding one tensor"),
    ({"inputs": []}, "`inputs` must be a list holding one tensor"),
    ({"inputs": [tensor([ROW]), tensor([ROW])]}, "`inputs` must be a list holding one tensor"),
    ({"inputs": ["x"]}, "`inputs` must be a list holding one tensor"),
    ({"inputs": [tensor([ROW], datatype="INT64")]}, 'inputs[0].datatype must be FP32 or FP64 (got "INT64")'),
    ({"inputs": [tensor([ROW], datatype="BYTES")]}, "must be FP32 or FP64"),
    ({"inputs": [tensor([ROW], shape=[4])]}, "inputs[0].shape must be [N, 4] with N >= 1 (got [4])"),
    ({"inputs": [tensor([ROW], shape=[1, 5])]}, "shape must be [N, 4]"),
    ({"inputs": [tensor([], shape=[0, 4])]}, "shape must be [N, 4] with N >= 1"),
    ({"inputs": [tensor([ROW], shape=[1.0, 4])]}, "shape must be [N, 4]"),
    ({"inputs": [tensor([ROW], shape=[2, 4])]}, "inputs[0].data must hold 8 numbers for shape [2, 4]"),
    ({"inputs": [tensor("5.1 3.5 1.4 0.2", shape=[1, 4])]}, "must hold 4 numbers"),
    ({"inputs": [tensor([[5.1, 3.5, 1.4, -0.2]])]}, "inputs[0].data[0].petal_width must be greater than 0 (got -0.2)"),
    ({"inputs": [tensor([[5.1, 3.5, "1.4", 0.2]])]}, 'inputs[0].data[0].petal_length must be a number (got "1.4")'),
    ({"inputs": [tensor([[5.1, 3.5, 1.4, 0.2], [5.1, 300, 1.4, 0.2]])]}, "inputs[0].data[1].sepal_width must be at most 30 cm"),
    ({"inputs": [tensor([ROW])], "outputs": [{"name": "explain"}]}, 'Unknown output(s) ["explain"]'),
])
def test_bad_requests_are_400_with_a_reason(client, body, message):
    assert message in error(client.post(f"{URL}/infer", json=body), 400)

def test_limits_and_content_type(client):
    assert "the limit is 1000" in error(infer(client, tensor([ROW] * 1001)), 413)
    assert "Content-Type: application/json" in error(client.post(f"{URL}/infer", data="{}", content_type="text/plain"), 415)
    assert error(client.get(f"{URL}/infer"), 405)

def test_without_a_model_readiness_and_inference_are_503(tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": tmp_path}).test_client()
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2").status_code == 200
    for resp in [client.get("/v2/health/ready"), client.get(f"{URL}/ready"), client.get(URL), infer(client, tensor([ROW]))]:
        assert "Run `iris-classifier train`" in error(resp, 503)

def test_predictions_are_counted(client):
    infer(client, tensor([ROW, [6.3, 3.3, 6.0, 2.5]]))
    text = client.get("/metrics").text
    assert 'iris_predictions_total{species="setosa"} 1.0' in text and 'iris_predictions_total{species="virginica"} 1.0' in text
