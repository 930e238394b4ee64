"""The Open Inference Protocol (KServe V2) endpoints through Flask's test client: metadata, health, inference
(JSON and binary tensor data) and its errors."""
import json, struct

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
    assert meta["name"] == "iris-classifier" and meta["extensions"] == ["binary_tensor_data"] and meta["version"]
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}

def test_model_metadata(client, version):
    meta = client.get(URL).json
    assert (meta["name"], meta["versions"], meta["platform"]) == ("iris-classifier", [version], "sklearn")
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [("input-0", "FP64", [-1, 4])]
    assert meta["inputs"][0]["parameters"] == {"features": FEATURES, "accepted_datatypes": ["FP32", "FP64"]}
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]] == [("predict", "BYTES", [-1]),
                                                                                 ("predict_proba", "FP64", [-1, 3])]
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
    ({"inputs": [tensor([ROW], shape=[1.5, 4])]}, "shape must be [N, 4]"),
    ({"inputs": [tensor([ROW], shape=[float("inf"), 4])]}, "shape must be [N, 4]"),
    ({"inputs": [tensor([ROW], shape=[10**4000, 4])]}, "shape must be [N, 4]"),
    ({"inputs": [tensor([ROW], name=None)]}, "inputs[0].name must be a string (got null)"),
    ({"inputs": [tensor([ROW], shape=[2, 4])]}, "inputs[0].data must hold 8 numbers for shape [2, 4]"),
    ({"inputs": [tensor("5.1 3.5 1.4 0.2", shape=[1, 4])]}, "must hold 4 numbers"),
    ({"inputs": [tensor([[5.1, 3.5, 1.4, -0.2]])]}, "inputs[0].data[0].petal_width must be greater than 0 (got -0.2)"),
    ({"inputs": [tensor([[5.1, 3.5, "1.4", 0.2]])]}, 'inputs[0].data[0].petal_length must be a number (got "1.4")'),
    ({"inputs": [tensor([[5.1, 3.5, 1.4, 0.2], [5.1, 300, 1.4, 0.2]])]},
     "inputs[0].data[1].sepal_width must be at most 30 cm"),
    ({"inputs": [tensor([ROW])], "outputs": [{"name": "explain"}]}, 'Unknown output(s) ["explain"]'),
    ({"inputs": [tensor([ROW])], "outputs": ["predict"]}, "`outputs` must be a list of objects"),
    ({"inputs": [tensor([ROW])], "id": {"a": 1}}, '`id` must be a string (got {"a": 1})'),
    ({"inputs": [tensor([ROW])], "id": 7}, "`id` must be a string (got 7)"),
    ({"inputs": [tensor([ROW])], "id": None}, "`id` must be a string (got null)"),
    ({"inputs": [tensor([ROW])], "outputs": None}, "`outputs` must be a list of objects"),
    ({"inputs": [tensor([ROW])], "parameters": None}, "parameters must be an object (got null)"),
    ({"inputs": [tensor([ROW])], "parameters": "binary"}, 'parameters must be an object (got "binary")'),
    ({"inputs": [tensor([ROW])], "parameters": {"binary_data_output": 1}},
     "parameters.binary_data_output must be true or false (got 1)"),
    ({"inputs": [dict(tensor([ROW]), parameters=[])]}, "inputs[0].parameters must be an object (got [])"),
    ({"inputs": [dict(tensor([ROW]), parameters={"shared_memory_region": "r"})]},
     "inputs[0].parameters.shared_memory_region asks for the shared memory extension"),
    ({"inputs": [tensor([ROW])], "outputs": [{"name": "predict", "parameters": {"binary_data": "true"}}]},
     'outputs[0].parameters.binary_data must be true or false (got "true")'),
    ({"inputs": [tensor([ROW])], "outputs": [{"name": "predict", "parameters": {"classification": 3}}]},
     "outputs[0].parameters.classification asks for the classification extension"),
    ({"inputs": [dict(tensor([ROW]), parameters={"binary_data_size": 32})]},
     "inputs[0] has both data and parameters.binary_data_size"),
])
def test_bad_requests_are_400_with_a_reason(client, body, message):
    assert message in error(client.post(f"{URL}/infer", json=body), 400)

def test_limits_and_content_type(client):
    assert "the limit is 1000" in error(infer(client, tensor([ROW] * 1001)), 413)
    r = client.post(f"{URL}/infer", data="{}", content_type="text/plain")
    assert "Content-Type: application/json" in error(r, 415)
    assert error(client.get(f"{URL}/infer"), 405)

def test_without_a_model_readiness_and_inference_are_503(tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": tmp_path}).test_client()
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2").status_code == 200
    for resp in [client.get("/v2/health/ready"), client.get(f"{URL}/ready"), client.get(URL),
                 infer(client, tensor([ROW]))]:
        assert "Run `iris-classifier train`" in error(resp, 503)

def test_predictions_are_counted(client):
    infer(client, tensor([ROW, [6.3, 3.3, 6.0, 2.5]]))
    text = client.get("/metrics").text
    assert 'iris_predictions_total{species="setosa"} 1.0' in text
    assert 'iris_predictions_total{species="virginica"} 1.0' in text

def test_json_without_a_content_type_as_tritons_client_sends_it(client):
    r = client.post(f"{URL}/infer", data=json.dumps({"inputs": [tensor([ROW])]}))
    assert r.status_code == 200 and r.json["outputs"][0]["data"] == ["setosa"]
    r = client.post("/api/predict", data=json.dumps(dict(zip(FEATURES, ROW))))
    assert "Content-Type: application/json" in error(r, 415)  # the JSON API still asks for it

def test_whole_numbers_in_a_shape_may_be_written_as_floats(client):
    r = infer(client, tensor([ROW, ROW], shape=[2.0, 4.0]))  # JSON Schema's `integer`
    assert r.json["outputs"][0]["data"] == ["setosa", "setosa"]

def test_empty_outputs_means_all_of_them(client):
    assert [o["name"] for o in infer(client, tensor([ROW]), outputs=[]).json["outputs"]] == ["predict", "predict_proba"]

## The binary tensor data extension

def binary(rows, datatype="FP32", size=None, **extra)->tuple[bytes, dict]:
    "A binary inference request as Triton's client sends it: body and headers"
    blob = struct.pack(f"<{4 * len(rows)}{'f' if datatype == 'FP32' else 'd'}", *[v for r in rows for v in r])
    size = len(blob) if size is None else size
    t = {"name": "input-0", "shape": [len(rows), 4], "datatype": datatype, "parameters": {"binary_data_size": size}}
    header = json.dumps({"inputs": [t], **extra}).encode()
    return header + blob, {"Inference-Header-Content-Length": str(len(header))}

def unpack(resp)->tuple[dict, dict]:
    "The JSON of a binary response, and each binary output's elements, decoded"
    n = int(resp.headers["Inference-Header-Content-Length"])
    header, rest, outputs = json.loads(resp.data[:n]), resp.data[n:], {}
    for o in header["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None: continue
        blob, rest = rest[:size], rest[size:]
        if o["datatype"] == "FP64": outputs[o["name"]] = list(struct.unpack(f"<{size // 8}d", blob))
        else:
            outputs[o["name"]] = []
            while blob:
                k = int.from_bytes(blob[:4], "little")
                outputs[o["name"]].append(blob[4:4 + k].decode())
                blob = blob[4 + k:]
    assert not rest, "bytes beyond the outputs' binary_data_size"
    return header, outputs

@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize("content_type", [None, "application/octet-stream"])  # Triton's client, KServe's
def test_binary_inputs_predict_like_json(client, trained, datatype, content_type):
    df = load_iris_frame()
    rows = df[FEATURES].to_numpy().tolist()
    body, headers = binary(rows, datatype)
    r = client.post(f"{URL}/infer", data=body, headers=headers, content_type=content_type)
    assert r.status_code == 200 and r.is_json, r.data[:200]
    predict, proba = r.json["outputs"]
    assert predict["data"] == list(trained.pipeline.predict(df[FEATURES].astype(datatype.replace("FP", "float"))))
    expected = trained.pipeline.predict_proba(df[FEATURES].astype(datatype.replace("FP", "float")))
    assert proba["data"] == expected.ravel().tolist()

def test_binary_outputs_for_all_or_some(client, trained):
    df = load_iris_frame()
    rows = df[FEATURES].to_numpy().tolist()
    body, headers = binary(rows, "FP64", parameters={"binary_data_output": True})
    r = client.post(f"{URL}/infer", data=body, headers=headers)
    assert r.status_code == 200 and r.mimetype == "application/octet-stream"
    header, outputs = unpack(r)
    assert [(o["name"], o["shape"], "data" in o) for o in header["outputs"]] == [("predict", [150], False),
                                                                                 ("predict_proba", [150, 3], False)]
    assert outputs["predict"] == list(trained.pipeline.predict(df[FEATURES]))
    assert outputs["predict_proba"] == trained.pipeline.predict_proba(df[FEATURES]).ravel().tolist()
    r = infer(client, tensor(rows), id="some",
              outputs=[{"name": "predict_proba", "parameters": {"binary_data": True}}, {"name": "predict"}])
    header, outputs = unpack(r)
    assert header["id"] == "some" and list(outputs) == ["predict_proba"]
    assert header["outputs"][1]["data"] == list(trained.pipeline.predict(df[FEATURES]))
    r = infer(client, tensor(rows), parameters={"binary_data_output": True},
              outputs=[{"name": "predict", "parameters": {"binary_data": False}}])
    assert r.is_json and "Inference-Header-Content-Length" not in r.headers  # the output's own flag wins

@pytest.mark.parametrize("change, message", [
    (lambda body, h: (body[:-4], h), "binary_data_size says 16 bytes, but 12 bytes follow the JSON"),
    (lambda body, h: (body + b"1234", h), "binary_data_size says 16 bytes, but 20 bytes follow the JSON"),
    (lambda body, h: (body, {"Inference-Header-Content-Length": str(len(body) + 1)}),
     "Inference-Header-Content-Length must be the length of the JSON at the start of the body, at most"),
    (lambda body, h: (body, {"Inference-Header-Content-Length": "-5"}), "Inference-Header-Content-Length must be"),
    (lambda body, h: (body, {"Inference-Header-Content-Length": "9" * 5000}),
     "Inference-Header-Content-Length must be"),
    # a digit to str.isdigit, not to int()
    (lambda body, h: (body, {"Inference-Header-Content-Length": "\u00b2"}), "Inference-Header-Content-Length must be"),
    (lambda body, h: (body, {"Inference-Header-Content-Length": str(int(h["Inference-Header-Content-Length"]) - 2)}),
     "not valid JSON"),
    (lambda body, h: (body, {"Inference-Header-Content-Length": "0"}), "not valid JSON"),
])
def test_binary_sizes_that_do_not_add_up_are_400(client, change, message):
    body, headers = change(*binary([ROW]))
    assert message in error(client.post(f"{URL}/infer", data=body, headers=headers), 400)

@pytest.mark.parametrize("request_, message", [
    (binary([ROW], size=12), "binary_data_size says 12 bytes, but 16 bytes follow"),
    (binary([ROW], size=-16), "binary_data_size must be a number of bytes (got -16)"),
    (binary([ROW], size=True), "binary_data_size must be a number of bytes (got true)"),
])
def test_binary_data_sizes_of_the_wrong_kind_are_400(client, request_, message):
    body, headers = request_
    assert message in error(client.post(f"{URL}/infer", data=body, headers=headers), 400)

def test_binary_tensor_that_does_not_fit_the_shape(client):
    body, headers = binary([ROW, ROW], "FP32")
    header = json.loads(body[:int(headers["Inference-Header-Content-Length"])])
    header["inputs"][0].update(datatype="FP64")  # 32 bytes are four FP64 values, not the eight of [2, 4]
    text = json.dumps(header).encode()
    r = client.post(f"{URL}/infer", data=text + body[-32:], headers={"Inference-Header-Content-Length": str(len(text))})
    assert "32 bytes of binary data, but shape [2, 4] of FP64 takes 64" in error(r, 400)
    json_part = body[:int(headers["Inference-Header-Content-Length"])]
    r = client.post(f"{URL}/infer", data=json_part + b"\x00" * 32, headers=headers)
    assert "must be greater than 0 (got 0.0)" in error(r, 400)  # binary values meet the same checks as JSON ones

def test_binary_data_without_a_size_is_400(client):
    text = json.dumps({"inputs": [tensor([ROW])]}).encode()
    r = client.post(f"{URL}/infer", data=text + b"\x00" * 16,
                    headers={"Inference-Header-Content-Length": str(len(text))})
    assert "16 bytes follow the JSON, but inputs[0] has no parameters.binary_data_size" in error(r, 400)
